"""The layers point one way (core <- scorers <- flows and the experiment <- CLI), checked by import-linter.

The contracts are in pyproject.toml ([tool.importlinter]); grimp builds the import graph from the sources,
function-level imports included, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout, done.stdout[-2000:]
