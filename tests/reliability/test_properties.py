"""Property-based tests (hypothesis) of the invariants the pipeline promises.

- doc_id: a pure function of (corpus, original id or text), whatever the batch, order or shard size;
- ingest accounting: read = kept + quarantined + duplicates, over JSONL with random bad lines,
  and exactly the records a plain-Python model of the rules keeps;
- mixture planning: exact targets, per-domain tokens within one document of the plan, no document
  used more than max_epochs times, for random weights, phases, budgets and caps;
- loader partitioning: ranks x workers cover the packed stream exactly once; resume yields the rest.

Examples are small and few: every ingest example builds a real store on disk.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from curate import connect, ingest
from curate.docid import doc_digests, doc_id, to_hex
from curate.mixture import build_mixture, load_spec, plan_mixture
from curate.mixture.loader import EOS, MixtureDataset
from tests.mixture.test_plan import check_invariants

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ----------------------------------------------------------------------------- doc_id

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
ids = st.none() | st.text(max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ids, texts), max_size=20), st.text(min_size=1, max_size=8), st.randoms())
def test_doc_id_depends_on_the_record_only(records, corpus, rnd):
    one_by_one = [doc_id(corpus, t, i) for i, t in records]
    batch = to_hex(doc_digests(corpus, [i for i, _ in records], [t.encode() for _, t in records]))
    assert batch == one_by_one  # batch composition and position do not matter
    order = list(range(len(records)))
    rnd.shuffle(order)
    shuffled = to_hex(doc_digests(corpus, [records[k][0] for k in order], [records[k][1].encode() for k in order]))
    assert shuffled == [one_by_one[k] for k in order]
    for (oid, text), got in zip(records, one_by_one):
        assert got == doc_id(corpus, text + "x" if oid is not None else text, oid)  # an id wins over the text
        assert got != doc_id(corpus + "/", text, oid)  # the corpus is part of the identity
        if oid is not None:
            assert got != doc_id(corpus, oid)  # an id is never confused with a text that spells it


# ----------------------------------------------------------------------------- ingest accounting

BAD = {  # raw line -> the reason ingest must give
    b'{"text": "unterminated': "malformed_json",
    b'["a", "json", "array"]': "not_object",
    b'{"id": "x", "title": "no text field"}': "missing_text",
    b'{"text": 12345}': "wrong_type",
    b'{"text": "caf\xe9 latin-1"}': "invalid_utf8",
    b'{"text": "a\\u0000b"}': "nul_bytes",
}
MAX_DOC = 256
GOOD_TEXTS = ["alpha beta", "gamma", "delta epsilon zeta", "x" * 300]  # the last is over MAX_DOC

spaces = st.text(st.sampled_from(" \t\n\u00a0\u3000\u2028\x85\x0b"), max_size=4)  # empty in the Unicode sense
good_line = st.tuples(st.just("good"), st.sampled_from([None, "a", "b", "c", "d"]),
                      st.sampled_from(GOOD_TEXTS) | texts | spaces, st.booleans())
bad_line = st.tuples(st.just("bad"), st.sampled_from(sorted(BAD)))
blank_line = st.tuples(st.just("blank"), st.sampled_from([b"", b"   ", b"\t"]))
lines = st.lists(st.one_of(good_line, good_line, bad_line, blank_line), max_size=25)


def _render(spec: list[tuple]) -> bytes:
    out = []
    for entry in spec:
        if entry[0] == "good":
            _, oid, text, null_id = entry
            rec = {"text": text} | ({"id": oid} if oid is not None else {"id": None} if null_id else {})
            out.append(json.dumps(rec, ensure_ascii=null_id).encode())
        else:
            out.append(entry[1])
    return b"".join(line + b"\n" for line in out)


def _model(spec: list[tuple]) -> tuple[int, list[tuple[str | None, str]], Counter, int]:
    """What ingest must do, by the documented rules: (read, kept (id, text) in order, reasons, duplicates)."""
    read, kept, reasons, dups, seen = 0, [], Counter(), 0, set()
    for entry in spec:
        if entry[0] == "blank":
            continue
        read += 1
        if entry[0] == "bad":
            reasons[BAD[entry[1]]] += 1
            continue
        _, oid, text, _ = entry
        if len(text.encode()) > MAX_DOC:
            reasons["too_large"] += 1
        elif not text.strip():  # whitespace in the Unicode sense, as str.isspace
            reasons["empty_text"] += 1
        elif "\x00" in text:
            reasons["nul_bytes"] += 1
        elif (key := ("id", oid) if oid is not None else ("text", text)) in seen:
            dups += 1
        else:
            seen.add(key)
            kept.append((oid, text))
    return read, kept, reasons, dups


@FEW
@given(spec=lines, shard_rows=st.integers(1, 6))
def test_ingest_accounts_for_every_record(spec, shard_rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_bytes(_render(spec))
        s = ingest([path], Path(tmp) / "store", "c", shard_rows=shard_rows, max_doc_bytes=MAX_DOC, progress=False)
        read, kept, reasons, dups = _model(spec)
        assert s.read == s.kept + s.quarantined + s.duplicates
        assert (s.read, s.kept, s.quarantined, s.duplicates) == (read, len(kept), sum(reasons.values()), dups)
        assert Counter(s.reasons) == reasons
        con = connect(Path(tmp) / "store")
        docs = con.execute("SELECT doc_id, orig_id, text FROM docs").fetchall()
        key = lambda r: (r[0] or "", r[0] is None, r[1])
        assert sorted(((o, t) for _, o, t in docs), key=key) == sorted(kept, key=key)
        assert all(d == doc_id("c", t, o) for d, o, t in docs)  # stored ids are the documented function
        assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == sum(reasons.values())
        again = ingest([path], Path(tmp) / "store", "c", shard_rows=shard_rows, max_doc_bytes=MAX_DOC, progress=False)
        assert again.status == "already-ingested" and again.kept == s.kept


@FEW
@given(spec=lines, shard_rows=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_doc_ids_do_not_depend_on_line_order_or_shard_size(spec, shard_rows, seed):
    shuffled = list(spec)
    random.Random(seed).shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        got = []
        for i, (s, rows) in enumerate(((spec, 1_000), (shuffled, shard_rows))):
            path = Path(tmp) / f"in{i}.jsonl"
            path.write_bytes(_render(s))
            ingest([path], Path(tmp) / f"store{i}", "c", shard_rows=rows, max_doc_bytes=MAX_DOC, progress=False)
            got.append(sorted(r[0] for r in connect(Path(tmp) / f"store{i}").execute("SELECT doc_id FROM docs").fetchall()))
        assert got[0] == got[1]


# ----------------------------------------------------------------------------- mixture planning


@pytest.fixture(scope="module")
def mix_store(tmp_path_factory, real_docs):
    from curate.store import Store

    d = tmp_path_factory.mktemp("mixprop")
    (d / "docs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in real_docs))
    ingest([d / "docs.jsonl"], d / "store", "c", progress=False)
    return Store.open(d / "store")


DOMAINS = ["books", "code", "docs", "encyclopedic", "forum", "math", "multilingual", "web"]


def _normalized(raw: dict[str, int]) -> dict[str, float]:
    total = sum(raw.values())
    out = {k: v / total for k, v in raw.items()}
    first = next(iter(out))
    out[first] += 1.0 - sum(out.values())  # absorb float rounding so the sum is 1 within the spec's tolerance
    return out


weights = st.dictionaries(st.sampled_from(DOMAINS), st.integers(1, 20), min_size=1, max_size=8).map(_normalized)


@st.composite
def phases(draw) -> list[dict]:
    n = draw(st.integers(1, 3))
    parts = draw(st.lists(st.integers(1, 10), min_size=n, max_size=n))
    fractions = _normalized({str(i): p for i, p in enumerate(parts)})
    return [{"name": f"p{i}", "fraction": fractions[str(i)]}
            | ({"weights": draw(weights)} if draw(st.booleans()) else {}) for i in range(n)]


@FEW
@given(w=weights, ph=phases(), tokens=st.integers(1_000, 4_000_000), max_epochs=st.integers(1, 4),
       seed=st.integers(0, 2**31))
def test_planning_invariants_over_random_weights_and_phases(mix_store, w, ph, tokens, max_epochs, seed):
    spec = load_spec({"name": "prop", "tokens": tokens, "seed": seed, "max_epochs": max_epochs,
                      "weights": w, "phases": ph})
    plan = plan_mixture(mix_store, spec)
    check_invariants(plan, spec)  # targets exact; tokens within one document; uses <= max_epochs
    used = dict(plan.con.execute("SELECT domain, sum(n_tokens) FROM plan_occ GROUP BY 1").fetchall())
    for domain in {c.domain for c in plan.cells}:  # the cells tell the truth about what was drawn
        assert used.get(domain, 0) == sum(c.tokens for c in plan.cells if c.domain == domain)


# ----------------------------------------------------------------------------- loader partition


@pytest.fixture(scope="module")
def mixture(mix_store):
    build_mixture(mix_store, load_spec({"name": "lp", "tokens": 30_000, "weights": {"code": 0.5, "web": 0.5},
                                        "phases": [{"name": "a", "fraction": 0.7}, {"name": "b", "fraction": 0.3}]}),
                  part_tokens=7_000, report=False)
    from curate.mixture import MixtureManifest

    m = MixtureManifest.load(mix_store, "lp")
    toks: list[int] = []
    for p in m.parts:  # the packed stream, rebuilt independently of the loader
        for text in pq.read_table(mix_store.path(m.dir, p["name"])).column("text").to_pylist():
            toks.extend(text.encode())
            toks.append(EOS)
    return mix_store, toks


@FEW
@given(seq_len=st.integers(1, 600), world=st.integers(1, 4), workers=st.integers(1, 3), data=st.data())
def test_ranks_times_workers_partition_the_stream_exactly(mixture, seq_len, world, workers, data):
    store, toks = mixture
    size = seq_len + 1
    reference = [toks[i * size:(i + 1) * size] for i in range(len(toks) // size)]
    got: dict[int, list[int]] = {}
    for rank in range(world):
        ds = MixtureDataset(store, "lp", seq_len, rank=rank, world_size=world)
        assert ds.total_windows == len(reference)
        for k in range(workers):
            mine = ds.windows_of(k, workers)
            # what DataLoader worker k of this rank yields (its iterator runs exactly this)
            windows = [w.tolist() for w in ds._windows(mine)]
            assert len(windows) == len(mine)
            for i, w in zip(mine, windows):
                assert i not in got  # no window is given to two (rank, worker) pairs
                got[i] = w
    assert sorted(got) == list(range(len(reference)))  # no gap
    assert all(got[i] == reference[i] for i in got)

    rank = data.draw(st.integers(0, world - 1))
    ds = MixtureDataset(store, "lp", seq_len, rank=rank, world_size=world)
    mine = ds.windows_of(0, 1)
    assume(len(mine) > 0)
    n = data.draw(st.integers(0, len(mine)))
    it = iter(ds)
    head = [next(it).tolist() for _ in range(n)]
    fresh = MixtureDataset(store, "lp", seq_len, rank=rank, world_size=world)
    fresh.load_state_dict(json.loads(json.dumps(ds.state_dict())))
    assert head + [w.tolist() for w in fresh] == [reference[i] for i in mine]  # resume yields exactly the rest
