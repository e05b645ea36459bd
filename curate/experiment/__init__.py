"""The selection experiment: the same tiny LM trained on equal token budgets chosen by each selection method.

Methods (:mod:`~curate.experiment.methods`): random, PreSelect top share, perplexity
middle band, EL2N keep-hard and keep-easy (each a SQL selection over the store),
MATES (staged, with the live model) and a two-phase mixture with end-of-training
upsampling. Each run trains the scale's LM on its draw and measures held-out loss
on corpus ``heldout`` at several budgets; the report gives, per method, the tokens
random needs to reach the method's final loss (the token multiplier), with the
random seeds' spread as the noise floor::

    from curate.experiment import run_experiment
    result = run_experiment("demo-store", "experiment-out", scale="default")
    result["comparison"]          # per run: loss, bits/byte, multiplier (+ range over random seeds)

``curate experiment`` and ``python -m benchmarks.selection`` call the same function.
"""

from __future__ import annotations

from curate.experiment.methods import METHODS, parse_methods
from curate.experiment.multiplier import Multiplier, token_multiplier
from curate.experiment.run import run_experiment
from curate.experiment.scales import SCALES, Scale, get_scale

__all__ = ["METHODS", "SCALES", "Multiplier", "Scale", "get_scale", "parse_methods", "run_experiment",
           "token_multiplier"]
