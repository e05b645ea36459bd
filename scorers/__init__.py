"""Scoring methods, one module each, all behind ``curate.scoring.Scorer``.

Look them up by name with ``scorers.registry.get_scorer``.
"""
