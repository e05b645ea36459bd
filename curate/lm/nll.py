"""Per-token quantities of a causal LM on padded batches: the shared core of perplexity, EL2N and eval.

Only the positions that are scored go through the output head (a 49k-token
vocabulary times every padded position would not fit in memory), in chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from curate.lm.windows import Batch

HEAD_CHUNK = 2048  # scored positions per output-head call: bounds logits memory to chunk x vocab


@dataclass
class TargetLogits:
    """Logits (float32) for one chunk of scored positions, their target ids, and the batch row of each."""

    logits: torch.Tensor  # (T, V)
    targets: torch.Tensor  # (T,)
    rows: torch.Tensor  # (T,)


def _positions(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(row, position) of every logit that predicts a scored token: the last n_targets of each row."""
    rows = np.repeat(np.arange(len(batch.lengths)), batch.n_targets)
    # the logit at position p predicts token p + 1
    ends = np.cumsum(batch.n_targets)
    offset = np.arange(int(ends[-1])) - np.repeat(ends - batch.n_targets, batch.n_targets)
    pos = np.repeat(batch.lengths - batch.n_targets - 1, batch.n_targets) + offset
    return rows, pos


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s weights live: inputs go there, results come back to the CPU as numpy."""
    return next(model.parameters()).device


def uses_plain_head(model: torch.nn.Module) -> bool:
    """True when logits = output_embeddings(last hidden state); else fall back to the full forward."""
    cfg = model.config
    return (model.get_output_embeddings() is not None and not getattr(cfg, "final_logit_softcapping", None)
            and getattr(cfg, "logit_scale", None) in (None, 1.0))


def target_logits(model: torch.nn.Module, batch: Batch) -> Iterator[TargetLogits]:
    """Logits at the scored positions of ``batch``, chunked. Call under ``torch.inference_mode`` or with grad."""
    device = model_device(model)
    ids = torch.from_numpy(batch.ids).to(device)
    # no attention mask: rows are right-padded and attention is causal, so a real position never
    # sees a pad; without a mask the model takes its causal fast path instead of building a 4-D mask
    rows_np, pos_np = _positions(batch)
    rows, pos = torch.from_numpy(rows_np).to(device), torch.from_numpy(pos_np).to(device)
    targets = ids[rows, pos + 1]
    # a row's last token is only ever a target: the model sees every column but the last
    inputs = ids[:, :-1]
    if uses_plain_head(model):
        hidden = model.base_model(input_ids=inputs).last_hidden_state
        head = model.get_output_embeddings()
        for lo in range(0, len(rows), HEAD_CHUNK):
            sl = slice(lo, lo + HEAD_CHUNK)
            yield TargetLogits(head(hidden[rows[sl], pos[sl]]).float(), targets[sl], rows[sl])
    else:
        logits = model(input_ids=inputs).logits
        yield TargetLogits(logits[rows, pos].float(), targets, rows)


#: A per-token quantity: (logits (T, V) float32, targets (T,)) -> values (T,)
TokenFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood (nats) of each target."""
    return F.cross_entropy(logits, targets, reduction="none")


def token_el2n(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """EL2N of each target: ||softmax(logits) - one_hot(target)||_2 (Data Diet, per token).

    Computed as sqrt((1 - p_y)^2 + sum_{v != y} p_v^2) with both parts summed over the
    non-target entries: the textbook expansion sum p^2 - 2 p_y + 1 cancels catastrophically
    in float32 when p_y is near 1, and no (T, V) one-hot is built either way.
    """
    p = torch.softmax(logits, dim=-1)
    p.scatter_(1, targets[:, None], 0.0)
    return (p.sum(-1).square() + p.square().sum(-1)).sqrt()


def batch_token_sums(model: torch.nn.Module, batch: Batch, fn: TokenFn = token_nll) -> np.ndarray:
    """Sum of ``fn`` over each row's scored tokens, float64, shape (B,), on the CPU whatever the model's device."""
    out = torch.zeros(len(batch.lengths), dtype=torch.float64, device=model_device(model))
    for chunk in target_logits(model, batch):
        out.index_add_(0, chunk.rows, fn(chunk.logits, chunk.targets).double())
    return out.cpu().numpy()
