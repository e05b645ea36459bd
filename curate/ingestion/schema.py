"""Declared schemas for document shards and quarantine files, and the reasons a record is refused."""

from __future__ import annotations

from enum import Enum

import pyarrow as pa

#: One document per row. ``text`` is large_string so a shard may exceed 2 GiB of text.
DOC_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("orig_id", pa.string()),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("domain", pa.string()),
        pa.field("source", pa.string()),
        pa.field("url", pa.string()),
        pa.field("n_bytes", pa.int64(), nullable=False),
        pa.field("meta", pa.string()),  # JSON object of the input's other fields
    ]
)

#: One rejected record (or a range of them, ``count`` > 1) per row.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("input", pa.string(), nullable=False),
        pa.field("unit", pa.string(), nullable=False),  # line | row | file | byte
        pa.field("position", pa.int64()),  # 1-based line, 0-based row / file index
        pa.field("count", pa.int64(), nullable=False),  # records this entry stands for
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.large_string()),  # the offending input, truncated
    ]
)


class Reason(str, Enum):
    """Why a record went to quarantine. The value is what lands in the table."""

    MALFORMED_JSON = "malformed_json"
    NOT_OBJECT = "not_object"
    MISSING_TEXT = "missing_text"
    EMPTY_TEXT = "empty_text"
    WRONG_TYPE = "wrong_type"
    INVALID_UTF8 = "invalid_utf8"
    NUL_BYTES = "nul_bytes"
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"
    BINARY = "binary"


#: Normalized columns every reader produces before validation (``loc`` = position in its input).
NORMALIZED_COLUMNS = ("text", "orig_id", "domain", "source", "url", "meta", "loc")
