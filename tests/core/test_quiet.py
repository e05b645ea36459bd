"""Third-party noise is switched off by the CLI unless --verbose, and a user's own settings win."""

from __future__ import annotations

import os
import subprocess
import sys

from curate.quiet import LOCAL_RAY_ENV, QUIET_ENV, QUIET_MARK, quiet_local_ray, quiet_third_party


def _clean(monkeypatch):
    for k in [*QUIET_ENV, *LOCAL_RAY_ENV]:
        monkeypatch.delenv(k, raising=False)


def test_quiet_fills_only_unset_switches_and_verbose_leaves_all(monkeypatch):
    _clean(monkeypatch)
    assert quiet_third_party(verbose=True) == {} and not any(k in os.environ for k in QUIET_ENV)
    quiet_local_ray()
    assert "RAY_AUTH_MODE" not in os.environ  # not quiet: Ray keeps its notice
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")  # the user's own choice
    added = quiet_third_party()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info" and "TRANSFORMERS_VERBOSITY" not in added
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and os.environ[QUIET_MARK] == "1"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    quiet_local_ray()
    assert os.environ["RAY_AUTH_MODE"] == "disabled"  # a mode the user chose is kept
    monkeypatch.delenv("RAY_AUTH_MODE")
    quiet_local_ray()
    assert os.environ["RAY_AUTH_MODE"] == "token"


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
