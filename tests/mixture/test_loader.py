"""MixtureDataset: exact partition over ranks x workers, packing, and exact resume."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from curate.mixture import build_mixture, load_spec
from curate.mixture.loader import EOS, LoaderStateError, MixtureDataset
from tests.mixture._specs import spec_dict

# spawn, not fork: this pytest process also ran Prefect flows and Ray (other test folders), and forked
# children of such a process die at start; a training job that forks cleanly can keep the default
MP = "spawn"

SEQ = 255


@pytest.fixture(scope="module")
def mixture(mix_store):
    build_mixture(mix_store, load_spec(spec_dict(name="l", tokens=120_000)), part_tokens=40_000, report=False)
    return mix_store


def stream(store) -> list[list[int]]:
    """The reference stream, built independently: every part's texts as bytes + EOS, cut into windows."""
    from curate.mixture import MixtureManifest

    m = MixtureManifest.load(store, "l")
    toks: list[int] = []
    for p in m.parts:
        for text in pq.read_table(store.path(m.dir, p["name"])).column("text").to_pylist():
            toks.extend(text.encode())
            toks.append(EOS)
    n = len(toks) // (SEQ + 1)
    return [toks[i * (SEQ + 1):(i + 1) * (SEQ + 1)] for i in range(n)]


def as_lists(windows) -> list[list[int]]:
    return [w.tolist() for w in windows]


def test_single_process_stream_is_the_packed_mixture(mixture):
    ref = stream(mixture)
    ds = MixtureDataset(mixture, "l", SEQ, rank=0, world_size=1)
    got = as_lists(ds)
    assert got == ref and ds.total_windows == len(ref) > 400
    assert all(len(w) == SEQ + 1 for w in got) and max(max(w) for w in got) == EOS


def test_ranks_times_workers_partition_the_stream(mixture):
    ref = stream(mixture)
    seen: dict[int, list[int]] = {}
    for rank in range(2):
        ds = MixtureDataset(mixture, "l", SEQ, rank=rank, world_size=2)
        for k in range(2):
            idx = list(ds.windows_of(k, 2))
            # the windows a worker yields are the ones its index range names
            for i in idx:
                assert i not in seen
            seen.update({i: ref[i] for i in idx})
        loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context=MP)
        got = as_lists(loader)
        expect = [ref[i] for k in range(2) for i in ds.windows_of(k, 2)]
        assert sorted(got) == sorted(expect)
    assert sorted(seen) == list(range(len(ref)))  # no gap, no overlap


def test_resume_in_process_yields_exactly_the_rest(mixture):
    ds = MixtureDataset(mixture, "l", SEQ)
    it = iter(ds)
    head = [next(it).tolist() for _ in range(137)]
    state = json.loads(json.dumps(ds.state_dict()))  # a few JSON integers
    assert state["consumed"] == {"0": 137}
    fresh = MixtureDataset(mixture, "l", SEQ)
    fresh.load_state_dict(state)
    assert head + as_lists(fresh) == stream(mixture)


def test_resume_through_a_dataloader_with_two_workers(mixture):
    ds = MixtureDataset(mixture, "l", SEQ, rank=1, world_size=2)
    full = [b.tolist() for b in DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context=MP)]
    n = 9  # batches consumed before the "crash"
    state = ds.state_after(batches=n, batch_size=4, num_workers=2)
    fresh = MixtureDataset(mixture, "l", SEQ, rank=1, world_size=2)
    fresh.load_state_dict(state)
    rest = [b.tolist() for b in DataLoader(fresh, batch_size=4, num_workers=2, multiprocessing_context=MP)]
    assert rest == full[n:]
    # a second interruption, 5 batches into the resumed run
    again = MixtureDataset(mixture, "l", SEQ, rank=1, world_size=2)
    again.load_state_dict(fresh.state_after(batches=5, batch_size=4, num_workers=2))
    assert [b.tolist() for b in DataLoader(again, batch_size=4, num_workers=2, multiprocessing_context=MP)] == full[n + 5:]


def test_resume_via_stateful_dataloader(mixture):
    from torchdata.stateful_dataloader import StatefulDataLoader

    def loader():
        return StatefulDataLoader(MixtureDataset(mixture, "l", SEQ), batch_size=3, num_workers=2,
                                  multiprocessing_context=MP)

    full = [b.tolist() for b in loader()]
    dl = loader()
    it = iter(dl)
    head = [next(it).tolist() for _ in range(11)]
    state = dl.state_dict()
    del it, dl
    dl2 = loader()
    dl2.load_state_dict(state)
    rest = [b.tolist() for b in dl2]
    assert head + rest == full


def test_loop_restarts_the_stream(mixture):
    ds = MixtureDataset(mixture, "l", SEQ, loop=True)
    it = iter(ds)
    n = ds.total_windows
    first = [next(it) for _ in range(n + 3)]
    assert all(torch.equal(a, b) for a, b in zip(first[:3], first[n:]))


def test_state_validation(mixture, mix_store):
    ds = MixtureDataset(mixture, "l", SEQ, rank=0, world_size=2)
    good = ds.state_after(batches=2, batch_size=2, num_workers=2)
    for key, value, words in [
        ("seq_len", 128, "seq_len is 128 but this dataset has 255"),
        ("world_size", 4, "world_size is 4"),
        ("mixture", "0" * 16, "mixture is"),
        ("format", 9, "not a MixtureDataset state"),
        ("consumed", {"0": -1}, "consumed['0'] = -1"),
        ("consumed", {"5": 1}, "consumed['5']"),
        ("consumed", {"0": 10**9}, "consumed 1000000000 windows"),
    ]:
        with pytest.raises(LoaderStateError, match=words.replace("[", r"\[").replace("]", r"\]")):
            MixtureDataset(mixture, "l", SEQ, rank=0, world_size=2).load_state_dict({**good, key: value})
    other = MixtureDataset(mixture, "l", SEQ, rank=0, world_size=2)
    other.load_state_dict(good)
    with pytest.raises(LoaderStateError, match="saved with 2 DataLoader worker"):
        next(iter(other))  # resumed without workers: refuse rather than skip the wrong windows
    # a rebuilt mixture with another spec has another fingerprint
    build_mixture(mix_store, load_spec(spec_dict(name="l2", tokens=50_000)), report=False)
    with pytest.raises(LoaderStateError, match="mixture is"):
        MixtureDataset(mix_store, "l2", SEQ, rank=0, world_size=2).load_state_dict(good)
    assert good["consumed"] == {"0": 2, "1": 2} and good["rotation"] == 0
