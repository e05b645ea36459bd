"""Exact per-document gradient norms from one batched backward (no per-document loop, no vmap).

For a weight used as ``y = x W^T`` the gradient of document i's loss is
``sum_t delta_it x_it^T`` over its positions, where ``x`` is the layer input and
``delta`` the gradient at its output. Documents in a batch do not interact (no
batch norm; right padding under causal attention: real positions never see the
pads, and pads carry no loss, so their ``delta`` is zero), so one backward of the
*sum* of per-document losses yields every document's own ``delta``. Hooks catch
``x`` and ``delta`` per module and the per-document gradients are formed there:

- ``nn.Linear``: ``einsum('bto,bti->boi')`` (+ bias ``sum_t delta``);
- ``nn.Embedding``: rows of ``delta`` scattered to the token ids;
- elementwise-scale norms (RMSNorm, LayerNorm): ``sum_t delta * (y - b) / w``.

A weight shared by several modules (tied input/output embeddings) gets the sum
of its per-document parts before the norm, as autograd would. Models with any
other parameter-holding module are not supported here (:func:`supported` says
so; GraNd then falls back to one backward per document).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def _elementwise_norm(module: torch.nn.Module) -> bool:
    """A norm whose output is ``weight * normalized(x) (+ bias)`` over the last dimension."""
    name = type(module).__name__
    return ("RMSNorm" in name or isinstance(module, torch.nn.LayerNorm)) and getattr(module, "weight", None) is not None


def _owned(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return list(module.parameters(recurse=False))


def supported(model: torch.nn.Module) -> bool:
    """True when every parameter belongs to a Linear, Embedding or elementwise norm module (and no
    norm weight is exactly zero, which the ``(y - b) / w`` recovery of the normalised input needs)."""
    covered: set[int] = set()
    for mod in model.modules():
        params = _owned(mod)
        if not params:
            continue
        if isinstance(mod, (torch.nn.Linear, torch.nn.Embedding)):
            covered.update(id(p) for p in params)
        elif _elementwise_norm(mod) and not bool((mod.weight == 0).any()):
            covered.update(id(p) for p in params)
        else:
            return False
    return all(id(p) in covered for p in model.parameters())


def _sq_norms(grads: torch.Tensor) -> torch.Tensor:
    """Squared norm per document, accumulated in float64 without a float64 copy of ``grads``."""
    return torch.sum(grads.flatten(1).square(), dim=1, dtype=torch.float64)


def max_rows(model: torch.nn.Module, budget: int = 1 << 26) -> int:
    """Documents per batch so that per-document copies of the largest weight stay within ``budget`` floats
    (SmolLM2's tied 49152 x 576 embedding: 2 documents; a byte-level model: 64)."""
    biggest = max(p.numel() for p in model.parameters())
    return int(max(1, min(64, budget // biggest)))


class _Collector:
    """Forward/backward hooks that turn (input, output grad) of each module into per-document gradients."""

    def __init__(self, model: torch.nn.Module, batch: int) -> None:
        self.batch = batch
        self.device = next(model.parameters()).device
        self.sq = torch.zeros(batch, dtype=torch.float64, device=self.device)  # norm^2 of parameters used by one module only
        self.shared: dict[int, torch.Tensor] = {}  # per-document full gradients of weights used more than once
        uses: dict[int, int] = {}
        mods = [m for m in model.modules() if _owned(m)]
        for m in mods:
            for p in _owned(m):
                uses[id(p)] = uses.get(id(p), 0) + 1
        self.uses = uses
        self.inputs: dict[int, Any] = {}
        self.handles = []
        for m in mods:
            self.handles.append(m.register_forward_hook(self._forward))
            self.handles.append(m.register_full_backward_hook(self._backward))

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def _forward(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        x = args[0]
        if _elementwise_norm(module):  # keep the normalised input: (y - b) / w
            bias = getattr(module, "bias", None)
            y = output.detach().float()
            x = (y - bias.detach().float() if bias is not None else y) / module.weight.detach().float()
        self.inputs[id(module)] = x.detach()

    def _add(self, param: torch.Tensor, grads: torch.Tensor) -> None:
        """``grads``: (B, *param.shape) per-document gradients of ``param``."""
        if self.uses[id(param)] > 1:
            key = id(param)
            self.shared[key] = self.shared[key] + grads if key in self.shared else grads
        else:
            self.sq += _sq_norms(grads)

    def _backward(self, module: torch.nn.Module, grad_input: tuple, grad_output: tuple) -> None:
        delta = grad_output[0].float()
        x = self.inputs.pop(id(module))
        if isinstance(module, torch.nn.Linear):
            self._add(module.weight, torch.einsum("bto,bti->boi", delta, x.float()))
            if module.bias is not None:
                self._add(module.bias, delta.sum(1))
        elif isinstance(module, torch.nn.Embedding):
            b, t = x.shape
            g = torch.zeros(b, module.num_embeddings, delta.shape[-1], device=delta.device)
            g.scatter_add_(1, x.long()[..., None].expand(b, t, delta.shape[-1]), delta)
            self._add(module.weight, g)
        else:
            self._add(module.weight, (delta * x).sum(1))
            if getattr(module, "bias", None) is not None:
                self._add(module.bias, delta.sum(1))

    def norms(self) -> np.ndarray:
        sq = self.sq.clone()
        for g in self.shared.values():
            sq += _sq_norms(g)
        return sq.sqrt().cpu().numpy()


def batched_grad_norms(model: torch.nn.Module, ids: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """||grad of mean token NLL|| for each right-padded row of ``ids`` (B, L); row i is ``lengths[i]`` long.
    Inputs go to the model's device; the norms come back as CPU numpy.

    Equals ``model(input_ids=row, labels=row).loss`` differentiated alone, per row (tested).
    """
    device = next(model.parameters()).device
    x = torch.from_numpy(ids).to(device)
    n = torch.as_tensor(np.asarray(lengths), dtype=torch.long, device=device)
    collector = _Collector(model, len(n))
    try:
        with torch.enable_grad():
            logits = model(input_ids=x).logits[:, :-1].float()
            nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
            mask = torch.arange(x.shape[1] - 1, device=device)[None, :] < (n - 1)[:, None]
            loss = ((nll * mask).sum(1) / (n - 1).clamp_min(1)).sum()
            params = [p for p in model.parameters() if p.requires_grad]
            torch.autograd.grad(loss, params, allow_unused=True)
        return collector.norms()
    finally:
        collector.close()
