"""`curate browse` refuses before serving, in one line with exit code 2: a missing store, a store without
documents, a port already in use. No server or browser is needed."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from curate.cli import app
from curate.store import Store

runner = CliRunner()


def test_a_missing_or_empty_store_is_refused_before_serving(tmp_path):
    r = runner.invoke(app, ["browse", "--store", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "no curate store" in " ".join(r.output.split()) and "Traceback" not in r.output
    Store.open(tmp_path / "empty", create=True)
    r = runner.invoke(app, ["browse", "--store", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "has no documents yet" in " ".join(r.output.split())  # rich wraps long lines
    assert "127.0.0.1" in runner.invoke(app, ["browse", "--help"]).output


def test_a_port_in_use_is_refused_in_one_line(make_real_store):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = runner.invoke(app, ["browse", "--store", str(make_real_store(100)), "--port", str(port)])
    assert r.exit_code == 2 and "choose another --port" in " ".join(r.output.split()), r.output
