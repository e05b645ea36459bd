"""Rich progress bars for long work, silent when not attached to a terminal or disabled."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol


class Advance(Protocol):
    def __call__(self, n: int = 1, *, total: float | None = None) -> None: ...


@contextlib.contextmanager
def progress(description: str, total: float | None = None, unit: str = "docs", enabled: bool | None = None) -> Iterator[Advance]:
    """Yield ``advance(n)``; draws a bar with rate and ETA on a terminal (or when ``enabled``)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield lambda n=1, *, total=None: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, *, total: float | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, n)

        yield advance
