"""Model-free quality heuristics (Gopher quality + repetition signals).

Every signal is computed for a whole Arrow batch at once: character classes
from a byte lookup table over the batch's UTF-8 buffer (Unicode regexes only
for non-ASCII characters), words and lines by splitting and flattening the
batch, and the n-gram repetition signals on exact integer ids with numpy. No
Python code runs per word, line or n-gram (one numpy call per document builds
the byte-class histogram).

Definitions (all lengths in Unicode code points):

- words are whitespace-separated tokens; ``n_lines`` counts non-blank lines,
  and every per-line ratio is over those.
- ``dup_line_frac`` / ``dup_para_frac``: characters in lines (paragraphs)
  that repeat an earlier line (paragraph) of the same document exactly —
  first occurrences are not counted — over ``n_chars``. Trailing whitespace is
  ignored when comparing; paragraphs are separated by blank lines.
- ``top_{2,3,4}gram_frac``: characters (of the words, without separators) in
  all occurrences of the most frequent word n-gram, over the characters of all
  words; 0 when no n-gram occurs twice; ties go to the longer n-gram; capped
  at 1 (occurrences of e.g. "a a" in "a a a" overlap).
- ``dup_{5..10}gram_frac``: characters of the words covered by an n-gram that
  repeats an earlier n-gram of the document (overlaps counted once), over the
  characters of all words. Like datatrove's Gopher filter, first occurrences
  are not counted; unlike it, the scan is not greedy.
- ``stop_word_count``: tokens that are one of Gopher's English stop words
  after lowercasing and stripping surrounding punctuation.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.scoring import BaseScorer

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)

# Character classes: ASCII bytes are classified with a lookup table over the
# batch's UTF-8 buffer; only documents with non-ASCII text go through Unicode
# regexes, run on their non-ASCII characters alone. Each pattern matches runs
# of characters *outside* its class, so deleting them leaves the class count.
_ASCII = r"[\x00-\x7f]+"
_WS_UNICODE = r"\p{Z}\x{85}"
_NON_ASCII_CLASS = {
    "alpha": r"[^\pL]+",
    "digit": r"[^\p{Nd}]+",
    "upper": r"[^\p{Lu}]+",
    "whitespace": rf"[^{_WS_UNICODE}]+",
    "symbol": rf"[\pL\pN{_WS_UNICODE}]+",
}
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASCII_CLASS_CHARS = {
    "alpha": _UPPER + _UPPER.lower(),
    "digit": "0123456789",
    "upper": _UPPER,
    "whitespace": " \t\n\r\x0b\x0c",
}
_ASCII_BIT = 1 << len(_ASCII_CLASS_CHARS)  # the last bit: "byte is ASCII"
_N_CODES = 2 * _ASCII_BIT


def _byte_codes() -> np.ndarray:
    """Byte -> bit set of its classes: one bit per ``_ASCII_CLASS_CHARS`` entry, then ASCII."""
    codes = np.zeros(256, dtype=np.uint8)
    for bit, chars in enumerate(_ASCII_CLASS_CHARS.values()):
        codes[np.frombuffer(chars.encode(), dtype=np.uint8)] |= 1 << bit
    codes[:128] |= _ASCII_BIT
    return codes


_CODES = _byte_codes()
# Per class, a mask over the possible byte codes that carry its bit.
_CODE_HAS = {
    cls: (np.arange(_N_CODES) >> bit) & 1 == 1 for bit, cls in enumerate([*_ASCII_CLASS_CHARS, "ascii"])
}
_BULLET = r"^\s*(?:[•‣◦⁃●▪■►–]|[-*+](?:\s|$))"
_ELLIPSIS = r"(?:\.\.\.|…)$"
_PUNCT = "\"'()[]{}<>.,;:!?«»“”‘’`"

_INT_COLUMNS = ("n_chars", "n_words", "n_lines", "stop_word_count")
_COLUMN_ORDER = (
    "n_chars",
    "n_words",
    "n_lines",
    "mean_word_len",
    "alpha_ratio",
    "digit_ratio",
    "upper_ratio",
    "whitespace_ratio",
    "symbol_ratio",
    "non_ascii_ratio",
    "dup_line_frac",
    "dup_para_frac",
    *(f"top_{n}gram_frac" for n in TOP_NGRAMS),
    *(f"dup_{n}gram_frac" for n in DUP_NGRAMS),
    "bullet_lines_frac",
    "ellipsis_lines_frac",
    "stop_word_count",
)


class HeuristicsScorer(BaseScorer):
    """Length, character-class, line and Gopher repetition signals per document."""

    name: ClassVar[str] = "heuristics"
    version: ClassVar[str] = "1"

    def __init__(self) -> None:
        # no settings: an explicit signature makes a mistyped setting an error, not a silent new fingerprint
        super().__init__()

    @property
    def schema(self) -> pa.Schema:
        fields = [pa.field("doc_id", pa.string())]
        for col in _COLUMN_ORDER:
            fields.append(pa.field(col, pa.int32() if col in _INT_COLUMNS else pa.float32()))
        return pa.schema(fields)

    def config(self) -> dict[str, object]:
        return {"top_ngrams": list(TOP_NGRAMS), "dup_ngrams": list(DUP_NGRAMS), "stop_words": list(STOP_WORDS)}

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        text = batch.column("text")
        if text.null_count:
            text = pc.fill_null(text, "")
        if not pa.types.is_large_string(text.type):
            text = text.cast(pa.large_string())  # _char_classes reads int64 offsets
        n_docs = len(text)
        out: dict[str, np.ndarray] = {}
        n_chars = _np(pc.utf8_length(text)).astype(np.int64)
        out["n_chars"] = n_chars
        for cls, count in _char_classes(text, n_chars).items():
            out[f"{cls}_ratio"] = _ratio(count, n_chars)

        out.update(_line_signals(text, n_docs, n_chars))
        out.update(_word_signals(text, n_docs))

        arrays = [batch.column("doc_id").cast(pa.string())]
        for col in _COLUMN_ORDER:
            typ = pa.int32() if col in _INT_COLUMNS else pa.float32()
            arrays.append(pa.array(out[col].astype(typ.to_pandas_dtype()), typ))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


# --- helpers -----------------------------------------------------------------


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (empty documents have no ratios)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _dense_ids(values: pa.Array | np.ndarray) -> np.ndarray:
    """Integer id per value, numbered in order of first appearance.

    Arrow's hash kernel numbers dictionary entries as it meets them, which is
    what makes ``_repeats`` a single pass.
    """
    if isinstance(values, np.ndarray):
        values = pa.array(values)
    return _np(pc.dictionary_encode(values).indices).astype(np.int64)


def _repeats(ids: np.ndarray) -> np.ndarray:
    """True where ``ids[i]`` already occurred before (ids from ``_dense_ids``)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=bool)
    seen = np.maximum.accumulate(ids)
    rep = np.ones(len(ids), dtype=bool)
    rep[0] = False
    rep[1:] = seen[1:] <= seen[:-1]  # a first occurrence raises the running max
    return rep


def _per_doc_sum(doc: np.ndarray, weights: np.ndarray, n_docs: int) -> np.ndarray:
    return np.bincount(doc, weights=weights, minlength=n_docs)


def _segment_max(values: np.ndarray, doc: np.ndarray, n_docs: int) -> np.ndarray:
    """Max of ``values`` per document (``doc`` sorted), 0 for documents with none."""
    out = np.zeros(n_docs, dtype=values.dtype)
    if len(values) == 0:
        return out
    starts = np.concatenate(([0], np.flatnonzero(np.diff(doc)) + 1))
    out[doc[starts]] = np.maximum.reduceat(values, starts)
    return out


def _char_classes(text: pa.LargeStringArray, n_chars: np.ndarray) -> dict[str, np.ndarray]:
    """Per-document character counts for each class, plus ``non_ascii``."""
    n_docs = len(text)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + n_docs + 1]
    data_buf = text.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    starts = offsets - offsets[0]
    nonempty = offsets[1:] > offsets[:-1]

    # One histogram of byte codes per document; numpy's per-call cost is tiny next
    # to a pass per class over the whole buffer with a widening reduction.
    byte_codes = _CODES[data]
    hist = np.zeros((n_docs, _N_CODES), dtype=np.int64)
    for i in np.flatnonzero(nonempty):
        hist[i] = np.bincount(byte_codes[starts[i] : starts[i + 1]], minlength=_N_CODES)

    counts = {cls: hist[:, _CODE_HAS[cls]].sum(axis=1) for cls in _ASCII_CLASS_CHARS}
    n_ascii = hist[:, _CODE_HAS["ascii"]].sum(axis=1)
    non_ascii = n_chars - n_ascii
    # ASCII symbols are whatever is left; non-ASCII ones are added below.
    counts["symbol"] = n_ascii - counts["alpha"] - counts["digit"] - counts["whitespace"]
    counts["non_ascii"] = non_ascii
    rows = np.flatnonzero(non_ascii > 0)
    if len(rows):
        rest = pc.replace_substring_regex(text.take(pa.array(rows)), _ASCII, "")
        for cls, pattern in _NON_ASCII_CLASS.items():
            counts[cls][rows] += _np(pc.utf8_length(pc.replace_substring_regex(rest, pattern, "")))
    return counts


def _flatten(lists: pa.Array, n_docs: int) -> tuple[pa.Array, np.ndarray]:
    """Flattened items plus the document index of each item."""
    lengths = _np(pc.fill_null(pc.list_value_length(lists), 0))
    return pc.list_flatten(lists), np.repeat(np.arange(n_docs), lengths)


def _dup_chars(pieces: pa.Array, doc: np.ndarray, n_docs: int) -> np.ndarray:
    """Per document, characters in non-blank pieces repeating an earlier piece.

    ``pieces`` (lines or paragraphs) come right-trimmed, so trailing spaces or
    ``\r`` do not make two otherwise equal lines differ.
    """
    length = _np(pc.utf8_length(pieces))
    keep = length > 0
    if not keep.any():
        return np.zeros(n_docs)
    content = _dense_ids(pieces.filter(pa.array(keep)))
    doc_k = doc[keep]
    rep = _repeats(_dense_ids(doc_k * (int(content.max()) + 1) + content))
    return _per_doc_sum(doc_k, length[keep] * rep, n_docs)


def _line_signals(text: pa.Array, n_docs: int, n_chars: np.ndarray) -> dict[str, np.ndarray]:
    lines, doc = _flatten(pc.split_pattern(text, "\n"), n_docs)
    lines = pc.utf8_rtrim_whitespace(lines)
    nonblank = _np(pc.utf8_length(lines)) > 0
    n_lines = _per_doc_sum(doc, nonblank, n_docs)
    bullet = _np(pc.match_substring_regex(lines, _BULLET)) & nonblank
    ellipsis = _np(pc.match_substring_regex(lines, _ELLIPSIS))

    paras, para_doc = _flatten(pc.split_pattern_regex(text, r"\n\s*\n"), n_docs)
    paras = pc.utf8_rtrim_whitespace(paras)
    return {
        "n_lines": n_lines,
        "dup_line_frac": _ratio(_dup_chars(lines, doc, n_docs), n_chars),
        "dup_para_frac": _ratio(_dup_chars(paras, para_doc, n_docs), n_chars),
        "bullet_lines_frac": _ratio(_per_doc_sum(doc, bullet, n_docs), n_lines),
        "ellipsis_lines_frac": _ratio(_per_doc_sum(doc, ellipsis, n_docs), n_lines),
    }


def _word_signals(text: pa.Array, n_docs: int) -> dict[str, np.ndarray]:
    words, doc = _flatten(pc.utf8_split_whitespace(text), n_docs)
    wlen = _np(pc.utf8_length(words)).astype(np.int64)
    # Leading/trailing whitespace yields empty tokens in Arrow's split.
    keep = wlen > 0
    if not keep.all():
        words, wlen, doc = words.filter(pa.array(keep)), wlen[keep], doc[keep]

    n_words = np.bincount(doc, minlength=n_docs)
    word_chars = _per_doc_sum(doc, wlen, n_docs)
    normalized = pc.utf8_lower(pc.utf8_trim(words, _PUNCT))
    is_stop = _np(pc.is_in(normalized, value_set=pa.array(STOP_WORDS, words.type)))
    out = {
        "n_words": n_words,
        "mean_word_len": _ratio(word_chars, n_words),
        "stop_word_count": _per_doc_sum(doc, is_stop, n_docs),
    }
    for n in TOP_NGRAMS:
        out[f"top_{n}gram_frac"] = np.zeros(n_docs)
    for n in DUP_NGRAMS:
        out[f"dup_{n}gram_frac"] = np.zeros(n_docs)
    if len(wlen):
        out.update(_ngram_signals(words, wlen, doc, n_docs, word_chars))
    return out


def _ngram_signals(
    words: pa.Array, wlen: np.ndarray, doc: np.ndarray, n_docs: int, word_chars: np.ndarray
) -> dict[str, np.ndarray]:
    """Top-n-gram and duplicate-n-gram fractions for every document at once.

    N-gram ids are exact, not hashes: the id of the n-gram at position i is
    the dense id of the pair (id of the (n-1)-gram at i, id of word i+n-1), and
    word ids include the document, so equal ids mean the same n-gram in the
    same document.

    Only *candidates* are tracked from one n to the next: an n-gram can occur
    twice only if its (n-1)-gram prefix does, so positions whose prefix is
    unique are dropped for good. On man pages, docs and code the nine levels
    together hashed ~2.4x the word count instead of 9x.
    """
    n_total = len(wlen)
    pos = np.arange(n_total)
    doc_end = np.cumsum(np.bincount(doc, minlength=n_docs))
    remaining = doc_end[doc] - pos  # words from position i to the end of its document
    cum_chars = np.concatenate(([0], np.cumsum(wlen)))

    word = _dense_ids(words)
    word = _dense_ids(doc * (int(word.max()) + 1) + word)
    radix = int(word.max()) + 1
    cand, ids = pos, word
    count = np.bincount(ids)[ids]
    out: dict[str, np.ndarray] = {}
    for n in range(2, max(DUP_NGRAMS) + 1):
        keep = (count >= 2) & (remaining[cand] >= n)
        cand = cand[keep]
        ids = _dense_ids(ids[keep] * radix + word[cand + n - 1])
        count = np.bincount(ids)[ids] if len(ids) else ids

        if n in TOP_NGRAMS:
            chars = cum_chars[cand + n] - cum_chars[cand]
            # Most frequent first, then longest: pack both into one sortable int.
            best = _segment_max((count << 32) | chars, doc[cand], n_docs)
            top_count, top_chars = best >> 32, best & 0xFFFFFFFF
            top = _ratio(np.where(top_count > 1, top_count * top_chars, 0), word_chars)
            out[f"top_{n}gram_frac"] = np.minimum(top, 1.0)
        if n in DUP_NGRAMS:
            # Union of the word spans [r, r+n) of repeated n-grams, each counted
            # up to where the next one starts; spans never cross documents.
            rep = cand[_repeats(ids)]
            span_end = np.minimum(rep + n, np.append(rep[1:], n_total))
            dup_chars = _per_doc_sum(doc[rep], cum_chars[span_end] - cum_chars[rep], n_docs)
            out[f"dup_{n}gram_frac"] = _ratio(dup_chars, word_chars)
    return out
