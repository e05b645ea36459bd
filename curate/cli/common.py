"""What every ``curate`` sub-command shares: consoles, the --store option, friendly errors."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from curate.errors import CurateError

console = Console(width=None if sys.stdout.isatty() else 160)  # wide tables in logs and CI
err = Console(stderr=True)

# a string, not a Path: Path("s3://bucket/store") would collapse the URI to the local path "s3:/bucket/store"
StoreOpt = Annotated[
    str,
    typer.Option("--store", "-s", envvar="CURATE_STORE",
                 help="Store directory or object-store URI such as s3://bucket/prefix (or set CURATE_STORE)."),
]
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Print curate's own errors (and a lost Prefect server) as one clear message with exit code 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (CurateError, FileNotFoundError) as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
        except Exception as exc:
            lost = prefect_api_lost(exc)
            if lost is None:
                raise
            err.print(f"[bold red]error:[/] {escape(lost)}")
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def prefect_api_lost(exc: BaseException) -> str | None:
    """What to tell a user whose flow lost its Prefect server after Prefect's client retries, else None.

    Prefect's client retries a refused or dropped request 5 times over about a minute
    (``PREFECT_CLIENT_MAX_RETRIES``), then raises the raw ``httpx`` error.
    """
    httpx = sys.modules.get("httpx")  # only a flow run imports it: nothing to recognise otherwise
    if httpx is None:
        return None
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500:
        url = str(exc.request.url)
    elif isinstance(exc, httpx.TransportError):
        try:
            url = str(exc.request.url)
        except RuntimeError:  # an error raised without its request
            url = "the Prefect API"
    else:
        return None
    api = url.split("/api/", 1)[0] + "/api" if "/api/" in url else url
    return (f"lost the Prefect server at {api} ({type(exc).__name__}: {exc}) after Prefect's client retries. "
            "What the run finished before that is kept in the store; start the server again (or unset "
            "PREFECT_API_URL to let curate start a temporary one) and re-run the same command: finished work "
            "is skipped")


def parse_settings(items: list[str], flag: str = "--set", example: str = "domain.k=5") -> dict[str, dict[str, Any]]:
    """``owner.key=value`` pairs (value parsed as JSON when it can be) into per-owner settings (owner: a scorer
    for ``--set``, a deployment for ``--param``)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        scorer, dot, name = key.partition(".")
        if not eq or not dot or not scorer or not name:
            owner = "scorer" if flag == "--set" else "deployment"
            raise CurateError(f"{flag} {item!r}: expected {owner}.key=value, e.g. {flag} {example}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(scorer, {})[name] = parsed
    return out


@contextlib.contextmanager
def shard_failures_exit() -> Iterator[None]:
    """Around a score flow: shards that failed after their retries are printed on stderr and the command exits 1
    (every other shard was scored and kept; re-running retries only the failed ones)."""
    from flows.score import ShardFailures

    try:
        yield
    except ShardFailures as exc:
        err.print(f"[bold red]failed shards:[/] {exc}")
        raise typer.Exit(1) from None
