"""The token multiplier on constructed curves: exact where the curve is log-linear, bounds outside it."""

from __future__ import annotations

import math

import pytest

from curate.errors import ConfigError
from curate.experiment.multiplier import (
    difference_interval,
    multiplier_interval,
    t90,
    token_multiplier,
    tokens_to_reach,
)

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
    return [{"tokens": t, "loss": v} for t, v in zip(TOKENS, losses)]


def test_t_quantiles_match_the_table_and_approach_the_normal():
    assert t90(1) == pytest.approx(6.314) and t90(2) == pytest.approx(2.920) and t90(10) == pytest.approx(1.812)
    assert 2.353 > t90(3.5) > 2.132 and t90(10**6) == pytest.approx(1.645, abs=1e-3)
    with pytest.raises(ConfigError):
        t90(0.5)


def test_interval_of_a_method_two_x_ahead_of_random_on_constructed_seeds():
    """Three random seeds 0.02 apart around a log-linear curve; a method whose seeds sit at random's 8,000-token loss
    (the budget is 4,000) reads 2x; the interval follows from the t quantile and both spreads."""
    randoms = [_curve([v + d for v in LOSSES]) for d in (-0.02, 0.0, 0.02)]
    center = log_linear(8_000)
    est = multiplier_interval(randoms, [center - 0.01, center, center + 0.01], budget=4_000)
    assert est.value.value == pytest.approx(2.0) and est.n == 3 and est.std == pytest.approx(0.01)
    se = math.sqrt(0.01 ** 2 / 3 + 0.02 ** 2 / 3)
    assert est.se == pytest.approx(se)
    half = t90(est.df) * se  # loss +- half, mapped through random's log-linear curve (slope 0.5 per e-fold)
    assert est.low.value == pytest.approx(2.0 * math.exp(-half / 0.5))
    assert est.high.value == pytest.approx(2.0 * math.exp(half / 0.5))
    assert est.beats_random and est.text.startswith("2.00× (") and est.text.endswith("×)")
    # one seed a side: a value, no interval
    alone = multiplier_interval(randoms[1:2], [center], budget=4_000)
    assert alone.low is None and alone.text == "2.00×" and not alone.beats_random


def test_interval_says_when_random_never_got_there():
    randoms = [_curve([v + d for v in LOSSES]) for d in (-0.01, 0.01)]
    est = multiplier_interval(randoms, [LOSSES[-1] - 0.5, LOSSES[-1] - 0.6], budget=4_000)
    assert est.value.bound == ">" and est.low.bound == ">" and est.beats_random
    worse = multiplier_interval(randoms, [LOSSES[0] + 1, LOSSES[0] + 1.1], budget=4_000)
    assert worse.value.bound == "<" and not worse.beats_random


def test_difference_interval_paired_and_unpaired():
    paired = difference_interval([1.0, 2.0, 3.0], [1.1, 2.1, 3.05], paired=True)
    diffs = [-0.1, -0.1, -0.05]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert paired["mean"] == pytest.approx(mean) and paired["df"] == 2
    assert paired["high"] == pytest.approx(mean + 2.920 * sd / math.sqrt(3)) and paired["high"] < 0
    unpaired = difference_interval([1.0, 2.0, 3.0], [1.1, 2.1, 3.05])
    assert unpaired["low"] < 0 < unpaired["high"]  # the seeds' own spread swamps the gap without pairing
    with pytest.raises(ConfigError, match="paired"):
        difference_interval([1.0], [1.0, 2.0], paired=True)
