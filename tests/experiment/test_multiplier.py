"""The token multiplier on constructed curves: exact where the curve is log-linear, bounds outside it."""

from __future__ import annotations

import math

import pytest

from curate.errors import ConfigError
from curate.experiment.multiplier import compare, mean_curve, token_multiplier, tokens_to_reach

TOKENS = [1_000, 2_000, 4_000, 8_000, 16_000]


def log_linear(t: float) -> float:
    return 5.0 - 0.5 * math.log(t / 1_000)


LOSSES = [log_linear(t) for t in TOKENS]


@pytest.mark.parametrize("needed", [1_000, 1_500, 3_000, 5_656, 8_000, 12_345, 16_000])
def test_exact_on_a_log_linear_curve(needed):
    m = token_multiplier(TOKENS, LOSSES, log_linear(needed), budget=4_000)
    assert m.bound is None and m.value == pytest.approx(needed / 4_000, rel=1e-9)


def test_bounds_outside_random_curve_say_so():
    worse = token_multiplier(TOKENS, LOSSES, LOSSES[0] + 0.1, budget=8_000)
    assert (worse.value, worse.bound, worse.limit, worse.text) == (None, "<", 0.125, "< 0.125×")
    better = token_multiplier(TOKENS, LOSSES, LOSSES[-1] - 0.1, budget=8_000)
    assert (better.value, better.bound, better.limit, better.text) == (None, ">", 2.0, "> 2×")
    assert token_multiplier(TOKENS, LOSSES, LOSSES[2], budget=4_000).text == "1.00×"


def test_noisy_curve_counts_the_first_time_random_got_there():
    # random reaches 3.0 at 2,000 tokens, goes back up, and comes down again later: it needed 2,000
    tokens, losses = [1_000, 2_000, 4_000, 8_000], [4.0, 3.0, 3.5, 2.5]
    assert tokens_to_reach(tokens, losses, 3.0) == (2_000.0, None)
    reached, _ = tokens_to_reach(tokens, losses, 3.2)
    assert 1_000 < reached < 2_000
    # the envelope stays at 3.0 through 4,000 (random made no progress there), then falls to 2.5 at 8,000:
    # halfway in loss is halfway in log-tokens between 4,000 and 8,000
    reached, _ = tokens_to_reach(tokens, losses, 2.75)
    assert reached == pytest.approx(math.sqrt(4_000 * 8_000))


def test_bad_curves_are_refused():
    with pytest.raises(ConfigError, match="as many"):
        token_multiplier([1, 2], [1.0], 1.0, 1)
    with pytest.raises(ConfigError, match="increasing"):
        token_multiplier([2, 1], [2.0, 1.0], 1.5, 1)
    with pytest.raises(ConfigError, match="budget"):
        token_multiplier([1, 2], [2.0, 1.0], 1.5, 0)


def _curve(losses: list[float]) -> list[dict[str, float]]:
    return [{"tokens": t, "loss": v, "bits_per_byte": v * 2} for t, v in zip(TOKENS, losses)]


def test_compare_measures_methods_against_the_random_mean_and_random_seeds_against_each_other():
    low = [v - 0.05 for v in LOSSES]  # two random seeds 0.1 apart, their mean is LOSSES
    high = [v + 0.05 for v in LOSSES]
    method = [log_linear(8_000)] * 3  # at the budget (4,000) the method is where random is at 8,000
    runs = [{"method": "random", "seed": 0, "curve": _curve(low)},
            {"method": "random", "seed": 1, "curve": _curve(high)},
            {"method": "m", "seed": 0, "curve": _curve(method)[:3]}]
    rows = compare(runs, budget=4_000)
    by = {(r["method"], r["seed"]): r for r in rows}
    m = by[("m", 0)]
    assert m["multiplier"]["value"] == pytest.approx(2.0)
    assert m["delta_bits_per_byte"] == pytest.approx(2 * (log_linear(8_000) - log_linear(4_000)))
    lo, hi = m["range"]  # against each seed alone: the better seed needs fewer tokens than the mean
    assert float(lo.rstrip("×")) < 2.0 < float(hi.rstrip("×"))
    # seed 0 is 0.1 below seed 1 everywhere: against seed 1 it reads exp(0.1 / 0.5) = 1.22x, and seed 1 the inverse
    assert by[("random", 0)]["multiplier"]["value"] == pytest.approx(math.exp(0.2))
    assert by[("random", 1)]["multiplier"]["value"] == pytest.approx(math.exp(-0.2))
    assert mean_curve([_curve(low), _curve(high)])[1] == pytest.approx(LOSSES)


def test_compare_needs_the_budget_point():
    runs = [{"method": "random", "seed": 0, "curve": _curve(LOSSES)}]
    with pytest.raises(ConfigError, match="budget"):
        compare(runs, budget=3_000)
