"""The token multiplier: how many tokens random selection needs to reach a method's final held-out loss.

Random's loss-vs-tokens curve is made monotone (its running minimum: "random has
reached loss L by t tokens" once any earlier point was at L or below) and
interpolated linearly in log-tokens, where such curves are close to straight.
``multiplier = tokens random needs / tokens the method trained on``: above 1 the
method saves tokens, below 1 it costs them. When the method's loss lies outside
random's curve the value is a bound, not a number: ``< 0.062x`` (random was
already better at its first point) or ``> 2x`` (random never got there).
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


def compare(runs: Sequence[dict], budget: int) -> list[dict]:
    """One row per run: loss and bits per byte at ``budget`` tokens, the difference from random's mean, and
    the token multiplier against random's mean curve plus its range over the random seeds' own curves.

    A random run is measured against the *other* random seeds (its own curve would say 1x): how far
    apart two random seeds read is the noise floor of every multiplier.
    """
    randoms = [r for r in runs if r["method"] == "random"]
    tokens, mean = mean_curve([r["curve"] for r in randoms])
    bpb_tokens, bpb = mean_curve([r["curve"] for r in randoms], "bits_per_byte")
    if budget not in bpb_tokens:
        raise ConfigError(f"the random runs were not evaluated at the budget ({budget:,} tokens)")
    mean_bpb = bpb[bpb_tokens.index(budget)]
    rows = []
    for r in runs:
        loss, bits = at_tokens(r["curve"], budget), at_tokens(r["curve"], budget, "bits_per_byte")
        others = [o for o in randoms if o is not r]
        row = {"method": r["method"], "seed": r["seed"], "loss": loss, "bits_per_byte": bits,
               "delta_bits_per_byte": round(bits - mean_bpb, 6), "multiplier": None, "range": None}
        if others:
            ref_t, ref = mean_curve([o["curve"] for o in others]) if r["method"] == "random" else (tokens, mean)
            row["multiplier"] = token_multiplier(ref_t, ref, loss, budget).to_dict()
            each = [token_multiplier([p["tokens"] for p in o["curve"]], [p["loss"] for p in o["curve"]], loss, budget)
                    for o in others]
            lo, hi = min(each, key=Multiplier.sort_key), max(each, key=Multiplier.sort_key)
            row["range"] = [lo.text, hi.text]
        rows.append(row)
    return rows
