"""Input readers: JSON lines (plain/.gz/.zst), Parquet, directories of text files, Hugging Face datasets.

Each reader streams ``Piece``s — a normalized Arrow table of good records plus
the records it refused — and reports how far into its input it has read
(``position``: lines, rows or files), so an interrupted ingest resumes at the
last committed position. Memory stays bounded by one chunk per reader.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from curate.errors import ConfigError, NoInputFiles
from curate.ingestion.fields import (
    FieldMap,
    Quarantine,
    normalize_rows,
    normalize_table,
    too_large,
)
from curate.ingestion.schema import Reason

CHUNK_BYTES = 8 << 20  # JSON bytes handed to pyarrow per block
READ_BYTES = 4 << 20
PARSE_BLOCK = 1 << 20  # pyarrow JSON block: parsed in parallel; also the fast path's longest line
BATCH_ROWS = 8192
HEAD_BYTES = 8192  # a JSON lines input whose first bytes hold a NUL is refused as binary
_COMPRESSION = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
FORMATS = ("auto", "jsonl", "parquet", "text", "hf")


@dataclass
class Piece:
    """What a reader hands over: kept records (normalized) and refused ones."""

    table: pa.Table
    quarantine: Quarantine
    position: int  # input position after this piece (resume point)
    records: int  # records read in this piece (kept candidates + refused)


@dataclass
class Input:
    """One input: a file, a directory of text files, or a datasets object."""

    name: str  # what users see in summaries and quarantine
    format: str
    path: str | None = None
    obj: Any = None  # a datasets.Dataset / IterableDataset
    files: list[str] = field(default_factory=list)  # for text directories
    unit: str = "line"

    def fingerprint(self) -> dict[str, Any]:
        if self.obj is not None:
            fp = getattr(self.obj, "_fingerprint", None) or hashlib.sha256(repr(self.obj).encode()).hexdigest()
            return {"name": self.name, "format": self.format, "fingerprint": fp}
        paths = self.files or [self.path]
        h = hashlib.sha256()
        size = 0
        for p in paths:
            st = os.stat(p)
            size += st.st_size
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"name": self.name, "format": self.format, "bytes": size, "fingerprint": h.hexdigest()[:16]}

    def size_bytes(self) -> int:
        if self.obj is not None:
            return 0
        return sum(os.path.getsize(p) for p in (self.files or [self.path]))


def discover(sources: list[Any], fmt: str = "auto", text_glob: str = "**/*") -> list[Input]:
    """Expand user sources (paths, directories, datasets objects) into ordered inputs."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out: list[Input] = []
    for src in sources:
        if not isinstance(src, (str, os.PathLike)):
            if not hasattr(src, "features"):
                raise ConfigError(f"cannot ingest a {type(src).__name__}: pass a path or a datasets Dataset")
            out.append(Input(name=f"<{type(src).__name__}>", format="hf", obj=src, unit="row"))
            continue
        p = Path(src)
        if not p.exists():
            raise ConfigError(f"input {str(src)!r} does not exist")
        if p.is_dir():
            out.extend(_discover_dir(p, fmt, text_glob))
        else:
            out.append(_file_input(p, fmt))
    if not out:
        raise NoInputFiles(f"no input files found in {', '.join(map(str, sources))}")
    return out


def _file_input(p: Path, fmt: str) -> Input:
    if fmt in ("auto", "jsonl", "parquet"):
        kind = fmt
        if kind == "auto":
            stem = p.name
            for suf in _COMPRESSION:
                if stem.endswith(suf):
                    stem = stem[: -len(suf)]
            if stem.endswith(".parquet"):
                kind = "parquet"
            elif stem.endswith(_JSONL_SUFFIXES):
                kind = "jsonl"
            else:
                raise ConfigError(
                    f"cannot tell the format of {str(p)!r} from its name: pass --format jsonl|parquet|text"
                )
        return Input(name=str(p), format=kind, path=str(p), unit="line" if kind == "jsonl" else "row")
    if fmt == "text":
        return Input(name=str(p), format="text", files=[str(p)], unit="file")
    raise ConfigError(f"--format {fmt} expects a directory saved by datasets.save_to_disk, got the file {str(p)!r}")


def _discover_dir(p: Path, fmt: str, text_glob: str) -> list[Input]:
    saved_by_datasets = (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()
    if fmt == "hf" or (fmt == "auto" and saved_by_datasets):
        return [Input(name=str(p), format="hf", path=str(p), unit="row")]
    files = sorted(f for f in p.glob(text_glob) if f.is_file() and not f.name.startswith("."))
    if not files:  # an empty landing directory holds no input (not an input of zero text files)
        return []
    if fmt == "text":
        return [Input(name=str(p), format="text", files=[str(f) for f in files], unit="file")]
    data = [f for f in files if _looks_like_data(f)]
    if fmt == "auto" and data and len(data) == len(files):
        return [_file_input(f, "auto") for f in data]
    if fmt in ("jsonl", "parquet"):
        return [_file_input(f, fmt) for f in files]
    return [Input(name=str(p), format="text", files=[str(f) for f in files], unit="file")]


def _looks_like_data(f: Path) -> bool:
    name = f.name
    for suf in _COMPRESSION:
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name.endswith((".parquet", *_JSONL_SUFFIXES))


@dataclass(frozen=True)
class ReadContext:
    """What every reader needs besides its input."""

    corpus: str
    fields: FieldMap
    max_doc_bytes: int
    batch_rows: int = BATCH_ROWS  # rows per piece for row-based inputs (commits happen between pieces)

    def quarantine(self, inp: Input) -> Quarantine:
        return Quarantine(self.corpus, inp.name, inp.unit)

    def empty(self) -> pa.Table:
        return normalize_rows([], [], self.fields, Quarantine(self.corpus, "", ""))


def read(inp: Input, ctx: ReadContext, skip: int = 0, stop: int | None = None) -> Iterator[Piece]:
    """Stream ``inp`` from position ``skip`` (as recorded in an earlier ``Piece.position``).

    ``stop``: a Parquet input's row to stop before (a row range from :func:`parquet_row_cuts`)."""
    if stop is not None:
        if inp.format != "parquet":
            raise ValueError(f"stop is a Parquet row; {inp.name} is {inp.format}")
        yield from _read_parquet(inp, ctx, skip, stop)
        return
    reader = {"jsonl": _read_jsonl, "parquet": _read_parquet, "text": _read_text, "hf": _read_hf}[inp.format]
    yield from reader(inp, ctx, skip)


# ------------------------------------------------------------------ JSON lines


def _open_stream(path: str) -> pa.NativeFile:
    comp = next((c for s, c in _COMPRESSION.items() if path.endswith(s)), None)
    return pa.input_stream(path, compression=comp)


@dataclass
class _Bad:
    """A stretch of input the chunker refused before parsing."""

    line: int
    reason: Reason
    detail: str
    raw: bytes


def _line_chunks(stream: Any, max_doc_bytes: int) -> Iterator[tuple[int, bytes, int] | _Bad]:
    """(first line number, bytes, newlines in them) chunks cut at newlines, or ``_Bad`` for damage and
    over-long lines. Each chunk is copied once and its newlines counted once (both showed in profiles)."""
    max_line = 2 * max_doc_bytes + (1 << 20)  # JSON escapes may double a text; longer lines cannot hold a keeper
    buf = bytearray()
    line_no = 1
    while True:
        try:
            block = stream.read(READ_BYTES)
        except (OSError, pa.ArrowException) as exc:
            # keep every complete line before the damage, refuse the rest
            cut = buf.rfind(b"\n") + 1
            if cut:
                chunk = bytes(memoryview(buf)[:cut])
                newlines = chunk.count(b"\n")
                yield line_no, chunk, newlines
                line_no += newlines
            yield _Bad(
                line_no,
                Reason.UNREADABLE,
                f"input is truncated or corrupt from line {line_no} on ({exc}); the lines before it were kept",
                bytes(buf[cut : cut + 200]),
            )
            return
        if not block:
            break
        buf += block
        if len(buf) < CHUNK_BYTES:
            continue
        cut = buf.rfind(b"\n") + 1
        if cut:
            chunk = bytes(memoryview(buf)[:cut])
            newlines = chunk.count(b"\n")
            yield line_no, chunk, newlines
            line_no += newlines
            del buf[:cut]
        elif len(buf) > max_line:
            # one line longer than any document we accept: drop it without holding it all
            head, skipped = bytes(buf[:200]), len(buf)
            buf = bytearray()
            while block:
                block = stream.read(READ_BYTES)
                nl = block.find(b"\n")
                if nl >= 0:
                    skipped += nl
                    buf = bytearray(block[nl + 1 :])
                    break
                skipped += len(block)
            yield _Bad(line_no, Reason.TOO_LARGE, too_large(f"line is {skipped:,} bytes", max_doc_bytes), head)
            line_no += 1
    if buf:
        chunk = bytes(buf)
        yield line_no, chunk, chunk.count(b"\n")


def splittable(inp: Input) -> bool:
    """Whether ``inp`` can be read in byte ranges (:func:`read_jsonl_range`): plain JSON lines, not binary."""
    if inp.format != "jsonl" or inp.path is None or any(inp.path.endswith(s) for s in _COMPRESSION):
        return False
    with open(inp.path, "rb") as f:
        return b"\x00" not in f.read(HEAD_BYTES)  # a binary file is refused whole, as one record


def line_starts(path: str, start: int, every: int) -> list[int]:
    """Byte offsets of line starts about ``every`` bytes apart from ``start`` on (``start`` first, the file's
    size last): the byte ranges a large JSON lines file is read in, each holding whole lines."""
    size = os.path.getsize(path)
    cuts = [start]
    with open(path, "rb") as f:
        while cuts[-1] + every < size:
            f.seek(cuts[-1] + every - 1)  # from the byte before: a range may end right after a newline
            while True:
                block = f.read(1 << 16)
                nl = block.find(b"\n")
                if not block or nl >= 0:
                    break
            if not block:
                break
            cut = f.tell() - len(block) + nl + 1
            if cut >= size:
                break
            cuts.append(cut)
    return [*cuts, size]


class _Range:
    """``read()`` of the bytes ``[start, end)`` of a file."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, n: int) -> bytes:
        if self._left <= 0:
            return b""
        out = self._stream.read(min(n, self._left))
        self._left -= len(out)
        return out


def read_jsonl_range(inp: Input, ctx: ReadContext, start: int, end: int) -> Iterator[Piece]:
    """Stream the whole lines in bytes ``[start, end)`` of a plain JSON lines file (``start`` and ``end`` at
    line starts). Line numbers in pieces and quarantine count from the range's first line as line 1:
    the caller adds the lines before it."""
    assert inp.path is not None
    with open(inp.path, "rb") as f:
        f.seek(start)
        stream = _Range(f, end - start)
        if start == 0:
            yield from _jsonl_pieces(inp, ctx, 0, stream)
            return
        yield from _jsonl_lines(inp, ctx, 0, stream, b"")


def _read_jsonl(inp: Input, ctx: ReadContext, skip: int) -> Iterator[Piece]:
    assert inp.path is not None
    with _open_stream(inp.path) as stream:
        yield from _jsonl_pieces(inp, ctx, skip, stream)


def _jsonl_pieces(inp: Input, ctx: ReadContext, skip: int, stream: Any) -> Iterator[Piece]:
    """A JSON lines input from its first byte: refused whole when unreadable or binary, else read by line."""
    q = ctx.quarantine(inp)
    try:
        head = stream.read(HEAD_BYTES)
    except (OSError, pa.ArrowException) as exc:
        q.add(1, Reason.UNREADABLE, f"cannot read the input ({exc}); is it a valid compressed file?")
        yield Piece(ctx.empty(), q, 1, 1)
        return
    if b"\x00" in head:
        q.add(1, Reason.BINARY, "input holds NUL bytes: this looks like a binary file, not JSON lines", head[:200])
        yield Piece(ctx.empty(), q, 1, 1)
        return
    yield from _jsonl_lines(inp, ctx, skip, stream, head)


def _jsonl_lines(inp: Input, ctx: ReadContext, skip: int, stream: Any, head: bytes) -> Iterator[Piece]:
    position = 0
    for item in _line_chunks(_Prepend(head, stream), ctx.max_doc_bytes):
        if isinstance(item, _Bad):
            if item.line > skip:
                q = ctx.quarantine(inp)
                q.add(item.line, item.reason, item.detail, item.raw)
                position = max(position, item.line)
                yield Piece(ctx.empty(), q, position, 1)
            continue
        first_line, chunk, newlines = item
        n_lines = newlines + (0 if chunk.endswith(b"\n") else 1)
        end = first_line - 1 + n_lines
        if end <= skip:
            continue
        if first_line <= skip:  # resume inside this chunk
            chunk = b"\n".join(chunk.split(b"\n")[skip - first_line + 1 :])
            first_line = skip + 1
        q = ctx.quarantine(inp)
        table, records = _parse_chunk(chunk, first_line, ctx.fields, q, end - first_line + 1)
        yield from _split_piece(table, q, first_line - 1, end, records, ctx, inp)
        position = end


def _split_piece(table: pa.Table, q: Quarantine, start: int, end: int, records: int, ctx: ReadContext,
                 inp: Input) -> Iterator[Piece]:
    """Cut a parsed chunk (lines start+1..end) into pieces of ``ctx.batch_rows`` so shards stay near their size.

    Each piece ends at its last document's line; refused lines go with the piece whose range holds them.
    """
    if table.num_rows <= ctx.batch_rows:
        yield Piece(table, q, end, records)
        return
    locs = table.column("loc").to_pylist()
    lo = 0
    prev = start
    while lo < table.num_rows:
        hi = min(lo + ctx.batch_rows, table.num_rows)
        stop = end if hi == table.num_rows else locs[hi - 1]
        part = ctx.quarantine(inp)
        part.rows = [r for r in q.rows if prev < r["position"] <= stop]
        yield Piece(table.slice(lo, hi - lo), part, stop, (hi - lo) + part.records)
        lo, prev = hi, stop


class _Prepend:
    """A read()-able stream with bytes already consumed put back in front."""

    def __init__(self, head: bytes, stream: pa.NativeFile) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._stream.read(n)


def _parse_chunk(chunk: bytes, first_line: int, fields: FieldMap, q: Quarantine,
                 lines_in_chunk: int) -> tuple[pa.Table, int]:
    """Fast path: pyarrow parses the whole block; on any doubt, parse line by line for exact reasons.

    Returns the normalized table and the number of records (non-blank lines) read.
    """
    try:
        # 1 MB blocks let pyarrow parse on every core; a longer line fails the block and
        # takes the exact per-line path below
        table = pajson.read_json(
            pa.py_buffer(chunk),
            read_options=pajson.ReadOptions(block_size=min(len(chunk) + 1, PARSE_BLOCK), use_threads=True),
        )
        table.validate(full=True)  # pyarrow's JSON parser does not check UTF-8; this does (SIMD-fast)
        if table.num_rows == lines_in_chunk:  # no blank lines, so row i is line first_line + i
            loc = pa.array(range(first_line, first_line + table.num_rows), pa.int64())
            return normalize_table(table, fields, loc, q), table.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    rows: list[dict[str, Any]] = []
    locs: list[int] = []
    records = 0
    for i, raw in enumerate(chunk.split(b"\n")):
        if not raw.strip():
            continue
        records += 1
        line = first_line + i
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            q.add(line, Reason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start} of the line", raw)
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as exc:
            at = "" if exc.msg.endswith(" at") else " at"  # "Unterminated string starting at" names a place already
            q.add(line, Reason.MALFORMED_JSON, f"malformed JSON: {exc.msg}{at} column {exc.colno}", s)
            continue
        if not isinstance(obj, dict):
            q.add(line, Reason.NOT_OBJECT, f"expected a JSON object, got a JSON {_json_kind(obj)}", s)
            continue
        rows.append(obj)
        locs.append(line)
    return normalize_rows(rows, locs, fields, q), records


def _json_kind(obj: Any) -> str:
    kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return kinds.get(type(obj), type(obj).__name__)


# --------------------------------------------------------------------- Parquet


def parquet_row_cuts(path: str, start: int, every: int) -> list[int]:
    """Row numbers at row-group boundaries about ``every`` compressed bytes apart from row ``start`` on
    (``start`` first, the file's row count last): the row ranges a large Parquet file is read in. A file
    whose footer cannot be read is one range (reading it quarantines it)."""
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return [start, start + 1]
    cuts, row, size = [start], 0, 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        row += group.num_rows
        if row <= start:
            continue
        size += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        if size >= every and row < meta.num_rows:
            cuts.append(row)
            size = 0
    return [*cuts, max(meta.num_rows, start + 1)]


def _read_parquet(inp: Input, ctx: ReadContext, skip: int, stop: int | None = None) -> Iterator[Piece]:
    assert inp.path is not None
    fields = ctx.fields
    q = ctx.quarantine(inp)
    try:
        pf = pq.ParquetFile(inp.path)
    except (OSError, pa.ArrowException) as exc:
        q.add(None, Reason.UNREADABLE, f"not a readable Parquet file ({exc}); re-export it or remove it")
        yield Piece(ctx.empty(), q, 1, 1)
        return
    names = pf.schema_arrow.names
    n_rows = pf.metadata.num_rows
    end = n_rows if stop is None else min(stop, n_rows)
    if fields.text not in names:
        # one record for the rows read here (a row range counts only its own rows)
        q.add(
            skip,
            Reason.MISSING_TEXT,
            f"no column {fields.text!r} (columns: {', '.join(names)}); use --text-field to pick one",
            count=max(end - skip, 1),
        )
        yield Piece(ctx.empty(), q, end, max(end - skip, 1))
        return
    # start at the row group holding row ``skip`` (a resume or a row range), stop after the one holding ``end``
    groups, start, first_row = [], 0, 0
    for g in range(pf.num_row_groups):
        rows = pf.metadata.row_group(g).num_rows
        if start + rows > skip and start < end:
            if not groups:
                first_row = start
            groups.append(g)
        start += rows
    row = first_row
    try:
        for batch in pf.iter_batches(batch_size=ctx.batch_rows, row_groups=groups):
            if row >= end:
                break
            if row + batch.num_rows > end:
                batch = batch.slice(0, end - row)
            n = batch.num_rows
            table = pa.Table.from_batches([batch])
            if row < skip:
                table = table.slice(skip - row)
            first = max(row, skip)
            loc = pa.array(range(first, row + n), pa.int64())
            out = normalize_table(table, fields, loc, q)
            row += n
            yield Piece(out, q, row, table.num_rows)
            q = ctx.quarantine(inp)
    except (OSError, pa.ArrowException) as exc:
        q.add(row, Reason.UNREADABLE, f"corrupt data from row {row} on ({exc}); earlier rows were kept")
        yield Piece(ctx.empty(), q, row + 1, 1)


# ------------------------------------------------------------- text directories


def _read_text(inp: Input, ctx: ReadContext, skip: int) -> Iterator[Piece]:
    """One document per file; the id is the path relative to the directory (or file name)."""
    files = inp.files
    base = Path(inp.name) if Path(inp.name).is_dir() else Path(files[0]).parent if files else Path(".")
    # text files carry no field names: map their synthetic ones, keep the user's constants
    fields = dataclasses.replace(ctx.fields, text="text", id="id", url="path", domain=None, source=None)
    for start in range(skip, len(files), 1000):
        q = ctx.quarantine(inp)
        rows: list[dict[str, Any]] = []
        locs: list[int] = []
        batch = files[start : start + 1000]
        for i, f in enumerate(batch, start):
            rel = os.path.relpath(f, base)
            try:
                data = Path(f).read_bytes()
            except OSError as exc:
                q.add(i, Reason.UNREADABLE, f"{rel}: cannot read ({exc})")
                continue
            if b"\x00" in data:
                q.add(i, Reason.NUL_BYTES, f"{rel}: file holds NUL bytes (binary?)", data[:200])
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                q.add(i, Reason.INVALID_UTF8, f"{rel}: invalid UTF-8 at byte {exc.start}", data[:200])
                continue
            rows.append({"text": text, "id": rel, "path": rel})
            locs.append(i)
        yield Piece(normalize_rows(rows, locs, fields, q), q, start + len(batch), len(batch))


# ------------------------------------------------------------ Hugging Face datasets


def _read_hf(inp: Input, ctx: ReadContext, skip: int) -> Iterator[Piece]:
    ds = inp.obj
    if ds is None:
        import datasets

        ds = datasets.load_from_disk(inp.path)
        if isinstance(ds, datasets.DatasetDict):
            split = "train" if "train" in ds else next(iter(ds))
            ds = ds[split]
    row = skip
    if hasattr(ds, "with_format") and hasattr(ds, "__len__"):
        # map-style Dataset: it is Arrow already, hand the tables over without copies
        if skip:
            ds = ds.select(range(skip, len(ds)))
        batches = (t for t in ds.with_format("arrow").iter(batch_size=ctx.batch_rows))
    else:
        if skip:
            ds = ds.skip(skip)
        batches = (_dict_batch(b) for b in ds.iter(batch_size=ctx.batch_rows))
    for table in batches:
        q = ctx.quarantine(inp)
        n = table.num_rows if isinstance(table, pa.Table) else len(table)
        loc = list(range(row, row + n))
        if isinstance(table, pa.Table):
            out = normalize_table(table, ctx.fields, pa.array(loc, pa.int64()), q)
        else:
            out = normalize_rows(table, loc, ctx.fields, q)
        row += n
        yield Piece(out, q, row, n)


def _dict_batch(batch: dict[str, list[Any]]) -> pa.Table | list[dict[str, Any]]:
    try:
        return pa.table(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        keys = list(batch)
        return [dict(zip(keys, vals)) for vals in zip(*batch.values())]
