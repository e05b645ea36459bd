"""HTML for ``curate browse``: Jinja2 templates (``templates/``) rendered with autoescaping on.

Everything a page shows from the store (text, ids, feature values, quarantined raw lines) goes through
Jinja2's HTML escaping, so a document holding ``<script>`` is shown as text and never runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,  # every template, whatever its name: nothing from the data is trusted
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the page (and the tests), not renders blank
    trim_blocks=True,
    lstrip_blocks=True,
)


def _with(params: dict[str, str], **changes: Any) -> str:
    """The query string of ``params`` with ``changes`` applied (None removes a key): links that keep the filters."""
    merged = {**params, **{k: v for k, v in changes.items() if v is not None}}
    for k, v in changes.items():
        if v is None:
            merged.pop(k, None)
    return urlencode({k: v for k, v in merged.items() if v != ""})


_ENV.globals["with_params"] = _with
_ENV.globals["static"] = False  # True in the pages of `curate report` (see curate.browse.static)


def render(template: str, **context: Any) -> str:
    """The page ``template`` with ``context``."""
    return _ENV.get_template(template).render(**context)
