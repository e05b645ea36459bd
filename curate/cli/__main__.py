"""``python -m curate.cli``: the ``curate`` command without its console script."""

from curate.cli import main

main()
