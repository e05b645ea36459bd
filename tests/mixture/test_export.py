"""Exports read back by the frameworks' own readers: Megatron-core's IndexedDataset and numpy.memmap."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xxhash
from typer.testing import CliRunner

from curate import export_mixture
from curate.cli import app
from curate.errors import ConfigError, CurateError
from curate.mixture import build_mixture, load_spec
from curate.mixture.loader import MixtureDataset
from tests.mixture._specs import spec_dict
from tests.mixture.test_tokenizer import _spec, bpe_dir  # noqa: F401  (bpe_dir is a fixture)

with warnings.catch_warnings():  # megatron-core warns that Transformer Engine and Apex are absent
    warnings.simplefilter("ignore")
    from megatron.core.datasets.indexed_dataset import IndexedDataset


def stream(store, name: str) -> np.ndarray:
    """What MixtureDataset streams (every part's tokens with EOS after each document), before windowing."""
    ds = MixtureDataset(store, name, seq_len=64)
    return np.concatenate([ds._part_tokens_array(i).astype(np.int64) for i in range(len(ds.manifest.parts))])


@pytest.fixture(scope="module")
def bytes_mix(mix_store):
    build_mixture(mix_store, load_spec(spec_dict(name="exp", tokens=150_000)), report=False)
    return "exp"


def test_megatron_export_reads_back_with_megatron_core_as_the_loader_streams_it(mix_store, bytes_mix, tmp_path):
    rec = export_mixture(mix_store, bytes_mix, "megatron", tmp_path / "meg")
    assert [p["phase"] for p in rec["phases"]] == ["main", "anneal"] and rec["dtype"] == "uint16"
    plan = json.loads(Path(mix_store.path("mixtures/exp/manifest.json")).read_text())
    per_phase = {p["name"]: sum(d["occurrences"] for d in p["domains"].values()) for p in plan["phases"]}
    read = []
    for p in rec["phases"]:
        ds = IndexedDataset(p["prefix"])
        assert len(ds) == p["documents"] == per_phase[p["phase"]]
        docs = [ds[i] for i in range(len(ds))]
        assert all(d[-1] == 256 for d in docs)  # EOS closes every document
        read.append(np.concatenate(docs).astype(np.int64))
    assert np.array_equal(np.concatenate(read), stream(mix_store, bytes_mix))
    assert plan["exports"]["megatron"]["tokens"] == sum(len(r) for r in read)
    text = (tmp_path / "meg" / "data_path.txt").read_text()
    assert f"--data-path {rec['phases'][1]['prefix']}" in text


def test_tokens_export_is_a_memmap_and_rebuilds_byte_identical(mix_store, bytes_mix, tmp_path):
    rec = export_mixture(mix_store, bytes_mix, "tokens", tmp_path / "tok")
    read = []
    for p in rec["phases"]:
        mm = np.memmap(p["prefix"] + ".tokens", dtype=np.uint16, mode="r")
        offsets = np.load(p["prefix"] + ".offsets.npy")
        assert offsets[0] == 0 and offsets[-1] == len(mm) and len(offsets) == p["documents"] + 1
        assert (mm[offsets[1:] - 1] == 256).all()  # each document ends with EOS
        read.append(np.asarray(mm, dtype=np.int64))
    assert np.array_equal(np.concatenate(read), stream(mix_store, bytes_mix))
    digest = {n: f["xxh3_128"] for p in rec["phases"] for n, f in p["files"].items()}
    again = export_mixture(mix_store, bytes_mix, "tokens", tmp_path / "tok")
    assert again["reused"]  # recorded for this build, files in place: nothing written
    redo = export_mixture(mix_store, bytes_mix, "tokens", tmp_path / "tok", overwrite=True)
    assert not redo["reused"]
    assert {n: xxhash.xxh3_128(Path(p["prefix"]).with_name(n).read_bytes()).hexdigest()
            for p in redo["phases"] for n in p["files"]} == digest  # recorded hashes are of the files as written


def test_a_tokenizer_mixture_exports_its_ids_and_eos(mix_store, bpe_dir, tmp_path):  # noqa: F811
    m = build_mixture(mix_store, _spec(bpe_dir), report=False)
    eos = m.data["tokenizer_info"]["eos_token_id"]
    rec = export_mixture(mix_store, m.name, "megatron", tmp_path / "hf")
    read = []
    for p in rec["phases"]:
        ds = IndexedDataset(p["prefix"])  # keep it alive: its items are views into its memory map
        read.append(np.concatenate([ds[i] for i in range(len(ds))]).astype(np.int64))
    assert rec["eos_id"] == eos and np.array_equal(np.concatenate(read), stream(mix_store, m.name))


def test_refusals_before_writing(mix_store, bytes_mix, tmp_path):
    with pytest.raises(CurateError, match="no mixture 'nope'"):
        export_mixture(mix_store, "nope", "megatron", tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown export format 'hdf5'"):
        export_mixture(mix_store, bytes_mix, "hdf5", tmp_path / "x")
    with pytest.raises(ConfigError, match="ids do not fit uint8"):
        export_mixture(mix_store, bytes_mix, "megatron", tmp_path / "x", dtype="uint8")
    with pytest.raises(ConfigError, match="inside the store's shards"):
        export_mixture(mix_store, bytes_mix, "megatron", mix_store.path("shards", "out"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already holds files an export of 'exp' did not write"):
        export_mixture(mix_store, bytes_mix, "tokens", tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    # an earlier export of this mixture (its files only) is replaced without asking: a rebuild re-exports
    export_mixture(mix_store, bytes_mix, "tokens", tmp_path / "again")
    stale = tmp_path / "again" / f"{bytes_mix}-old.tokens"
    stale.write_bytes(b"x")
    rec = export_mixture(mix_store, bytes_mix, "tokens", tmp_path / "again", dtype="uint32")
    assert not rec["reused"] and not stale.exists()
    res = CliRunner().invoke(app, ["mix", "export", "nope", "--store", mix_store.uri, "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "no mixture 'nope'" in res.output


def test_cli_exports_into_the_mixture_folder(mix_store, bytes_mix):
    res = CliRunner().invoke(app, ["mix", "export", bytes_mix, "--format", "tokens", "--store", mix_store.uri,
                                   "--overwrite"])
    assert res.exit_code == 0, res.output
    assert Path(mix_store.path("mixtures", bytes_mix, "export-tokens", f"{bytes_mix}-main.tokens")).is_file()
