"""Scoring methods, one module each, all behind ``scorers.base.Scorer``.

Look them up by name with ``scorers.registry.get_scorer``.
"""
