"""The ``build-mixture`` flow: plan + materialize a mixture spec, publish its report as an artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from curate.mixture.build import build_mixture
from curate.mixture.report import markdown
from curate.render import inline_pictures


@flow(name="build-mixture", log_prints=True)
def build_mixture_flow(store: str, spec: str, allow_short: bool = False, reuse: bool = False) -> dict[str, Any]:
    """Build ``spec`` (a YAML path) over ``store``; refuses a short supply unless ``allow_short``.
    ``reuse``: leave a mixture built from the same spec over the same store files as it is."""
    m = build_mixture(store, spec, allow_short=allow_short, reuse=reuse)
    scores = m.store.read_json(f"{m.dir}/scores.json")  # selected-vs-pool score medians, when features exist
    create_markdown_artifact(inline_pictures(markdown(m, scores=scores), m.store, m.dir), key="curate-mixture",
                             description=f"mixture {m.name}")
    t = m.data["tokens"]
    print(f"mixture {m.name}: {t['planned']:,} tokens, {t['unique']:,} unique, {m.data['rows']:,} document uses")
    return m.data
