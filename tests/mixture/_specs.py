"""Spec builders shared by the mixture tests."""

from __future__ import annotations


def spec_dict(**over) -> dict:
    """A valid spec over the test store; ``over`` replaces top-level fields."""
    base = {
        "name": "t",
        "tokens": 200_000,
        "seed": 0,
        "max_epochs": 2,
        "weights": {"web": 0.3, "code": 0.2, "math": 0.1, "encyclopedic": 0.1, "books": 0.1,
                    "forum": 0.1, "docs": 0.05, "multilingual": 0.05},
        "phases": [
            {"name": "main", "fraction": 0.8},
            {"name": "anneal", "fraction": 0.2, "weights": {"math": 0.4, "code": 0.4, "encyclopedic": 0.2}},
        ],
    }
    base.update(over)
    return base
