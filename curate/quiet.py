"""Third-party noise off by default, so a first run shows curate's own progress and tables only.

The stack prints things a curate user cannot act on: Prefect's embedded server sends telemetry (on
SQLite it can die with a "database is locked" traceback), transformers draws a progress bar each
time a tiny model is saved or loaded ("Writing model shards", "Loading weights") and logs advisory
notices, and Hugging Face Hub draws download bars. Each library reads its switch from the
environment when it is imported, and Ray workers and the Prefect server subprocess inherit the
environment, so :func:`quiet_third_party` sets them before any of those imports. A user's own
setting of any of these variables wins (only unset ones are filled); ``verbose`` leaves them all alone.
Ray's notice that it enabled token auth (its default) is filtered from its log, only for a local Ray
that curate starts itself (:func:`quiet_local_ray`); token auth stays on.
"""

from __future__ import annotations

import logging
import os

QUIET_MARK = "CURATE_QUIET"  # set while quiet, so code in this process and its children can ask

#: variable -> value that silences it (each is the library's documented switch)
QUIET_ENV: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # else a fork warning each time a DataLoader worker starts
    QUIET_MARK: "1",
}
#: the logger of Ray's notice that a new local cluster enabled token auth (its default since Ray 2.5x)
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def _not_the_token_notice(record: logging.LogRecord) -> bool:
    # only the "enabled" notice: the warning that a cluster runs *without* token auth stays
    return not str(record.msg).startswith("Token authentication is enabled for this Ray cluster")


def quiet_third_party(verbose: bool = False) -> dict[str, str]:
    """Set the unset :data:`QUIET_ENV` variables (none with ``verbose``); returns what was set."""
    if verbose:
        return {}
    added = {k: v for k, v in QUIET_ENV.items() if k not in os.environ}
    os.environ.update(added)
    return added


def quiet_local_ray() -> None:
    """Before curate starts a local Ray, when quiet: drop Ray's notice that it enabled token auth.

    Filtered, not avoided by setting ``RAY_AUTH_MODE``: Ray reads that variable into its config when it
    is imported, so setting it later leaves the driver and the new cluster disagreeing on auth.
    """
    if os.environ.get(QUIET_MARK) == "1":
        logging.getLogger(RAY_AUTH_LOGGER).addFilter(_not_the_token_notice)  # a filter is added once
