"""What every ``curate`` sub-command shares: consoles, the --store option, friendly errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from curate.errors import CurateError

console = Console(width=None if sys.stdout.isatty() else 160)  # wide tables in logs and CI
err = Console(stderr=True)

StoreOpt = Annotated[
    Path,
    typer.Option("--store", "-s", envvar="CURATE_STORE", help="Store directory (or set CURATE_STORE)."),
]
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Print curate's own errors as one clear message with exit code 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (CurateError, FileNotFoundError) as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
