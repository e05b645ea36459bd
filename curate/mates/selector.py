"""``MatesSelector``: the library call a pretraining job makes every N steps to get its next stage's data.

::

    from curate.mates import MatesSelector

    selector = MatesSelector("store", run="main", probes=400, keep=0.2, tau=0.5, seed=0)
    for step in range(total_steps):
        if step % 10_000 == 0:
            stage = selector.select(model, stage=step // 10_000, optimizer=opt)   # the live model
            texts = selector.texts(stage)          # or stage.doc_ids / stage.selection_sql for a mixture
        ...

``select`` probes a private copy of the model (the job's model and optimizer
are never touched), so selection follows the model as it learns. Without a
model it loads ``proxy`` (a checkpoint in the store or any local directory):
what the ``mates_stage`` flow does on a schedule. Both write the same artifacts
(see :mod:`curate.mates.stage`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.lm.load import LoadedLM
from curate.lm.tokenizer import Encoder
from curate.mates.oracle import ProbeSettings, moments_from
from curate.mates.stage import StageConfig, StageResult, run_stage
from curate.store import Store


class MatesSelector:
    """Staged MATES selection over a store.

    - ``proxy``: checkpoint used when ``select`` gets no model (store model name or local directory).
    - ``reference_sql``: query with a ``text`` column, the target set (default: corpus ``heldout``).
    - ``pool_sql``: candidates with ``doc_id``, ``text`` (and ``domain``) (default: every other corpus);
      split by a hash of doc_id into the probe slice (``probe_percent``) and the selection pool, which
      ``pool_splits`` cuts again so each stage selects from a fresh part.
    - ``probe_sql``: probes from your own query instead (refused if it overlaps the pool).
    - ``probes``: probe documents per stage; ``reference_docs``: reference texts (first window of each).
    - ``keep``, ``tau``, ``seed``: exact Gumbel-top-k of ``-prediction / tau``, seeded by (seed, stage).
    - ``influence``: ``ridge`` (frozen MiniLM embeddings, fast) or ``finetune`` (MiniLM + head, MSE, best
      epoch by held-out Spearman); ``influence_options``: chunk_tokens, max_chunks, folds, epochs, lr, ...
    - ``probe_settings``: the probe step (:class:`ProbeSettings`, paper defaults).
    - ``workers``: Ray workers for probing (0: in process); ``score_workers``: the engine's workers for
      predicting the pool (0: in process; None: Ray, one per CPU).
    - ``threads``: torch threads while selecting (default: leave the job's setting alone).
    """

    def __init__(self, store: Store | str | Path, *, proxy: str | None = None, run: str = "main",
                 reference_sql: str | None = None, pool_sql: str | None = None, probe_sql: str | None = None,
                 probes: int = 200, probe_percent: int = 10, pool_splits: int = 1, reference_docs: int = 64,
                 keep: float = 0.2, tau: float = 0.5, seed: int = 0, influence: str = "ridge",
                 influence_options: dict[str, Any] | None = None, probe_settings: ProbeSettings | None = None,
                 workers: int = 0, score_workers: int | None = 0, threads: int | None = None,
                 progress: bool | None = False) -> None:
        self.store = Store.of(store)
        self.proxy = proxy
        self.threads = threads
        self.config = StageConfig(run=run, candidates_sql=pool_sql, reference_sql=reference_sql, probe_sql=probe_sql,
                                  probes=probes, probe_percent=probe_percent, pool_splits=pool_splits,
                                  reference_docs=reference_docs, keep=keep, tau=tau, seed=seed, influence=influence,
                                  influence_options=dict(influence_options or {}),
                                  probe=probe_settings or ProbeSettings(), workers=workers,
                                  score_workers=score_workers, progress=progress)
        self.history: list[StageResult] = []

    def load_proxy(self) -> LoadedLM:
        """The ``proxy`` checkpoint (a model in the store, a seed-family member, or a local directory)."""
        from curate.lm.load import load_causal_lm, resolve_lm_paths

        if not self.proxy:
            raise ConfigError("select() got no model and the selector has no proxy: pass a model or proxy=<name>")
        paths = resolve_lm_paths(self.store, self.proxy)
        if len(paths) != 1:
            raise ConfigError(f"proxy {self.proxy!r} is a family of {len(paths)} models: name one member")
        return load_causal_lm(paths[0])

    def proxy_fingerprint(self) -> str:
        """SHA-256 of the proxy checkpoint's weights, marked ``+eos`` for a byte model that reads documents after
        <eos> (:func:`curate.lm.tokenizer.scoring_of`): a finished stage is only as current as its proxy."""
        from curate.lm.load import resolve_lm_paths, weights_sha256
        from curate.lm.tokenizer import scoring_of

        paths = resolve_lm_paths(self.store, self.proxy or "")
        if len(paths) != 1:
            return ""
        return weights_sha256(paths[0]) + ("+eos" if scoring_of(paths) else "")

    def last_stage(self) -> int | None:
        """The highest stage number of this run with a ``stage.json`` (None before the first)."""
        from curate.mates.stage import finished_stages

        done = finished_stages(self.store, self.config.run)
        return done[-1] if done else None

    def finished(self, stage: int) -> dict[str, Any] | None:
        """``stage.json`` of stage ``stage`` when it ran from this proxy (same weights) with this config, else None.

        For scheduled runs from a checkpoint (the ``mates_stage`` flow with ``reuse``): a live model
        changes every call, so :meth:`select` never reuses.
        """
        import json
        from dataclasses import asdict

        from curate.mates.stage import stage_dir

        done = self.store.read_json(f"{stage_dir(self.config.run, stage)}/stage.json")
        if not done or not self.proxy:
            return None
        want = json.loads(json.dumps({**asdict(self.config), "probe": self.config.probe.to_dict()}))
        have = dict(done.get("config", {}))
        for cfg in (want, have):
            cfg.pop("progress", None)  # how a run reports, not what it computes
        same = have == want and done.get("proxy_sha256") == self.proxy_fingerprint()
        return done if same else None

    def select(self, model: Any = None, *, stage: int, optimizer: Any = None, tokenizer: Any = None) -> StageResult:
        """Run stage ``stage`` with ``model`` (a torch causal LM or a :class:`LoadedLM`; default: the proxy).

        ``optimizer``: the job's Adam-family optimizer, whose moments the probe step starts from.
        ``tokenizer``: the HF tokenizer of a live model (default: curate's byte tokenizer).
        """
        import torch

        extra: dict[str, Any] = {}
        if model is None:
            lm, what = self.load_proxy(), f"checkpoint {self.proxy}"
            extra["proxy_sha256"] = self.proxy_fingerprint()
        elif isinstance(model, LoadedLM):
            lm, what = model, f"checkpoint {model.path.name}"
        else:
            ctx = getattr(getattr(model, "config", None), "max_position_embeddings", None)
            lm, what = LoadedLM(model, Encoder(tokenizer), Path("."), ctx), "live model"
        moments = moments_from(optimizer, lm.model) if optimizer is not None else None
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            result = run_stage(self.store, lm, stage, self.config, moments=moments, proxy=what, extra=extra)
        finally:
            torch.set_num_threads(before)
        self.history.append(result)
        return result

    def texts(self, result: StageResult, batch_rows: int = 512) -> Iterator[str]:
        """Stream the selected documents' text (best Gumbel key first) from the store."""
        from curate.query import connect

        con = connect(self.store)
        reader = con.sql(f"SELECT d.text FROM read_parquet('{result.dir}/selection.parquet') s "
                         "JOIN docs d USING (doc_id) ORDER BY s.rank").to_arrow_reader(batch_rows)
        for batch in reader:
            yield from batch.column(0).to_pylist()
