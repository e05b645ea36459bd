"""Experiment scales: how many tokens each method trains on, the LM, MATES' stage sizes, and the feature recipe.

One :class:`Scale` fixes everything that makes two runs comparable: the token
budget every method gets, the LM (shape, context, batch, learning rate, a fixed
warmup and a constant rate after it, so that every point of a loss curve is a
model one could have stopped at), the eval points, and how features are made when
the store lacks them. ``tiny`` runs in the tests (a few hundred documents, seconds
per run); ``default`` is the published experiment (whole embedded pool, under 30
minutes on 2 cores from an empty store); ``large`` trains 3x longer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from curate.errors import ConfigError
from curate.preselect.family import member_shape

MICRO = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 192}
NANO = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


@dataclass(frozen=True)
class FeatureRecipe:
    """How the features the methods read are made when the store lacks them (see :mod:`.features`).

    The default recipe is the demo's (``curate demo``): the same model names and sizes, so a
    demo store already has everything.
    """

    reference: dict[str, Any]  # train_lm arguments of the perplexity reference LM (with "name")
    proxies: dict[str, Any]  # train_lm arguments of the EL2N proxies (with "name", "seeds")
    preselect: dict[str, Any]  # curate.preselect.train arguments
    perplexity_max_tokens: int = 256
    el2n_max_tokens: int = 128


@dataclass(frozen=True)
class Scale:
    """Everything one experiment holds fixed across methods."""

    name: str
    budget: int  # training tokens every method gets
    random_reach: float  # random trains to budget x this, so multipliers up to this are measured, not bounded
    eval_fractions: tuple[float, ...]  # held-out loss at these fractions of the budget (above 1: random only)
    random_seeds: int  # random runs with seeds seed, seed+1, ...: the noise floor
    model: dict[str, Any]  # LlamaConfig shape fields
    seq_len: int
    batch_size: int
    lr: float
    warmup_steps: int  # fixed in steps (not a share of the run), so a longer run starts exactly like a shorter one
    mix_batches: int  # rows of this many consecutive batches are shuffled together (see training.Stream)
    eval_tokens: int  # held-out tokens per evaluation
    mates_stages: int  # stage 0 trains on a random draw, each later stage on MATES' selection from the live model
    mates_probes: int
    mates_reference_docs: int
    mates_chunk_tokens: int  # MiniLM tokens read per document (one chunk)
    anneal_fraction: float  # two-phase: the last share of the budget upsamples math, code and encyclopedic
    features: FeatureRecipe
    pool_docs: int | None = None  # an empty store gets this many embedded pool documents (None: all)
    heldout_docs: int | None = None  # ... and this many held-out ones (None: all)
    max_chars: int | None = None  # ... each cut to this many characters (None: whole)
    threads: int = 1  # torch threads per run (tiny LMs are overhead-bound: one thread, see curate.lm.train)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def step_tokens(self) -> int:
        return self.seq_len * self.batch_size

    def eval_points(self, upto: int) -> list[int]:
        """Token counts (whole steps) at which held-out loss is measured, up to ``upto``."""
        pts = {max(1, round(f * self.budget / self.step_tokens)) * self.step_tokens for f in self.eval_fractions}
        return sorted(p for p in pts if p <= upto)

    @property
    def random_tokens(self) -> int:
        return int(round(self.random_reach * self.budget / self.step_tokens)) * self.step_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DEMO_RECIPE = FeatureRecipe(
    reference={"name": "tiny-lm", "config": "micro", "tokens": 1_000_000},
    proxies={"name": "proxy", "config": "micro", "tokens": 100_000, "seeds": 2},
    # the demo's PreSelect family (flows/demo.py): six members of different sizes, seeds and slices
    preselect={"members": [{"shape": member_shape(h, n), "tokens": t, "seed": i, "slice": i % 3}
                           for i, (h, n, t) in enumerate([(64, 2, 100_000), (64, 2, 200_000), (96, 2, 200_000),
                                                          (96, 3, 300_000), (128, 2, 300_000), (128, 3, 400_000)])],
               "sample_docs": 1000, "target_docs": 200, "max_chars": 600},
)

_TINY_SHAPE = {"seq_len": 64, "batch_size": 8, "lr": 1e-2}
_TINY_RECIPE = FeatureRecipe(
    reference={"name": "tiny-lm", "config": NANO, "tokens": 24_576, **_TINY_SHAPE},
    proxies={"name": "proxy", "config": NANO, "tokens": 8_192, "seeds": 2, **_TINY_SHAPE},
    # a narrow spread of training tokens: on a 480-document pool, 4k-32k made 57% of documents "perfect"
    # (refused as degenerate) and four equal members left too few; 6k-10k gave 42%
    preselect={"members": [{"shape": NANO, "tokens": t, "seed": i, "slice": i % 3, **_TINY_SHAPE}
                           for i, t in enumerate([6_144, 8_192, 8_192, 10_240])],
               "sample_docs": 200, "target_docs": 40, "max_chars": 400},
    perplexity_max_tokens=128, el2n_max_tokens=64,
)

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny", budget=16_384, random_reach=2.0, eval_fractions=(0.25, 0.5, 1.0, 1.5, 2.0), random_seeds=2,
        model=NANO, seq_len=64, batch_size=8, lr=1e-2, warmup_steps=4, mix_batches=4, eval_tokens=4_096,
        mates_stages=2, mates_probes=12, mates_reference_docs=8, mates_chunk_tokens=32, anneal_fraction=0.2,
        features=_TINY_RECIPE, pool_docs=480, heldout_docs=60, max_chars=1_000),
    "default": Scale(
        name="default", budget=1_228_800, random_reach=2.0,
        eval_fractions=(1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 1.0, 1.5, 2.0), random_seeds=2,
        model=MICRO, seq_len=128, batch_size=16, lr=5e-3, warmup_steps=50, mix_batches=50, eval_tokens=65_536,
        mates_stages=4, mates_probes=150, mates_reference_docs=64, mates_chunk_tokens=64, anneal_fraction=0.2,
        features=_DEMO_RECIPE),
    "large": Scale(
        name="large", budget=3_686_400, random_reach=2.0,
        eval_fractions=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 1.0, 1.5, 2.0), random_seeds=3,
        model=MICRO, seq_len=128, batch_size=16, lr=5e-3, warmup_steps=50, mix_batches=50, eval_tokens=131_072,
        mates_stages=6, mates_probes=300, mates_reference_docs=64, mates_chunk_tokens=128, anneal_fraction=0.2,
        features=_DEMO_RECIPE),
}


def get_scale(name: str, *, budget: int | None = None) -> Scale:
    """A scale by name, optionally with another token budget (eval points scale with it)."""
    if name not in SCALES:
        raise ConfigError(f"unknown experiment scale {name!r}: choose one of {', '.join(SCALES)}")
    scale = SCALES[name]
    if budget is not None:
        if budget < 4 * scale.step_tokens:
            raise ConfigError(f"budget {budget:,} is under 4 training steps of {scale.step_tokens:,} tokens "
                              f"at scale {name!r}")
        scale = replace(scale, budget=int(budget) // scale.step_tokens * scale.step_tokens)  # whole steps
    return scale
