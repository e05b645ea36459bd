"""curate benchmark suite: ``python -m benchmarks`` (see README.md)."""
