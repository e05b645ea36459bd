"""Oracle data influence: the reference-set loss after one optimizer step on a single probe document.

For each probe, from the same state every time (MATES, cxcscmu/MATES):
one AdamW step on that document alone (batch 1; lr 1e-3, weight decay 0.1,
betas (0.9, 0.95), grad clip 1.0), then the mean token loss on the reference
set. The MATES code stores this post-step loss (lower = better); the paper's
"change in loss" differs by a constant, so both are kept.

Weights *and* optimizer moments are restored in place after every probe from
a snapshot taken once, so probe ``i`` never sees probe ``i - 1``. Moments come
from the pretraining job's optimizer when it hands one over (the live loop);
a saved checkpoint has none, so the step starts from zero moments (then the
first Adam step is lr * sign(grad), whatever the gradient's scale).

Probing runs on a private deep copy: the caller's model is never touched.
Dropout is off (eval mode) for the step and the evaluation, so the oracle
does not depend on a random mask.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.lm.tokenizer import Encoder


@dataclass(frozen=True)
class ProbeSettings:
    """The probe step (paper defaults) and how much text it and the reference evaluation read."""

    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float = 1.0
    max_tokens: int | None = None  # probe document cap; default: the model's context minus BOS
    reference_tokens: int | None = None  # cap per reference document; default: one context window
    batch_tokens: int = 16384  # reference evaluation: padded tokens per forward (speed only)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OracleResult:
    """Per probe, in input order: post-step reference loss, its change from ``pre_loss``, tokens stepped on."""

    pre_loss: float
    post_loss: np.ndarray
    delta: np.ndarray
    n_tokens: np.ndarray
    seconds: float  # wall seconds of the probes (setup excluded)
    setup_seconds: float
    workers: int = 1
    moments: str = "zero"  # where the optimizer moments came from: zero | optimizer
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_probe(self) -> float:
        return self.seconds / max(1, len(self.post_loss))


def moments_from(optimizer: Any, model: Any) -> list[dict[str, Any] | None]:
    """Adam moments of ``model``'s parameters (in ``model.parameters()`` order) from a job's optimizer.

    Only the moments travel: the probe step keeps MATES' hyperparameters. Works for any optimizer
    that keeps ``exp_avg``/``exp_avg_sq`` per parameter (Adam, AdamW, fused variants).
    """
    out: list[dict[str, Any] | None] = []
    for p in model.parameters():
        state = optimizer.state.get(p) or {}
        if state and not {"exp_avg", "exp_avg_sq", "step"} <= set(state):
            raise ConfigError(f"{type(optimizer).__name__} keeps no Adam moments (state keys {sorted(state)}): "
                              "pass no optimizer to probe from zero moments")
        out.append({k: (v.detach().clone() if hasattr(v, "clone") else v) for k, v in state.items()} or None)
    return out


def _clone_state(opt: Any, params: list[Any]) -> list[dict[str, Any]]:
    return [{k: (v.clone() if hasattr(v, "clone") else v) for k, v in opt.state.get(p, {}).items()} for p in params]


class Prober:
    """A private copy of a causal LM plus an AdamW over it; :meth:`probe` steps, evaluates and restores.

    ``model`` is any Hugging Face causal LM (``model(input_ids=, labels=).loss``); ``encoder`` turns text
    into its token ids (:class:`curate.lm.tokenizer.Encoder`); ``context`` caps sequence lengths.
    """

    def __init__(self, model: Any, encoder: Encoder, reference_texts: list[str], settings: ProbeSettings | None = None,
                 *, context: int | None = None, moments: list[dict[str, Any] | None] | None = None) -> None:
        import torch

        t0 = time.perf_counter()
        self.settings = s = settings or ProbeSettings()
        self.encoder = encoder
        self.model = copy.deepcopy(model)
        self.model.eval()
        self.context = context or getattr(self.model.config, "max_position_embeddings", None) or 512
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        for p in self.params:  # a live model's copy may carry the job's pending gradients
            p.grad = None
        # the same grouping as curate's own training: no decay on norms and biases
        groups = [{"params": [p for p in self.params if p.dim() >= 2], "weight_decay": s.weight_decay},
                  {"params": [p for p in self.params if p.dim() < 2], "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=s.lr, betas=s.betas, eps=s.eps)
        self.moments = "zero"
        if moments is not None:
            all_params = list(self.model.parameters())
            if len(moments) != len(all_params):
                raise ConfigError(f"moments for {len(moments)} parameters, the model has {len(all_params)}")
            for p, m in zip(all_params, moments):
                if m is not None and p.requires_grad:
                    self.opt.state[p] = {k: (v.clone() if hasattr(v, "clone") else v) for k, v in m.items()}
            self.moments = "optimizer"
        if not reference_texts:
            raise ConfigError("the reference set is empty: MATES needs reference texts to measure influence")
        self._reference = self._reference_batches(reference_texts)
        self._weights = [p.detach().clone() for p in self.params]
        self._state = _clone_state(self.opt, self.params)
        self.pre_loss = self.reference_loss()
        self.setup_seconds = time.perf_counter() - t0

    def _reference_batches(self, texts: list[str]) -> list[Any]:
        from curate.lm.windows import bucket_batches, segments

        enc, ctx = self.encoder, self.context
        segs = []
        # default cap: one window per text ([BOS] + ids fills the context exactly), no strided second pass
        cap = self.settings.reference_tokens or (ctx - (enc.bos_id is not None))
        for i, d in enumerate(enc.encode(texts, cap)):
            if len(d.ids):
                seq = enc.with_bos(d.ids)
                segs.extend(segments(i, seq, ctx, max(1, ctx // 2)))
        self._reference_tokens = int(sum(s.n_targets for s in segs))
        if not self._reference_tokens:
            raise ConfigError("the reference texts hold no tokens")
        return list(bucket_batches(segs, max(self.settings.batch_tokens, ctx), enc.pad_id))

    def reference_loss(self) -> float:
        """Mean NLL (nats per token) of the reference set under the current weights."""
        import torch

        from curate.lm.nll import batch_token_sums

        with torch.inference_mode():
            total = sum(float(batch_token_sums(self.model, b).sum()) for b in self._reference)
        return total / self._reference_tokens

    def probe_ids(self, text: str) -> np.ndarray:
        """The token sequence one probe steps on: ``[BOS] + ids``, capped to the context."""
        enc = self.encoder
        cap = self.settings.max_tokens or (self.context - (enc.bos_id is not None))
        ids = enc.encode([text], cap)[0].ids
        return enc.with_bos(ids)

    def step(self, ids: np.ndarray) -> None:
        """One optimizer step on one sequence (batch 1), gradient clipped."""
        import torch

        x = torch.from_numpy(ids[None])
        with torch.enable_grad():
            loss = self.model(input_ids=x, labels=x).loss
            loss.backward()
        if self.settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def restore(self) -> None:
        """Put weights and optimizer state back to the snapshot, in place (bit-exact)."""
        import torch

        with torch.no_grad():
            for p, w in zip(self.params, self._weights):
                p.copy_(w)
        for p, saved in zip(self.params, self._state):
            if saved:
                self.opt.state[p] = {k: (v.clone() if hasattr(v, "clone") else v) for k, v in saved.items()}
            else:
                self.opt.state.pop(p, None)
        self.opt.zero_grad(set_to_none=True)

    def probe(self, text: str) -> tuple[float, int]:
        """(post-step reference loss, tokens stepped on); NaN for a text with fewer than 2 tokens."""
        ids = self.probe_ids(text)
        if len(ids) < 2:
            return math.nan, 0
        try:
            self.step(ids)
            return self.reference_loss(), len(ids) - 1
        finally:
            self.restore()

    def run(self, texts: list[str], progress: bool | None = False) -> OracleResult:
        """Probe every text in order."""
        from curate.progress import progress as progress_bar

        post = np.full(len(texts), np.nan)
        n_tok = np.zeros(len(texts), dtype=np.int64)
        t0 = time.perf_counter()
        with progress_bar("mates probes", total=len(texts), unit="probes", enabled=progress) as advance:
            for i, text in enumerate(texts):
                post[i], n_tok[i] = self.probe(text)
                advance(1)
        return OracleResult(self.pre_loss, post, post - self.pre_loss, n_tok, time.perf_counter() - t0,
                            self.setup_seconds, moments=self.moments)


def probe_oracle(model: Any, encoder: Encoder, reference_texts: list[str], texts: list[str],
                 settings: ProbeSettings | None = None, *, context: int | None = None,
                 moments: list[dict[str, Any] | None] | None = None, workers: int = 0,
                 ray_address: str | None = None, progress: bool | None = False) -> OracleResult:
    """Oracle influence of each text (see the module docstring).

    ``workers`` <= 1 probes in this process; more splits the probes over that many Ray tasks (one CPU
    and one torch thread each), each with its own copy of the model: worth it when the probes take
    much longer than starting Ray (tens of seconds).
    """
    if workers <= 1 or len(texts) < 2 * workers:
        return Prober(model, encoder, reference_texts, settings, context=context, moments=moments).run(texts, progress)
    from curate.execute import map_on_ray

    bounds = np.linspace(0, len(texts), workers + 1).astype(int)
    t0 = time.perf_counter()
    parts = map_on_ray(_probe_part, (model, encoder, reference_texts, settings, context, moments),
                       [texts[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])], ray_address=ray_address)
    wall = time.perf_counter() - t0
    post = np.concatenate([p.post_loss for p in parts])
    pre = parts[0].pre_loss
    return OracleResult(pre, post, post - pre, np.concatenate([p.n_tokens for p in parts]), wall,
                        max(p.setup_seconds for p in parts), workers=len(parts), moments=parts[0].moments,
                        extra={"cpu_seconds_per_probe": sum(p.seconds for p in parts) / max(1, len(texts))})


def _probe_part(payload: tuple[Any, ...], texts: list[str]) -> OracleResult:
    """A Ray task's share of the probes (one torch thread: its CPU share)."""
    import torch

    torch.set_num_threads(1)
    model, encoder, reference_texts, settings, context, moments = payload
    return Prober(model, encoder, reference_texts, settings, context=context, moments=moments).run(texts)
