"""Third-party noise is switched off by the CLI unless --verbose, and a user's own settings win."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from curate.quiet import QUIET_ENV, QUIET_MARK, RAY_AUTH_LOGGER, quiet_local_ray, quiet_third_party


def _clean(monkeypatch):
    for k in QUIET_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(logging.getLogger(RAY_AUTH_LOGGER), "filters", [])


def _shown(message: str) -> bool:
    """Whether Ray's auth logger lets a warning with this text through its filters."""
    record = logging.LogRecord(RAY_AUTH_LOGGER, logging.WARNING, __file__, 1, message, None, None)
    return bool(logging.getLogger(RAY_AUTH_LOGGER).filter(record))


def test_quiet_fills_only_unset_switches_and_verbose_leaves_all(monkeypatch):
    _clean(monkeypatch)
    assert quiet_third_party(verbose=True) == {} and not any(k in os.environ for k in QUIET_ENV)
    notice = "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out."
    quiet_local_ray()
    assert _shown(notice)  # not quiet: Ray keeps its notice
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's own choice
    added = quiet_third_party()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info" and "TRANSFORMERS_VERBOSITY" not in added
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and os.environ[QUIET_MARK] == "1"
    quiet_local_ray()
    assert not _shown(notice)
    assert _shown("Token authentication is disabled for this Ray cluster. Anyone with network access ...")


def test_libraries_read_the_switches_when_the_cli_set_them():
    """In a fresh interpreter: the CLI's root callback runs before transformers is imported, so its bars are off."""
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    code = ("from typer.testing import CliRunner; from curate.cli import app; import sys\n"
            "r = CliRunner().invoke(app, [*sys.argv[1:], 'sql', '--help']); assert r.exit_code == 0, r.output\n"
            "from transformers.utils import logging; print(logging.is_progress_bar_enabled(), logging.get_verbosity())")
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    verbose = subprocess.run([sys.executable, "-c", code, "--verbose"], env=env, capture_output=True, text=True,
                             check=True)
    assert quiet.stdout.split() == ["False", "40"]  # ERROR
    assert verbose.stdout.split()[0] == "True"
