"""HeuristicsScorer on real text, checked against hand values and a slow reference."""

from __future__ import annotations

import argparse
import inspect
import json.decoder
import re
import textwrap
import unicodedata
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from curate.scoring import check_output
from scorers.heuristics import DUP_NGRAMS, STOP_WORDS, TOP_NGRAMS, HeuristicsScorer

PROSE = argparse.__doc__ + "\n\n" + textwrap.dedent(inspect.getdoc(textwrap.TextWrapper))
CODE = inspect.getsource(json.decoder)
GERMAN = (
    "Die Würde des Menschen ist unantastbar. Sie zu achten und zu schützen ist Verpflichtung "
    "aller staatlichen Gewalt.\n\nJeder hat das Recht auf die freie Entfaltung seiner Persönlichkeit."
)
RUSSIAN = "Все люди рождаются свободными и равными в своём достоинстве и правах. 1948 год."
CJK = "日本語のテキストには単語の間に空白がありません。東京は日本の首都です。"
REPETITIVE = "\n".join(["Click here to buy cheap watches now!"] * 20 + ["- best price", "- free shipping"] * 5)
EDGE = ["", " ", "\n\n\t  \n", "x", "...", "- a\n- a\n", "the The THE the, (the) theory"]


def make_batch(texts: list[str | None]) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "doc_id": pa.array([f"d{i}" for i in range(len(texts))], pa.string()),
            "text": pa.array(texts, pa.large_string()),
        }
    )


def score(texts: list[str | None]) -> list[dict]:
    scorer = HeuristicsScorer()
    scorer.setup()
    batch = make_batch(texts)
    out = scorer.score(batch)
    check_output(scorer, batch, out)
    return out.to_pylist()


# --- slow, obviously-correct reference for the definitions in the module docstring


def _is_ws(c: str) -> bool:
    return c in " \t\n\r\x0b\x0c\x85" or unicodedata.category(c).startswith("Z")


def _dup_piece_chars(pieces: list[str]) -> int:
    seen: set[str] = set()
    dup = 0
    for piece in (p.rstrip() for p in pieces):
        if not piece:
            continue
        if piece in seen:
            dup += len(piece)
        seen.add(piece)
    return dup


def reference(text: str) -> dict[str, float]:
    n = len(text)
    cats = [unicodedata.category(c) for c in text]
    ws = sum(_is_ws(c) for c in text)
    alpha = sum(c.startswith("L") for c in cats)
    numeric = sum(c.startswith("N") for c in cats)
    words = text.split()
    word_chars = sum(map(len, words))
    lines = [ln for ln in text.split("\n") if ln.rstrip()]
    ref: dict[str, float] = {
        "n_chars": n,
        "n_words": len(words),
        "n_lines": len(lines),
        "mean_word_len": word_chars / len(words) if words else 0.0,
        "alpha_ratio": alpha / n if n else 0.0,
        "digit_ratio": sum(c == "Nd" for c in cats) / n if n else 0.0,
        "upper_ratio": sum(c == "Lu" for c in cats) / n if n else 0.0,
        "whitespace_ratio": ws / n if n else 0.0,
        "symbol_ratio": (n - alpha - numeric - ws) / n if n else 0.0,
        "non_ascii_ratio": sum(ord(c) > 127 for c in text) / n if n else 0.0,
        "dup_line_frac": _dup_piece_chars(text.split("\n")) / n if n else 0.0,
        "dup_para_frac": _dup_piece_chars(re.split(r"\n\s*\n", text)) / n if n else 0.0,
        "stop_word_count": sum(w.strip("\"'()[]{}<>.,;:!?«»“”‘’`").lower() in STOP_WORDS for w in words),
    }
    for k in TOP_NGRAMS:
        grams = Counter(tuple(words[i : i + k]) for i in range(len(words) - k + 1))
        best = max(grams.values(), default=0)
        chars = max((sum(map(len, g)) for g, c in grams.items() if c == best), default=0)
        ref[f"top_{k}gram_frac"] = min(best * chars / word_chars, 1.0) if best > 1 else 0.0
    for k in DUP_NGRAMS:
        seen: set[tuple[str, ...]] = set()
        covered = [False] * len(words)
        for i in range(len(words) - k + 1):
            gram = tuple(words[i : i + k])
            if gram in seen:
                covered[i : i + k] = [True] * k
            seen.add(gram)
        dup = sum(len(w) for w, c in zip(words, covered) if c)
        ref[f"dup_{k}gram_frac"] = dup / word_chars if word_chars else 0.0
    return ref


ALL_DOCS = [PROSE, CODE, GERMAN, RUSSIAN, CJK, REPETITIVE, *EDGE]


def test_matches_reference_on_real_text() -> None:
    rows = score(ALL_DOCS)
    for text, row in zip(ALL_DOCS, rows):
        for col, want in reference(text).items():
            assert row[col] == pytest.approx(want, rel=1e-6, abs=1e-7), (col, text[:40])


def test_hand_checked_values() -> None:
    line = "the quick brown fox jumps over the lazy dog"  # 9 words, 35 letters, 43 chars
    doc = "\n".join([line] * 3)
    row = score([doc])[0]
    assert row["n_chars"] == 3 * 43 + 2
    assert row["n_words"] == 27
    assert row["n_lines"] == 3
    assert row["mean_word_len"] == pytest.approx(35 / 9)
    # Two of the three lines repeat the first one.
    assert row["dup_line_frac"] == pytest.approx(2 * 43 / (3 * 43 + 2))
    # Every 5-gram from word 9 on repeats an earlier one: words 9..26 are covered.
    assert row["dup_5gram_frac"] == pytest.approx(2 / 3)
    # "the" twice per line; no other stop word occurs.
    assert row["stop_word_count"] == 6
    assert row["whitespace_ratio"] == pytest.approx(26 / (3 * 43 + 2))


def test_ratios_bounded_and_repetition_separates() -> None:
    rows = score(ALL_DOCS)
    for row in rows:
        for col, value in row.items():
            if col.endswith(("_ratio", "_frac")):
                assert 0.0 <= value <= 1.0, (col, value)
    prose, spam = rows[0], rows[ALL_DOCS.index(REPETITIVE)]
    for col in ("dup_line_frac", "top_2gram_frac", "dup_5gram_frac", "dup_10gram_frac"):
        assert spam[col] > prose[col] + 0.3, col
    assert spam["bullet_lines_frac"] == pytest.approx(10 / 30)
    assert prose["stop_word_count"] > 20


def test_edge_cases() -> None:
    empty, space, blank, *_ = score(EDGE)
    for row in (empty, space, blank):
        assert row["n_words"] == 0 and row["n_lines"] == 0
        assert row["alpha_ratio"] == 0.0 and row["dup_5gram_frac"] == 0.0
    assert space["whitespace_ratio"] == 1.0 and empty["whitespace_ratio"] == 0.0
    (cjk,) = score([CJK])
    assert cjk["n_words"] == 1 and cjk["non_ascii_ratio"] == 1.0 and cjk["alpha_ratio"] > 0.9
    (null,) = score([None])
    assert null["n_chars"] == 0 and null["n_words"] == 0


def test_batch_invariance() -> None:
    together = score(ALL_DOCS)
    alone = [score([doc])[0] for doc in ALL_DOCS]
    for a, b in zip(together, alone):
        a.pop("doc_id"), b.pop("doc_id")
        assert a == b
    # Slicing (non-zero Arrow offsets) must not change anything either.
    scorer = HeuristicsScorer()
    sliced = scorer.score(make_batch(ALL_DOCS).slice(3, 4)).to_pylist()
    for a, b in zip(sliced, together[3:7]):
        a.pop("doc_id")
        assert a == b
    # Nor does a plain (32-bit offset) string column.
    narrow = make_batch(ALL_DOCS)
    narrow = narrow.set_column(1, "text", narrow.column("text").cast(pa.string()))
    for a, b in zip(scorer.score(narrow).to_pylist(), together):
        a.pop("doc_id")
        assert a == b


def test_huge_document() -> None:
    sentence = "Ein ganz normaler Satz mit einigen Wörtern, Zahlen wie 42 und Zeichen!\n"
    doc = sentence * (5_000_000 // len(sentence))
    (row,) = score([doc])
    assert row["n_chars"] == len(doc)
    assert row["dup_line_frac"] > 0.98 and row["dup_10gram_frac"] > 0.99
    assert row["digit_ratio"] == pytest.approx(2 / len(sentence))


def test_schema() -> None:
    scorer = HeuristicsScorer()
    out = scorer.score(make_batch(ALL_DOCS))
    assert out.schema.equals(scorer.schema)
    assert scorer.schema.names[0] == "doc_id"
    types = {f.type for f in list(scorer.schema)[1:]}
    assert types == {pa.int32(), pa.float32()}
    assert out.column("doc_id").to_pylist() == [f"d{i}" for i in range(len(ALL_DOCS))]
    assert np.isfinite(np.array(out.column("alpha_ratio"))).all()
    assert len(scorer.fingerprint()) == 16
