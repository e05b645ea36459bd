"""Build scorers from names + settings, resolving store-held models, before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.lm.load import resolve_lm_paths
from curate.store import Store
from scorers.base import Scorer
from scorers.registry import get_scorer


def build_scorers(store: Store, names: list[str], settings: dict[str, dict[str, Any]] | None = None) -> list[Scorer]:
    """One configured scorer per name; unknown names, bad settings and missing models fail here."""
    settings = settings or {}
    unknown = set(settings) - set(names)
    if unknown:
        raise ConfigError(f"settings given for scorers not requested: {', '.join(sorted(unknown))}")
    if len(set(names)) != len(names):
        raise ConfigError(f"a scorer is listed twice: {names}")
    out = []
    for name in names:
        cfg = dict(settings.get(name, {}))
        if name == "domain" and "model_path" not in cfg:
            from scorers.domain import model_path

            cfg["model_path"] = model_path(store, cfg.pop("model", "domain"))
        elif name == "preselect" and "model_path" not in cfg:
            from curate.preselect import selector_settings

            # a selector trained here is scored with the preprocessing it was trained with
            cfg = {**selector_settings(store, cfg.pop("model", "preselect")), **cfg}
        elif name == "mates" and "model_path" not in cfg:  # an influence model a MATES stage trained
            from curate.mates.influence import store_model_path

            cfg["model_path"] = store_model_path(store, cfg.pop("model", "mates"))
        elif name == "perplexity" and "model_path" not in cfg:
            ref = cfg.pop("model", "tiny-lm")
            paths = resolve_lm_paths(store, ref)
            if len(paths) != 1:
                raise ConfigError(f"perplexity scores with one model; {ref!r} is a family of {len(paths)}: "
                                  f"name one member, e.g. {Path(paths[0]).name}")
            cfg["model_path"] = paths[0]
        elif name in ("el2n", "grand") and "model_paths" not in cfg:
            # a name is one model or a seed family (proxy -> proxy-s0, proxy-s1, ...); a list names each
            wanted = cfg.pop("models", None) or cfg.pop("model", "proxy")
            wanted = wanted.split(",") if isinstance(wanted, str) else list(wanted)
            cfg["model_paths"] = [p for w in wanted for p in resolve_lm_paths(store, w)]
        out.append(get_scorer(name, **cfg))
    return out
