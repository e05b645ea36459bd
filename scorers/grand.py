"""GraNd (Data Diet) for language models: the norm of a document's own loss gradient, near initialisation.

Paul et al. score an example by E ||grad_w loss(x)||_2 over networks at (or just
after) initialisation. Here the example is a document's first ``max_tokens``
tokens, its loss the mean token NLL, and the expectation the mean over proxy
LMs trained for a few steps with different seeds (the same proxies as EL2N).

``method``:
- ``exact`` (default): the full per-document gradient over every parameter. For models
  built from Linear, Embedding and elementwise-norm modules (every Llama-style model) the
  per-document gradients come from one batched backward with hooks
  (:mod:`curate.lm.grad_norms`); anything else takes one backward per document
  (``torch.func.vmap`` was slower than that loop on CPU: its attention backward has no
  batching rule). Tied input/output embeddings count once, as autograd sums them.
- ``last_layer``: only the output head's gradient, in closed form
  ``(1/T) (softmax - one_hot)^T h`` from one batched forward: no backward, for
  models too large for exact per-document gradients.

The method is part of the fingerprint and written into the ``grand`` column's
Arrow field metadata (``{"method": ...}``), so a reader can tell which was used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import ConfigError
from scorers._lm import LMScorer

METHODS = ("exact", "last_layer")


class GraNdScorer(LMScorer):
    """Per-document gradient norm, averaged over ``model_paths``; see the module docstring."""

    name: ClassVar[str] = "grand"
    version: ClassVar[str] = "1"

    def __init__(self, model_paths: list[str | Path], max_tokens: int = 256, method: str = "exact",
                 batch_tokens: int = 8192, dtype: str = "auto", device: str = "auto",
                 gpu_share: float | None = None) -> None:
        if method not in METHODS:
            raise ConfigError(f"grand.method must be one of {', '.join(METHODS)}, got {method!r}")
        if isinstance(model_paths, (str, Path)):
            model_paths = [model_paths]
        # one window per document: the gradient of a windowed document would need every window at once
        super().__init__(list(model_paths), max_tokens=max_tokens, window=None, stride=None,
                         batch_tokens=max(batch_tokens, 2 * max_tokens), dtype=dtype, device=device,
                         gpu_share=gpu_share, method=method)
        self.settings["max_tokens"] = min(max_tokens, self.settings["window"])
        for key in ("window", "stride"):  # unused: keep them out of the fingerprint
            self.settings.pop(key)

    @property
    def schema(self) -> pa.Schema:
        meta = {"method": self.settings["method"], "loss": "mean token NLL of the first max_tokens tokens"}
        return pa.schema([("doc_id", pa.string()), pa.field("grand", pa.float32(), metadata=meta),
                          ("grand_std", pa.float32()), ("n_tokens", pa.int32())])

    def score(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.setup()
        texts = self.texts(batch)
        per_model = []
        for lm in self._lms:
            seqs = _sequences(lm.encoder, texts, self.settings["max_tokens"])
            if self.settings["method"] == "exact":
                per_model.append(_exact_norms(lm.model, seqs, lm.encoder.pad_id, self.batch_tokens))
            else:
                from curate.lm.nll import uses_plain_head

                if not uses_plain_head(lm.model):
                    raise ConfigError(f"grand.method=last_layer needs a plain output head; {lm.path.name} has "
                                      "logit scaling or softcapping: use method=exact")
                per_model.append(_last_layer_norms(lm.model, seqs, lm.encoder.pad_id, self.batch_tokens))
        stack = np.stack(per_model)
        n_tokens = np.array([max(len(s) - 1, 0) for s in seqs], dtype=np.int32)
        empty = n_tokens == 0
        return pa.RecordBatch.from_arrays(
            [
                batch.column("doc_id"),
                pa.array(stack.mean(0).astype(np.float32), pa.float32(), mask=empty),
                pa.array(stack.std(0).astype(np.float32), pa.float32(), mask=empty),
                pa.array(n_tokens, pa.int32()),
            ],
            schema=self.schema,
        )


def _sequences(encoder: Any, texts: list[str], max_tokens: int) -> list[np.ndarray]:
    """``[BOS] + ids`` capped so that at most ``max_tokens`` tokens are predicted (empty text: ``[BOS]``,
    which has nothing to predict and is scored as null)."""
    return [encoder.with_bos(d.ids) for d in encoder.encode(texts, max_tokens)]


def _exact_norms(model: Any, seqs: list[np.ndarray], pad_id: int, batch_tokens: int) -> np.ndarray:
    """||grad of the mean token NLL|| over all parameters per document: batched when the model's modules
    allow it (:func:`curate.lm.grad_norms.supported`), else one backward per document."""
    import torch

    from curate.lm.grad_norms import batched_grad_norms, max_rows, supported
    from curate.lm.windows import Segment, bucket_batches

    out = np.full(len(seqs), np.nan)
    if supported(model):
        segs = [Segment(i, s, len(s) - 1) for i, s in enumerate(seqs) if len(s) >= 2]
        for b in bucket_batches(segs, batch_tokens, pad_id, max_rows=max_rows(model)):
            out[b.docs] = batched_grad_norms(model, b.ids, b.lengths)
        return out
    params = [p for p in model.parameters()]
    for i, seq in enumerate(seqs):
        if len(seq) < 2:
            continue
        x = torch.from_numpy(seq[None]).to(params[0].device)
        with torch.enable_grad():
            loss = model(input_ids=x, labels=x).loss
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        out[i] = float(torch.sqrt(sum(g.double().square().sum() for g in grads if g is not None)))
    return out


def _last_layer_norms(model: Any, seqs: list[np.ndarray], pad_id: int, batch_tokens: int) -> np.ndarray:
    """||(1/T) (softmax - one_hot)^T h|| per document: the output head's gradient, from batched forwards."""
    import torch

    from curate.lm.windows import Segment, bucket_batches

    segs = [Segment(i, s, len(s) - 1) for i, s in enumerate(seqs) if len(s) >= 2]
    out = np.full(len(seqs), np.nan)
    head = model.get_output_embeddings()
    with torch.inference_mode():
        for b in bucket_batches(segs, batch_tokens, pad_id):
            ids = torch.from_numpy(b.ids).to(head.weight.device)
            hidden = model.base_model(input_ids=ids).last_hidden_state  # right padding: causal rows ignore it
            for row, (doc, n) in enumerate(zip(b.docs, b.lengths)):
                h = hidden[row, : n - 1].float()
                g = torch.softmax(head(hidden[row, : n - 1]).float(), dim=-1)
                g[torch.arange(n - 1, device=g.device), ids[row, 1:n]] -= 1.0
                out[doc] = float(torch.linalg.matrix_norm(g.T @ h) / (n - 1))
    return out
