"""The ``curate`` command line: a thin face over the library and the flows (no logic lives here).

One module per group of commands, each with ``register(app)``; ``common`` holds what they share
(the consoles, ``--store``, friendly errors, ``--set``-style settings, the shard-failure exit).
"""

from __future__ import annotations

import typer

from curate.cli import (
    browse,
    data,
    decontam,
    dedup,
    demo,
    experiment,
    flows,
    lineage,
    lm,
    mates,
    mix,
    preselect,
    score,
)
from curate.quiet import quiet_third_party

app = typer.Typer(
    name="curate",
    help="Score a pretraining corpus, query its features with SQL, and build token-budgeted mixtures.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)



@app.callback()
def _root(verbose: bool = typer.Option(
        False, "--verbose", help="Keep the stack's own output: Prefect telemetry, transformers' and Hugging Face's "
                                 "progress bars and notices (off by default; see curate.quiet).")) -> None:
    quiet_third_party(verbose)  # before any command imports Prefect, transformers or Ray


for module in (data, score, dedup, decontam, lm, preselect, mates, mix, lineage, flows, demo, experiment, browse):
    module.register(app)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
