"""The selection experiment: the same tiny LM trained on equal token budgets chosen by each selection method.

Methods (:mod:`~curate.experiment.methods`): random, an in-domain oracle, PreSelect
(target-aware family) and its per-domain variant, closest-to-target (Moore-Lewis),
perplexity middle band, EL2N keep-hard and keep-easy, MATES (staged, live model) and
a two-phase schedule with end-of-training upsampling. Targets
(:mod:`~curate.experiment.targets`): the pool's own mix and targets that differ from
it. Each run trains on windows drawn uniformly from what its method keeps
(:mod:`~curate.experiment.windows`), with a cooldown branch at every evaluation point
(:mod:`~curate.experiment.trainer`), over several seeds; the report gives per target
each method's mean held-out bits per byte and its token multiplier against random
with a 90% interval (:mod:`~curate.experiment.multiplier`)::

    from curate.experiment import run_experiment
    result = run_experiment("demo-store", "experiment-out", scale="default")
    result["comparison"]["math-code"]["rows"]   # per method: mean, std, multiplier with interval

``curate experiment`` and ``python -m benchmarks --only selection`` call the same function.
"""

from __future__ import annotations

from curate.experiment.methods import METHODS, parse_methods
from curate.experiment.multiplier import (
           Estimate,
           Multiplier,
           multiplier_interval,
           token_multiplier,
)
from curate.experiment.run import run_experiment
from curate.experiment.scales import SCALES, Scale, get_scale
from curate.experiment.targets import BUILTIN as TARGETS

__all__ = ["METHODS", "SCALES", "TARGETS", "Estimate", "Multiplier", "Scale", "get_scale", "multiplier_interval",
           "parse_methods", "run_experiment", "token_multiplier"]
