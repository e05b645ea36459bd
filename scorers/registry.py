"""Scorer registry: every scorer module in this package, the core's own scorers, entry points, and class paths.

A scorer is one class with a ``name``. Adding one to curate is one file in ``scorers/`` (found by
reading the package's sources, so no list to edit and no heavy import until it is used) plus its
test. A scorer anywhere else is named by its class path, ``package.module:Class``, on the command
line and in flows alike; a third-party package can also declare an entry point::

    [project.entry-points."curate.scorers"]
    toxicity = "my_pkg.toxicity:ToxicityScorer"
"""

from __future__ import annotations

import ast
import functools
import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.scoring import Scorer
from curate.store import Store

ENTRY_POINT_GROUP = "curate.scorers"

#: the scorers core methods run through the engine themselves (PreSelect, MATES, mixture token counts) live
#: beside those methods; every other built-in is a module of this package
CORE: dict[str, str] = {
    "preselect": "curate.preselect.scorer:PreSelectScorer",
    "tokens": "curate.mixture.token_counts:TokenCountScorer",
    "mates": "curate.mates.scorer:MatesScorer",
}


@functools.cache
def builtin() -> dict[str, str]:
    """name -> "module:Class" for every class in this package that declares ``name = "..."`` (read from the
    sources, not imported: one scorer's heavy libraries never load for another)."""
    out = dict(CORE)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name.startswith("_") or path.stem == "registry":
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else \
                    stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
                value = getattr(stmt, "value", None)
                if isinstance(target, ast.Name) and target.id == "name" and isinstance(value, ast.Constant) \
                        and isinstance(value.value, str) and value.value:
                    out[value.value] = f"scorers.{path.stem}:{node.name}"
    return out


def available() -> dict[str, str]:
    """Every scorer name with where it comes from."""
    out = dict(builtin())
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, ep.value)
    return out


def scorer_class(name: str) -> type:
    """The class of a scorer name, or of a class path ``package.module:Class``."""
    target = name if ":" in name else available().get(name)
    if target is None:
        raise ConfigError(f"unknown scorer {name!r}: available are {', '.join(sorted(available()))}, or name "
                          "any scorer class as package.module:Class")
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"scorer {name!r}: cannot import {target}: {exc}") from None
    return cls


def get_scorer(name: str, **config: Any) -> Scorer:
    """Instantiate a scorer by name with its constructor's settings (model *paths*, not names)."""
    return _made(name, lambda cls: cls(**config))


def build_scorer(store: Store, name: str, **settings: Any) -> Scorer:
    """A scorer for ``store`` by name, model names resolved by the scorer itself (``from_store``): what
    ``curate score --set name.model=...`` and the flows build, e.g. ``build_scorer(st, "perplexity",
    model="tiny-lm")``."""
    return _made(name, lambda cls: cls.from_store(store, **settings) if hasattr(cls, "from_store")
                 else cls(**settings))


def build_scorers(store: Store, names: list[str], settings: dict[str, dict[str, Any]] | None = None) -> list[Scorer]:
    """One configured scorer per name; unknown names, bad settings and missing models fail here, before work."""
    settings = settings or {}
    unknown = set(settings) - set(names)
    if unknown:
        raise ConfigError(f"settings given for scorers not requested: {', '.join(sorted(unknown))}")
    if len(set(names)) != len(names):
        raise ConfigError(f"a scorer is listed twice: {names}")
    return [build_scorer(store, name, **dict(settings.get(name, {}))) for name in names]


def _made(name: str, make: Any) -> Scorer:
    cls = scorer_class(name)
    try:
        scorer = make(cls)
    except TypeError as exc:
        raise ConfigError(f"bad settings for scorer {name!r}: {exc}") from None
    if not isinstance(scorer, Scorer):
        raise ConfigError(f"{cls.__module__}.{cls.__qualname__} does not implement the Scorer protocol")
    return scorer
