"""Scorer registry: built-in methods plus any package that declares a ``curate.scorers`` entry point.

A third-party package adds a scorer without touching curate::

    [project.entry-points."curate.scorers"]
    toxicity = "my_pkg.toxicity:ToxicityScorer"
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from curate.errors import ConfigError
from scorers.base import Scorer

ENTRY_POINT_GROUP = "curate.scorers"

#: name -> "module:Class"; imported on first use so one scorer's heavy libraries never load for another
BUILTIN: dict[str, str] = {
    "heuristics": "scorers.heuristics:HeuristicsScorer",
    "langid": "scorers.langid:LangIdScorer",
    "domain": "scorers.domain:DomainScorer",
    "fasttext": "scorers.fasttext:FastTextScorer",
    "perplexity": "scorers.perplexity:PerplexityScorer",
    "preselect": "scorers.preselect:PreSelectScorer",
    "tokens": "scorers.tokens:TokenCountScorer",
    "el2n": "scorers.el2n:EL2NScorer",
    "grand": "scorers.grand:GraNdScorer",
    "mates": "scorers.mates:MatesScorer",
}


def available() -> dict[str, str]:
    """Every scorer name with where it comes from."""
    out = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, ep.value)
    return out


def scorer_class(name: str) -> type:
    target = available().get(name)
    if target is None:
        raise ConfigError(f"unknown scorer {name!r}: available are {', '.join(sorted(available()))}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_scorer(name: str, **config: Any) -> Scorer:
    """Instantiate a scorer by name; settings are validated by the scorer's constructor."""
    cls = scorer_class(name)
    try:
        scorer = cls(**config)
    except TypeError as exc:
        raise ConfigError(f"bad settings for scorer {name!r}: {exc}") from None
    if not isinstance(scorer, Scorer):
        raise ConfigError(f"{cls.__module__}.{cls.__qualname__} does not implement the Scorer protocol")
    return scorer
