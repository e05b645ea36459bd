"""A built mixture as the files pretraining frameworks read: Megatron's indexed dataset or flat token files.

The token stream is the loader's (:class:`curate.mixture.loader.MixtureDataset`): each document's
ids (``bytes``: its UTF-8 bytes; a Hugging Face tokenizer: the ids the build stored) followed by
the EOS id, in training order. One output per phase, so a trainer can switch at the
end-of-training phase:

- ``megatron``: ``<out>/<mixture>-<phase>.bin`` + ``.idx`` in Megatron-LM's indexed-dataset layout
  (one document per entry, EOS included; ``uint16`` when the vocabulary fits, else ``int32``, as
  Megatron's own preprocessing picks) and ``data_path.txt`` with the ``--data-path`` arguments;
- ``tokens``: ``<out>/<mixture>-<phase>.tokens`` (``uint16`` or ``uint32``, what ``numpy.memmap``
  opens, the nanoGPT / OLMo layout) and ``.offsets.npy`` (``int64``, document starts plus the end).

Writes stream a few row groups at a time (memory stays flat as the mixture grows; the next ones are read
in a background thread meanwhile, and the disk write of what is written is started as it goes), go to
temporary names renamed at the end (synced first), are byte-identical when repeated, and are recorded
with sizes, token counts and xxh3-128 hashes in the mixture's ``manifest.json`` under ``exports``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from curate.errors import ConfigError
from curate.mixture.manifest import MixtureManifest
from curate.mixture.stream import document_tokens
from curate.store import Store

FORMATS = ("megatron", "tokens")
#: Megatron-LM's indexed dataset: magic, version 1, then the dtype code of ``DType`` (megatron.core.datasets)
MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPES = {np.dtype(np.uint8): 1, np.dtype(np.int32): 4, np.dtype(np.int64): 5, np.dtype(np.uint16): 8}
#: decoded bytes of the parts read per step: a few row groups, so reading overlaps converting and writing
READ_BYTES = 4 << 20
CHUNK = 1 << 20  # index entries written per chunk
FLUSH_BYTES = 8 << 20  # written bytes after which their disk write is started


@dataclass
class ExportedPhase:
    """One phase's files and what is in them."""

    phase: str
    prefix: str
    documents: int
    tokens: int
    files: dict[str, dict[str, Any]]  # file name -> {"bytes": int, "xxh3_128": str}


def default_dtype(fmt: str, vocab_size: int) -> np.dtype:
    """Megatron: uint16 below 65,500 ids (its own rule), else int32; flat tokens: uint16 or uint32."""
    if fmt == "megatron":
        return np.dtype(np.uint16 if vocab_size < 65_500 else np.int32)
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def export_mixture(store: Store | str, name: str, fmt: str = "megatron", out: str | os.PathLike[str] | None = None,
                   *, dtype: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write mixture ``name`` of ``store`` as ``fmt`` files into ``out`` (default: the mixture's
    ``export-<fmt>/`` folder in a local store); returns the record added to the manifest. An export the
    manifest records for this build, with its files in place, is returned as it is (``reused``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: choose {' or '.join(FORMATS)}")
    mix = MixtureManifest.load(store, name)
    st = mix.store
    eos, vocab = mix.vocabulary()
    chosen = np.dtype(dtype) if dtype else default_dtype(fmt, vocab)
    allowed = set(MEGATRON_DTYPES) if fmt == "megatron" else {np.dtype(np.uint16), np.dtype(np.uint32)}
    if chosen not in allowed:
        raise ConfigError(f"dtype {chosen.name} is not one {fmt} files take: {', '.join(sorted(d.name for d in allowed))}")
    if vocab - 1 > np.iinfo(chosen).max:
        raise ConfigError(f"the tokenizer's {vocab:,} ids do not fit {chosen.name} (max {np.iinfo(chosen).max:,}): "
                          f"choose a wider --dtype")
    out_dir = _output_dir(st, mix, fmt, out)
    done = _up_to_date(mix, fmt, out_dir, chosen)
    if done is not None and not overwrite:
        return {**done, "reused": True}
    if out_dir.exists() and any(out_dir.iterdir()):
        foreign = [p.name for p in out_dir.iterdir() if not _ours(p.name, name)]
        if foreign and not overwrite:
            raise ConfigError(f"{out_dir} already holds files an export of {name!r} did not write (e.g. "
                              f"{foreign[0]}): pass --overwrite (overwrite=True) to replace them")
        shutil.rmtree(out_dir)  # or only an earlier export of this mixture (another build): replaced
    out_dir.mkdir(parents=True, exist_ok=True)
    phases = []
    for phase, docs in _phase_streams(mix, eos, chosen):
        prefix = out_dir / f"{name}-{phase}"
        phases.append(_write_phase(prefix, phase, docs, chosen, fmt))
    record = {"format": fmt, "dir": str(out_dir), "reused": False, "dtype": chosen.name, "eos_id": eos, "vocab_size": vocab,
              "mixture_fingerprint": mix.fingerprint, "phases": [asdict(p) for p in phases],
              "tokens": sum(p.tokens for p in phases), "documents": sum(p.documents for p in phases)}
    if fmt == "megatron":
        (out_dir / "data_path.txt").write_text(_data_path_text(phases))
    data = dict(mix.data)
    data.setdefault("exports", {})[fmt] = record
    st.write_json(f"{mix.dir}/manifest.json", data)
    return record


def _ours(file: str, name: str) -> bool:
    """Whether ``file`` is one an export of mixture ``name`` writes."""
    return file == "data_path.txt" or (file.startswith(f"{name}-") and
                                       file.endswith((".bin", ".idx", ".tokens", ".offsets.npy")))


def _up_to_date(mix: MixtureManifest, fmt: str, out_dir: Path, dtype: np.dtype) -> dict[str, Any] | None:
    """The manifest's record of this export when its files are all there as recorded, for this build."""
    record = mix.data.get("exports", {}).get(fmt)
    if not record or record.get("dir") != str(out_dir) or record.get("dtype") != dtype.name \
            or record.get("mixture_fingerprint") != mix.fingerprint:
        return None
    for phase in record["phases"]:
        for name, info in phase["files"].items():
            path = out_dir / name
            if not path.is_file() or path.stat().st_size != info["bytes"]:
                return None
    return record


def _output_dir(st: Store, mix: MixtureManifest, fmt: str, out: str | os.PathLike[str] | None) -> Path:
    if out is None:
        if not st.is_local:
            raise ConfigError(f"{st.uri} is not a local store: give --out, a local folder for the {fmt} files")
        return Path(st.path(mix.dir, f"export-{fmt}")).resolve()
    path = Path(out).resolve()
    if st.is_local:
        shards = Path(st.path("shards")).resolve()
        if path == shards or shards in path.parents:
            raise ConfigError(f"--out {out} is inside the store's shards ({shards}): choose another folder")
    return path


def _phase_streams(mix: MixtureManifest, eos: int, dtype: np.dtype) -> Iterator[tuple[str, Iterator[tuple[np.ndarray, np.ndarray]]]]:
    """(phase, its batches) in training order; a batch is (tokens with EOS after each document, lengths)."""
    for phase, group in itertools.groupby(_batches(mix, eos, dtype), key=lambda b: b[0]):
        yield phase, ((tokens, lengths) for _, tokens, lengths in group)


def _batches(mix: MixtureManifest, eos: int, dtype: np.dtype) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(phase, tokens, per-document lengths) per run of one phase within a row group of the parts."""
    column = "text" if mix.data.get("tokenizer", "bytes") == "bytes" else "token_ids"
    for table in _read_ahead(_part_slices(mix, ["phase", column])):
        for batch in table.to_batches():
            runs = pc.run_end_encode(batch.column(0))  # the phase changes at most once per batch
            lo = 0
            for phase, hi in zip(runs.values.to_pylist(), runs.run_ends.to_pylist()):
                yield phase, *document_tokens(batch.column(1).slice(lo, hi - lo), eos, dtype)
                lo = hi


def _part_slices(mix: MixtureManifest, columns: list[str]) -> Iterator[pa.Table]:
    """The parts' ``columns`` in training order, a few row groups (``READ_BYTES`` decoded) at a time."""
    st = mix.store
    for part in mix.parts:
        with st.fs.open_input_file(st.path(f"{mix.dir}/{part['name']}")) as f:
            pf = pq.ParquetFile(f)
            groups: list[int] = []
            size = 0
            for g in range(pf.metadata.num_row_groups):
                groups.append(g)
                size += pf.metadata.row_group(g).total_byte_size
                if size >= READ_BYTES or g + 1 == pf.metadata.num_row_groups:
                    yield pf.read_row_groups(groups, columns=columns, use_threads=False)
                    groups, size = [], 0


def _read_ahead(items: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """``items``, each read and decoded in a background thread while the caller converts and writes the one
    before (pyarrow's decoding and the file writes release the GIL: the two use both cores)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(next, items, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, items, None)
            yield item


def _write_phase(prefix: Path, phase: str, docs: Iterator[tuple[np.ndarray, np.ndarray]], dtype: np.dtype,
                 fmt: str) -> ExportedPhase:
    data_path = Path(f"{prefix}.bin" if fmt == "megatron" else f"{prefix}.tokens")
    n_docs = n_tokens = 0
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=prefix.parent) as tmp:
        lengths_file = Path(tmp) / "lengths"
        with _atomic(data_path, digests) as data, open(lengths_file, "wb") as lens:
            for tokens, lengths in docs:
                data.write(memoryview(tokens))
                lens.write(memoryview(lengths))
                n_docs += len(lengths)
                n_tokens += len(tokens)
        if fmt == "megatron":
            index = Path(f"{prefix}.idx")
            with _atomic(index, digests) as idx:
                _write_megatron_index(idx, lengths_file, n_docs, dtype)
            written = [data_path, index]
        else:
            offsets = Path(f"{prefix}.offsets.npy")
            with _atomic(offsets, digests) as off:
                _write_offsets(off, lengths_file, n_docs)
            written = [data_path, offsets]
    return ExportedPhase(phase=phase, prefix=str(prefix), documents=n_docs, tokens=n_tokens,
                         files={p.name: {"bytes": p.stat().st_size, "xxh3_128": digests[p.name]} for p in written})


def _write_megatron_index(idx: _HashingFile, lengths_file: Path, n_docs: int, dtype: np.dtype) -> None:
    """Megatron's ``.idx``: header, counts, int32 lengths, int64 byte pointers, int64 document indices."""
    idx.write(MEGATRON_MAGIC + struct.pack("<Q", 1) + struct.pack("<B", MEGATRON_DTYPES[dtype]))
    idx.write(struct.pack("<Q", n_docs) + struct.pack("<Q", n_docs + 1))
    for lengths in _chunks(lengths_file):
        idx.write(lengths.astype(np.int32).tobytes())
    pointer = 0
    for lengths in _chunks(lengths_file):
        ends = pointer + np.cumsum(lengths * dtype.itemsize)
        idx.write((ends - lengths * dtype.itemsize).astype(np.int64).tobytes())
        pointer = int(ends[-1])
    for start in range(0, n_docs + 1, CHUNK):  # one sequence per document: indices 0..n
        idx.write(np.arange(start, min(start + CHUNK, n_docs + 1), dtype=np.int64).tobytes())


def _write_offsets(out: _HashingFile, lengths_file: Path, n_docs: int) -> None:
    """``.npy`` of int64 document starts plus the end (n + 1 values), written without holding them all."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)), "fortran_order": False,
              "shape": (n_docs + 1,)}
    np.lib.format.write_array_header_1_0(out, header)
    out.write(np.zeros(1, np.int64).tobytes())
    start = 0
    for lengths in _chunks(lengths_file):
        ends = start + np.cumsum(lengths)
        out.write(ends.astype(np.int64).tobytes())
        start = int(ends[-1])


def _chunks(path: Path) -> Iterator[np.ndarray]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK * 8):
            yield np.frombuffer(chunk, dtype=np.int64)


class _HashingFile:
    """Writes through to a file and hashes what it wrote (xxh3-128: the files are not read twice).

    Every ``FLUSH_BYTES`` written, the disk write of what came before is started (``posix_fadvise``
    DONTNEED starts writeback on Linux, as PostgreSQL's flush does where ``sync_file_range`` is missing),
    so the closing fsync finds little left and the disk works while the next documents are converted.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.hash = f, xxhash.xxh3_128()
        self._written = self._flushed = 0

    def write(self, data: bytes | memoryview) -> int:
        self.hash.update(data)
        n = self.f.write(data)
        self._written += n
        if self._written - self._flushed >= FLUSH_BYTES and hasattr(os, "posix_fadvise"):
            self.f.flush()
            os.posix_fadvise(self.f.fileno(), self._flushed, self._written - self._flushed, os.POSIX_FADV_DONTNEED)
            self._flushed = self._written
        return n


@contextlib.contextmanager
def _atomic(path: Path, digests: dict[str, str]) -> Iterator[_HashingFile]:
    """A file that appears under its name, synced to disk, only when the block succeeds; its hash goes to
    ``digests[path.name]``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            out = _HashingFile(f)
            yield out
            f.flush()
            os.fsync(f.fileno())  # durable before it is visible: a crash never leaves a short file named
        os.replace(tmp, path)
        digests[path.name] = out.hash.hexdigest()
    finally:
        tmp.unlink(missing_ok=True)


def _data_path_text(phases: list[ExportedPhase]) -> str:
    total = sum(p.tokens for p in phases) or 1
    blend = " ".join(f"{p.tokens / total:.6f} {p.prefix}" for p in phases)
    lines = ["# Megatron-LM --data-path arguments for this export.",
             "# One phase at a time (switch to the next phase's files when its tokens are consumed):"]
    lines += [f"# {p.phase}: {p.tokens:,} tokens, {p.documents:,} documents" + f"\n--data-path {p.prefix}"
              for p in phases]
    lines += ["# The whole mixture as one blend (weights = each phase's share of tokens; Megatron then samples the",
              "# phases together, not in order):", f"# --data-path {blend}"]
    return "\n".join(lines) + "\n"
