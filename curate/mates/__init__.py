"""MATES (model-aware data selection with data influence models; cxcscmu/MATES), as a staged online loop.

Each stage: probe a held-out slice with one optimizer step each and measure the
reference loss (:mod:`~curate.mates.oracle`); train an influence model on the
z-scored oracle (:mod:`~curate.mates.influence`); predict every candidate of a
fresh pool through the scoring engine (``curate.mates.scorer``); keep 20% by exact
Gumbel-top-k (:mod:`~curate.mates.select`). Python users::

    from curate.mates import MatesSelector
    sel = MatesSelector("store", proxy="proxy", run="main")
    stage = sel.select(stage=1)            # or sel.select(live_model, stage=k, optimizer=opt)
    stage.doc_ids, stage.selection_sql, stage.spearman, stage.seconds_per_probe

Importing this package loads neither torch nor transformers; they load when these are called.
"""

from __future__ import annotations

from curate.mates.influence import InfluenceModel, train_influence
from curate.mates.oracle import Prober, ProbeSettings, moments_from, probe_oracle
from curate.mates.select import gumbel_top_k
from curate.mates.selector import MatesSelector
from curate.mates.stage import StageConfig, StageResult, run_stage
from curate.mates.stats import spearman

__all__ = ["InfluenceModel", "MatesSelector", "ProbeSettings", "Prober", "StageConfig", "StageResult", "gumbel_top_k",
           "moments_from", "probe_oracle", "run_stage", "spearman", "train_influence"]
