"""``MixtureDataset``: a built mixture as a resumable torch ``IterableDataset``.

The global stream is the mixture's documents in training order, tokenized
(``bytes``: UTF-8 bytes as ids 0..255, then EOS = 256 after every document; a
Hugging Face tokenizer: the ids the build stored, then the tokenizer's EOS),
cut into consecutive, non-overlapping windows of ``seq_len + 1`` tokens (the
last incomplete window is dropped; split a window into inputs ``w[:-1]`` and
targets ``w[1:]``).

Partition: with world size W and K DataLoader workers, rank r's worker k takes
windows ``i`` with ``i % (W*K) == r*K + k`` — strided, not contiguous blocks,
so every rank trains on the same phase at the same time. The union over ranks
and workers is exactly the stream: no overlap, no gap.

State is a pure function of a few integers (the lesson from mosaic streaming
and litdata): windows consumed per worker, plus the mixture fingerprint,
seq_len, world size, rank and worker count, validated on load. Under torchdata's
``StatefulDataLoader`` each worker saves and restores its own entry; with a plain
``DataLoader`` ask :meth:`MixtureDataset.state_after` for the state after N batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from curate.errors import CurateError
from curate.mixture.manifest import BYTES_EOS, BYTES_VOCAB, MixtureManifest
from curate.mixture.stream import document_tokens, window_partition
from curate.store import Store

EOS, VOCAB_SIZE = BYTES_EOS, BYTES_VOCAB
STATE_FORMAT = 1


class LoaderStateError(CurateError):
    """A saved loader state does not match this dataset (other mixture, seq_len, world size or workers)."""


def _dist_default() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class MixtureDataset(IterableDataset):
    """Stream a built mixture as packed token windows (``LongTensor[seq_len + 1]``)."""

    def __init__(self, store: Store | str | os.PathLike[str], name: str, seq_len: int, *,
                 rank: int | None = None, world_size: int | None = None, loop: bool = False) -> None:
        if seq_len < 1:
            raise CurateError(f"seq_len must be >= 1, got {seq_len}")
        st = Store.of(store)
        self.manifest = MixtureManifest.load(st, name)
        r, w = _dist_default()
        self.rank = r if rank is None else rank
        self.world_size = w if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise CurateError(f"rank {self.rank} is outside world size {self.world_size}")
        self.seq_len, self.loop = seq_len, loop
        self.tokenizer: str = self.manifest.data.get("tokenizer", "bytes")
        #: the id after every document, and how many ids a window can hold (for the model's embedding)
        self.eos_id, self.vocab_size = self.manifest.vocabulary()
        self._part_tokens = self.manifest.stream_tokens()
        self.total_windows = sum(self._part_tokens) // (seq_len + 1)
        self._consumed: dict[int, int] = {}  # worker -> windows yielded (this process's view)
        self._epoch = 0

    # ------------------------------------------------------------------ partition
    def _worker(self) -> tuple[int, int]:
        """(logical worker, workers). A resumed plain DataLoader restarts its round-robin at
        worker 0, so ``rotation`` maps it onto the logical worker whose batch is next."""
        info = get_worker_info()
        if info is None:
            return 0, 1
        return (info.id + self._rotation) % info.num_workers, info.num_workers

    def windows_of(self, worker: int = 0, num_workers: int = 1) -> range:
        """Global window indices this rank's ``worker`` yields, in order."""
        slot, stride = window_partition(self.rank, self.world_size, worker, num_workers)
        return range(slot, self.total_windows, stride)

    # ------------------------------------------------------------------ stream
    def _part_tokens_array(self, index: int) -> np.ndarray:
        st = self.manifest.store
        column = "text" if self.tokenizer == "bytes" else "token_ids"
        with st.fs.open_input_file(st.path(f"{self.manifest.dir}/{self.manifest.parts[index]['name']}")) as f:
            col = pq.read_table(f, columns=[column]).column(column).combine_chunks()
        # uint16 holds 0..256 (bytes and EOS) at a quarter of int64's memory; windows widen one at a time
        dtype = np.dtype(np.int32 if column == "token_ids" else np.uint16)
        return document_tokens(col, self.eos_id, dtype)[0]

    def _windows(self, wanted: range) -> Iterator[torch.Tensor]:
        """Yield the windows in ``wanted`` (a strided range), reading only the parts they touch."""
        size = self.seq_len + 1
        it = iter(wanted)
        nxt = next(it, None)
        part_start, carry, carry_start = 0, None, 0
        for p, n_tok in enumerate(self._part_tokens):
            part_end = part_start + n_tok
            if nxt is None:
                return
            if part_end <= nxt * size:  # nothing of ours ends in this part: skip reading it
                part_start, carry = part_end, None
                continue
            toks = self._part_tokens_array(p)
            if carry is not None and carry_start + len(carry) == part_start:
                buf, buf_start = np.concatenate([carry, toks]), carry_start
            else:
                buf, buf_start = toks, part_start
            while nxt is not None and (nxt + 1) * size <= part_end:
                a = nxt * size - buf_start
                yield torch.from_numpy(buf[a:a + size].astype(np.int64))
                nxt = next(it, None)
            if nxt is not None:
                keep_from = max(nxt * size, buf_start)  # tokens of the next window already in this part
                carry, carry_start = buf[keep_from - buf_start:], keep_from
            part_start = part_end

    def __iter__(self) -> Iterator[torch.Tensor]:
        worker, num_workers = self._worker()
        if self._loaded_workers is not None and self._loaded_workers != num_workers:
            raise LoaderStateError(
                f"the state was saved with {self._loaded_workers} DataLoader worker(s), this loader has "
                f"{num_workers}: resume with the same num_workers"
            )
        while True:
            done = self._consumed.get(worker, 0)
            mine = self.windows_of(worker, num_workers)
            for window in self._windows(mine[done:]):
                self._consumed[worker] = self._consumed.get(worker, 0) + 1
                yield window
            if not self.loop:
                return
            self._epoch += 1
            self._consumed[worker] = 0

    _loaded_workers: int | None = None
    _rotation: int = 0

    # ------------------------------------------------------------------ state
    def _header(self, num_workers: int) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "mixture": self.manifest.fingerprint, "seq_len": self.seq_len,
                "world_size": self.world_size, "rank": self.rank, "num_workers": num_workers}

    def state_dict(self) -> dict[str, Any]:
        """A few JSON integers: windows consumed per worker (by this process), epoch, and what they refer to."""
        info = get_worker_info()
        if info is not None:  # inside a worker (StatefulDataLoader): this worker's own count
            me, _k = self._worker()
            return {**self._header(info.num_workers), "epoch": self._epoch, "rotation": self._rotation,
                    "consumed": {str(me): self._consumed.get(me, 0)}}
        workers = self._loaded_workers or 1
        return {**self._header(workers), "epoch": self._epoch, "rotation": self._rotation,
                "consumed": {str(k): self._consumed.get(k, 0) for k in range(workers)}}

    def state_after(self, batches: int, batch_size: int, num_workers: int = 0) -> dict[str, Any]:
        """The state after a plain ``DataLoader(batch_size, num_workers)`` yielded ``batches`` batches.

        DataLoader takes batches from its workers round-robin (in order), so worker k
        produced batches k, k+K, ... This holds until a worker runs dry at the stream's end.
        """
        k_workers = max(num_workers, 1)
        if self._loaded_workers is not None and self._loaded_workers != k_workers:
            raise LoaderStateError(f"this dataset resumed with {self._loaded_workers} worker(s), not {k_workers}")
        rot = self._rotation if self._loaded_workers else 0
        consumed = {}
        for k in range(k_workers):
            # batch j came from DataLoader worker j % K, which plays logical worker (j + rot) % K
            first = (k - rot) % k_workers
            n_batches = (batches - first + k_workers - 1) // k_workers if batches > first else 0
            done = self._consumed.get(k, 0) + n_batches * batch_size
            consumed[str(k)] = min(done, len(self.windows_of(k, k_workers)))
        return {**self._header(k_workers), "epoch": self._epoch, "rotation": (rot + batches) % k_workers,
                "consumed": consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state``; raises :class:`LoaderStateError` when it belongs to another setup."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise LoaderStateError(f"not a MixtureDataset state (format {STATE_FORMAT}): {state!r}")
        consumed = state.get("consumed")
        num_workers = state.get("num_workers")
        mine = self._header(num_workers)
        for key in ("mixture", "seq_len", "world_size", "rank"):
            if state.get(key) != mine[key]:
                raise LoaderStateError(
                    f"loader state {key} is {state.get(key)!r} but this dataset has {mine[key]!r}: "
                    "a state resumes only the same mixture, seq_len, world size and rank"
                )
        if not isinstance(num_workers, int) or num_workers < 1 or not isinstance(consumed, dict):
            raise LoaderStateError(f"loader state needs num_workers >= 1 and a consumed map, got {state!r}")
        out = {}
        for k, v in consumed.items():
            if not (str(k).isdigit() and int(k) < num_workers and isinstance(v, int) and v >= 0):
                raise LoaderStateError(f"loader state consumed[{k!r}] = {v!r} is not a count for one of "
                                       f"{num_workers} worker(s)")
            if v > len(self.windows_of(int(k), num_workers)):
                raise LoaderStateError(f"loader state says worker {k} consumed {v} windows, but it has only "
                                       f"{len(self.windows_of(int(k), num_workers))}")
            out[int(k)] = v
        self._consumed.update(out)
        rotation = state.get("rotation", 0)
        if not isinstance(rotation, int) or not 0 <= rotation < num_workers:
            raise LoaderStateError(f"loader state rotation {rotation!r} is not a worker index below {num_workers}")
        if get_worker_info() is None:  # a worker under StatefulDataLoader keeps its own (already mapped) id
            self._rotation = rotation
        self._epoch = int(state.get("epoch", 0))
        self._loaded_workers = num_workers
