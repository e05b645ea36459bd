"""The token multiplier: how many tokens random selection needs to reach a method's final held-out loss.

Random's loss-vs-tokens curve is made monotone (its running minimum: "random has
reached loss L by t tokens" once any earlier point was at L or below) and
interpolated linearly in log-tokens, where such curves are close to straight.
``multiplier = tokens random needs / tokens the method trained on``: above 1 the
method saves tokens, below 1 it costs them. When the method's loss lies outside
random's curve the value is a bound, not a number: ``< 0.062x`` (random was
already better at its first point) or ``> 2x`` (random never got there).

With several seeds per method, :func:`multiplier_interval` gives the multiplier of
the method's mean loss against random's mean curve with a 90% interval: a Welch
t-interval for the gap between the method's mean and random's mean at the point
random reaches it (both seed spreads count), mapped through random's curve.
:func:`difference_interval` is the same t-interval for a plain difference of means,
paired by seed where two runs share everything up to their last phase.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from curate.errors import ConfigError


@dataclass(frozen=True)
class Multiplier:
    """``value`` when random's curve reaches the loss; otherwise ``bound`` (``<`` or ``>``) and ``limit``."""

    value: float | None
    bound: str | None = None
    limit: float | None = None

    @property
    def text(self) -> str:
        if self.value is not None:
            return f"{self.value:.2f}×"
        return f"{self.bound} {self.limit:.3g}×"

    def sort_key(self) -> float:
        """A number for ordering: the value, or the bound nudged past its limit."""
        if self.value is not None:
            return self.value
        assert self.limit is not None
        return self.limit * (0.999 if self.bound == "<" else 1.001)

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "bound": self.bound, "limit": self.limit, "text": self.text}


def _check(tokens: Sequence[float], losses: Sequence[float]) -> None:
    if len(tokens) != len(losses) or not tokens:
        raise ConfigError(f"a loss curve needs as many losses as token counts (got {len(tokens)} and {len(losses)})")
    if any(t <= 0 for t in tokens) or any(b <= a for a, b in zip(tokens, tokens[1:])):
        raise ConfigError(f"token counts must be positive and increasing, got {list(tokens)}")
    if not all(math.isfinite(x) for x in losses):
        raise ConfigError(f"losses must be finite, got {list(losses)}")


def tokens_to_reach(tokens: Sequence[float], losses: Sequence[float], loss: float) -> tuple[float | None, str | None]:
    """Tokens at which the curve first reaches ``loss``: (tokens, None), or (None, '<' / '>') outside it."""
    _check(tokens, losses)
    env = []  # the running minimum
    for x in losses:
        env.append(min(x, env[-1]) if env else x)
    if loss >= env[0]:
        return (float(tokens[0]), None) if loss == env[0] else (None, "<")
    if loss < env[-1]:
        return None, ">"
    for i in range(1, len(env)):
        if env[i] <= loss:  # env[i-1] > loss >= env[i]
            if env[i] == loss:
                return float(tokens[i]), None
            f = (env[i - 1] - loss) / (env[i - 1] - env[i])
            lo, hi = math.log(tokens[i - 1]), math.log(tokens[i])
            return math.exp(lo + f * (hi - lo)), None
    raise AssertionError("unreachable: loss lies within the envelope")


def token_multiplier(tokens: Sequence[float], losses: Sequence[float], loss: float, budget: float) -> Multiplier:
    """Tokens random (``tokens``, ``losses``) needs to reach ``loss``, divided by ``budget``."""
    if budget <= 0:
        raise ConfigError(f"budget must be positive, got {budget}")
    reached, bound = tokens_to_reach(tokens, losses, loss)
    if reached is not None:
        return Multiplier(reached / budget)
    limit = (tokens[0] if bound == "<" else tokens[-1]) / budget
    return Multiplier(None, bound, limit)


def mean_curve(curves: Sequence[Sequence[dict[str, float]]], key: str = "loss") -> tuple[list[int], list[float]]:
    """(tokens, mean ``key``) over runs at the token counts they all share."""
    if not curves:
        raise ConfigError("no random runs to compare against")
    common = sorted(set.intersection(*({int(p["tokens"]) for p in c} for c in curves)))
    if not common:
        raise ConfigError("the random runs share no evaluation point")
    by = [{int(p["tokens"]): float(p[key]) for p in c} for c in curves]
    return common, [sum(b[t] for b in by) / len(by) for t in common]


def at_tokens(curve: Sequence[dict[str, float]], tokens: int, key: str = "loss") -> float:
    """A curve's ``key`` at exactly ``tokens`` (every run is evaluated at the budget)."""
    for p in curve:
        if int(p["tokens"]) == int(tokens):
            return float(p[key])
    raise ConfigError(f"the curve has no point at {tokens:,} tokens (it has {[int(p['tokens']) for p in curve]})")


#: two-sided 90% critical values of Student's t (the 0.95 quantile) by degrees of freedom
_T90 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812,
        12: 1.782, 15: 1.753, 20: 1.725, 30: 1.697, 60: 1.671, 120: 1.658}


def t90(df: float) -> float:
    """Student's t 0.95 quantile for ``df`` degrees of freedom (interpolated in 1/df; 1.645 as df -> inf)."""
    if not df >= 1:
        raise ConfigError(f"degrees of freedom must be at least 1, got {df}")
    keys = sorted(_T90)
    if df >= keys[-1]:
        lo, hi = (keys[-1], _T90[keys[-1]]), (math.inf, 1.645)
    else:
        k = max(x for x in keys if x <= df)
        k2 = min(x for x in keys if x > df)
        lo, hi = (k, _T90[k]), (k2, _T90[k2])
    inv = lambda x: 0.0 if math.isinf(x) else 1 / x  # noqa: E731
    f = (inv(lo[0]) - inv(df)) / (inv(lo[0]) - inv(hi[0]))
    return lo[1] + f * (hi[1] - lo[1])


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mean = sum(xs) / n
    return mean, (math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0)


def welch(a_std: float, a_n: int, b_std: float, b_n: int) -> tuple[float, float]:
    """(standard error of a difference of two means, Welch-Satterthwaite degrees of freedom)."""
    va, vb = a_std ** 2 / a_n, b_std ** 2 / b_n
    se = math.sqrt(va + vb)
    if se == 0:
        return 0.0, float(a_n + b_n - 2)
    df = (va + vb) ** 2 / ((va ** 2 / (a_n - 1) if a_n > 1 else 0) + (vb ** 2 / (b_n - 1) if b_n > 1 else 0) or 1e-300)
    return se, max(1.0, df)


@dataclass(frozen=True)
class Estimate:
    """A multiplier (or a difference) with its 90% interval; ``low``/``high`` are None below two seeds a side."""

    value: Multiplier
    low: Multiplier | None
    high: Multiplier | None
    mean: float  # the method's mean loss (or the mean difference)
    std: float
    n: int
    se: float | None
    df: float | None

    @property
    def text(self) -> str:
        if self.low is None or self.high is None:
            return self.value.text
        return f"{self.value.text} ({self.low.text.rstrip('×')}–{self.high.text})"

    @property
    def beats_random(self) -> bool:
        """The interval's lower end is above 1: the method saves tokens beyond the seeds' noise."""
        low = self.low
        return low is not None and (low.value is not None and low.value > 1 or low.bound == ">" and low.limit >= 1)

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value.to_dict(), "low": self.low.to_dict() if self.low else None,
                "high": self.high.to_dict() if self.high else None, "mean": self.mean, "std": self.std, "n": self.n,
                "se": self.se, "df": self.df, "text": self.text, "beats_random": self.beats_random}


def curve_std(curves: Sequence[Sequence[dict[str, float]]], key: str) -> tuple[list[int], list[float]]:
    """(tokens, standard deviation of ``key`` across runs) at the token counts they all share."""
    common = mean_curve(curves, key)[0]
    by = [{int(p["tokens"]): float(p[key]) for p in c} for c in curves]
    return common, [_mean_std([b[t] for b in by])[1] for t in common]


def _std_at(tokens: Sequence[int], stds: Sequence[float], at: float | None) -> float:
    """Random's seed std where its curve reaches the method's loss (log-token interpolation; ends outside)."""
    if at is None or at <= tokens[0]:
        return stds[0] if at is None or at <= tokens[0] else stds[-1]
    if at >= tokens[-1]:
        return stds[-1]
    for i in range(1, len(tokens)):
        if at <= tokens[i]:
            f = (math.log(at) - math.log(tokens[i - 1])) / (math.log(tokens[i]) - math.log(tokens[i - 1]))
            return stds[i - 1] + f * (stds[i] - stds[i - 1])
    return stds[-1]


def multiplier_interval(random_curves: Sequence[Sequence[dict[str, float]]], losses: Sequence[float], budget: int,
                        key: str = "loss") -> Estimate:
    """The token multiplier of the mean of ``losses`` (one per seed, at ``budget`` tokens) against random's mean
    curve over ``random_curves``, with a 90% Welch t-interval (needs at least two seeds on each side)."""
    if not losses:
        raise ConfigError("no runs of the method to compare")
    tokens, mean = mean_curve(random_curves, key)
    m_mean, m_std = _mean_std(list(losses))
    value = token_multiplier(tokens, mean, m_mean, budget)
    if len(losses) < 2 or len(random_curves) < 2:
        return Estimate(value, None, None, m_mean, m_std, len(losses), None, None)
    _, stds = curve_std(random_curves, key)
    reached, _ = tokens_to_reach(tokens, mean, m_mean)
    if reached is None:  # outside random's curve: its std at the end the loss lies beyond
        reached = tokens[0] if m_mean >= mean[0] else tokens[-1]
    se, df = welch(m_std, len(losses), _std_at(tokens, stds, reached), len(random_curves))
    half = t90(df) * se
    return Estimate(value, token_multiplier(tokens, mean, m_mean + half, budget),
                    token_multiplier(tokens, mean, m_mean - half, budget), m_mean, m_std, len(losses), se, df)


def difference_interval(a: Sequence[float], b: Sequence[float], *, paired: bool = False) -> dict[str, float | None]:
    """Mean of ``a`` minus mean of ``b`` with a 90% t-interval; ``paired``: ``a[i]`` and ``b[i]`` share a seed."""
    if paired:
        if len(a) != len(b):
            raise ConfigError(f"a paired difference needs as many runs on each side (got {len(a)} and {len(b)})")
        diffs = [x - y for x, y in zip(a, b)]
        mean, std = _mean_std(diffs)
        se, df = (std / math.sqrt(len(diffs)), float(len(diffs) - 1)) if len(diffs) > 1 else (None, None)
    else:
        (ma, sa), (mb, sb) = _mean_std(list(a)), _mean_std(list(b))
        mean = ma - mb
        se, df = welch(sa, len(a), sb, len(b)) if len(a) > 1 and len(b) > 1 else (None, None)
    half = t90(df) * se if se is not None and df is not None and df >= 1 else None
    return {"mean": mean, "low": mean - half if half is not None else None,
            "high": mean + half if half is not None else None, "se": se, "df": df, "paired": paired}
