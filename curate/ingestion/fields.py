"""Map an input's fields onto curate's document columns, and refuse bad records.

Two paths produce the same normalized table:
- ``normalize_table`` for Arrow tables (Parquet, ``datasets``, JSON chunks parsed
  by pyarrow) — vectorized;
- ``normalize_rows`` for Python dicts (JSON lines that pyarrow could not parse
  as a block) — per row, so every bad line gets its own reason.
``validate`` then applies the checks that do not depend on the input format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from curate.ingestion.schema import QUARANTINE_SCHEMA, Reason

RAW_LIMIT = 2000  # characters of an offending record kept in quarantine


def missing_text(field_name: str) -> str:
    return f"field {field_name!r} is missing or null (use --text-field to map another field)"


@dataclass(frozen=True)
class FieldMap:
    """Which input fields feed which document columns.

    ``domain``/``source`` constants apply when the field is absent or null.
    ``meta="rest"`` keeps every unmapped field as a JSON object; ``"none"`` drops them.
    """

    text: str = "text"
    id: str | None = "id"
    url: str | None = "url"
    domain: str | None = "domain"
    source: str | None = "source"
    domain_value: str | None = None
    source_value: str | None = None
    meta: str = "rest"

    def mapped(self) -> set[str]:
        return {f for f in (self.text, self.id, self.url, self.domain, self.source) if f}


@dataclass
class Quarantine:
    """Accumulates rejected records for one input."""

    corpus: str
    input: str
    unit: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, position: int | None, reason: Reason, detail: str, raw: Any = None, count: int = 1) -> None:
        if raw is not None and not isinstance(raw, str):
            raw = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else _to_json(raw)
        self.rows.append(
            {
                "corpus": self.corpus,
                "input": self.input,
                "unit": self.unit,
                "position": position,
                "count": count,
                "reason": reason.value,
                "detail": detail,
                "raw": None if raw is None else raw[:RAW_LIMIT],
            }
        )

    @property
    def records(self) -> int:
        return sum(r["count"] for r in self.rows)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=QUARANTINE_SCHEMA)


def _to_json(obj: Any) -> str:
    """Compact JSON (UTF-8 kept as is). orjson is ~8x faster than json.dumps, which made meta the costliest
    step of ingest after parsing; json.dumps stays for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(obj, default=str).decode()
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


def _meta_json(rows: list[dict[str, Any]]) -> list[str | None]:
    out: list[str | None] = []
    for r in rows:
        kept = {k: v for k, v in r.items() if v is not None}
        out.append(_to_json(kept) if kept else None)
    return out


def _string_column(table: pa.Table, name: str | None, n: int, default: str | None = None) -> pa.Array:
    """A string column from ``name`` if present (cast when it is scalar), else ``default``."""
    if name and name in table.column_names:
        col = table.column(name).combine_chunks()
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            arr = col.cast(pa.string())
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
            arr = col.cast(pa.string())
        elif pa.types.is_null(col.type):
            arr = pa.nulls(n, pa.string())
        else:  # nested values: keep them readable as JSON
            arr = pa.array([None if v is None else _to_json(v) for v in col.to_pylist()], pa.string())
        if default is not None:
            arr = pc.fill_null(arr, default)
        return arr
    return pa.array([default] * n, pa.string()) if default is not None else pa.nulls(n, pa.string())


def normalize_table(table: pa.Table, fields: FieldMap, loc: pa.Array, q: Quarantine) -> pa.Table:
    """Vectorized mapping of an Arrow table; rows with a missing or non-string text go to ``q``."""
    n = table.num_rows
    if fields.text not in table.column_names:
        for p in loc.to_pylist():
            q.add(p, Reason.MISSING_TEXT, missing_text(fields.text))
        return _empty_normalized()
    text = table.column(fields.text).combine_chunks()
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type) or pa.types.is_null(text.type)):
        # a whole block of the wrong type: refuse each row with its value, keep nothing
        for p, v in zip(loc.to_pylist(), text.to_pylist()):
            if v is None:
                q.add(p, Reason.MISSING_TEXT, missing_text(fields.text))
            else:
                q.add(p, Reason.WRONG_TYPE, f"field {fields.text!r} is {type(v).__name__}, expected a string", v)
        return _empty_normalized()
    keep = pc.is_valid(text)
    if not pc.all(keep).as_py():
        for p in pc.filter(loc, pc.invert(keep)).to_pylist():
            q.add(p, Reason.MISSING_TEXT, missing_text(fields.text))
    rest = [c for c in table.column_names if c not in fields.mapped()]
    meta: pa.Array
    if fields.meta == "rest" and rest:
        meta = pa.array(_meta_json(table.select(rest).to_pylist()), pa.string())
    else:
        meta = pa.nulls(n, pa.string())
    out = pa.table(
        {
            "text": text.cast(pa.large_string()),
            "orig_id": _string_column(table, fields.id, n),
            "domain": _string_column(table, fields.domain, n, fields.domain_value),
            "source": _string_column(table, fields.source, n, fields.source_value),
            "url": _string_column(table, fields.url, n),
            "meta": meta,
            "loc": loc.cast(pa.int64()),
        }
    )
    return out.filter(keep)


def normalize_rows(rows: Sequence[dict[str, Any]], locs: Sequence[int], fields: FieldMap, q: Quarantine) -> pa.Table:
    """Per-row mapping of parsed JSON objects; each bad row gets its own reason."""
    cols: dict[str, list[Any]] = {c: [] for c in ("text", "orig_id", "domain", "source", "url", "meta", "loc")}
    mapped = fields.mapped()

    def scalar(v: Any) -> str | None:
        if v is None:
            return None
        return v if isinstance(v, str) else _to_json(v)

    for row, p in zip(rows, locs):
        text = row.get(fields.text)
        if text is None:
            q.add(p, Reason.MISSING_TEXT, missing_text(fields.text), row)
            continue
        if not isinstance(text, str):
            q.add(p, Reason.WRONG_TYPE, f"field {fields.text!r} is {type(text).__name__}, expected a string", row)
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            q.add(p, Reason.INVALID_UTF8, f"text holds a lone surrogate escape at character {exc.start}", row)
            continue
        cols["text"].append(text)
        cols["orig_id"].append(scalar(row.get(fields.id)) if fields.id else None)
        cols["domain"].append(scalar(row.get(fields.domain)) if fields.domain else None)
        if cols["domain"][-1] is None:
            cols["domain"][-1] = fields.domain_value
        cols["source"].append(scalar(row.get(fields.source)) if fields.source else None)
        if cols["source"][-1] is None:
            cols["source"][-1] = fields.source_value
        cols["url"].append(scalar(row.get(fields.url)) if fields.url else None)
        rest = {k: v for k, v in row.items() if k not in mapped and v is not None}
        cols["meta"].append(_to_json(rest) if rest and fields.meta == "rest" else None)
        cols["loc"].append(p)
    return pa.table(
        {
            "text": pa.array(cols["text"], pa.large_string()),
            "orig_id": pa.array(cols["orig_id"], pa.string()),
            "domain": pa.array(cols["domain"], pa.string()),
            "source": pa.array(cols["source"], pa.string()),
            "url": pa.array(cols["url"], pa.string()),
            "meta": pa.array(cols["meta"], pa.string()),
            "loc": pa.array(cols["loc"], pa.int64()),
        }
    )


def _empty_normalized() -> pa.Table:
    return normalize_rows([], [], FieldMap(), Quarantine("", "", ""))


WHITESPACE_ONLY = r"^[\s\x0b\x1c-\x1f\x85\p{Z}]*$"


def too_large(what: str, max_doc_bytes: int) -> str:
    """The quarantine detail of a document over the size limit: its size, the limit and how to raise it."""
    return (f"{what}, over the document size limit of {max_doc_bytes:,} bytes "
            f"(raise --max-doc-mb, or max_doc_bytes in Python, to keep it)")


def _may_hold_nul(text: pa.ChunkedArray | pa.Array) -> bool:
    """False only when no string of ``text`` holds a NUL byte (a byte seen outside a slice's strings only
    sends the column to the exact per-row search)."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    data = [c.buffers()[2] for c in chunks]
    return any(b is not None and b.to_pybytes().find(b"\x00") >= 0 for b in data)


def validate(table: pa.Table, q: Quarantine, max_doc_bytes: int) -> tuple[pa.Table, pa.Array]:
    """Refuse empty, NUL-containing and oversized texts; return kept rows and their byte sizes."""
    if table.num_rows == 0:
        return table, pa.array([], pa.int64())
    text = table.column("text")
    n_bytes = pc.binary_length(text)
    # whitespace as Python's str.isspace: RE2's \s alone misses NBSP, U+3000 and other Unicode spaces
    empty = pc.match_substring_regex(text, WHITESPACE_ONLY)  # anchored: stops at the first non-space
    # one memchr over the column's bytes first: the per-row substring search cost as much as parsing the JSON
    nul = pc.match_substring(text, "\x00") if _may_hold_nul(text) else pa.nulls(len(text), pa.bool_()).fill_null(False)
    big = pc.greater(n_bytes, max_doc_bytes)
    bad = pc.or_(pc.or_(empty, nul), big)
    if pc.any(bad).as_py():
        idx = pc.indices_nonzero(bad).to_pylist()
        locs = table.column("loc")
        for i in idx:
            p = locs[i].as_py()
            if big[i].as_py():
                size = n_bytes[i].as_py()
                q.add(
                    p,
                    Reason.TOO_LARGE,
                    too_large(f"text is {size:,} bytes", max_doc_bytes),
                    text[i].as_py()[:RAW_LIMIT],
                )
            elif nul[i].as_py():
                q.add(p, Reason.NUL_BYTES, "text contains NUL bytes (binary data?)", text[i].as_py())
            else:
                q.add(p, Reason.EMPTY_TEXT, "text is empty or only whitespace")
        keep = pc.invert(bad)
        table = table.filter(keep)
        n_bytes = pc.filter(n_bytes, keep)
    return table, n_bytes.combine_chunks() if isinstance(n_bytes, pa.ChunkedArray) else n_bytes
