"""Experiment scales: tokens per method, the LM, its schedule, seeds, evaluation, and how features are made.

One :class:`Scale` fixes everything that makes two runs comparable: the token budget
every method gets, the LM (shape, context, batch, learning rate, warmup, and the
cooldown each evaluation point decays over), the seeds, how far random's curve
reaches, the evaluation cut per document, MATES' stage sizes, and how features are
made when the store lacks them. ``tiny`` runs in the tests (a few hundred documents,
seconds per run); ``default`` is the published experiment (the whole embedded pool);
``large`` gives every run 1.5x the tokens, MATES six stages of 300 probes, and a mid-budget point.
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
    """How the features and models the methods read are made when the store lacks them.

    ``reference``/``proxies``/``preselect`` are the demo's (``curate demo``: same names and sizes, so a demo
    store already has the perplexity and EL2N tables). ``family`` is the target-aware PreSelect family:
    members trained on different domain mixtures, shared by every target's selector. ``target_lm``: the
    closest-to-target baseline's LM, trained on a target's reference half.
    """

    reference: dict[str, Any]  # train_lm arguments of the perplexity reference LM (with "name")
    proxies: dict[str, Any]  # train_lm arguments of the EL2N proxies (with "name", "seeds")
    family: dict[str, Any]  # curate.preselect.train arguments of every target's selector (members, family, ...)
    target_lm: dict[str, Any]  # train_lm arguments of a target's LM
    perplexity_max_tokens: int = 256
    el2n_max_tokens: int = 128


@dataclass(frozen=True)
class Scale:
    """Everything one experiment holds fixed across methods."""

    name: str
    budget: int  # training tokens every method gets
    seeds: int  # every run trains with seeds seed, seed+1, ... (data windows and initialisation)
    random_points: tuple[float, ...]  # random's curve: evaluation points as multiples of the budget
    method_points: tuple[float, ...]  # every other method's evaluation points (the budget included)
    model: dict[str, Any]  # LlamaConfig shape fields
    seq_len: int
    batch_size: int
    lr: float
    warmup_steps: int
    cooldown: float  # each evaluation point decays over this share of its steps (and two-phase's last phase)
    eval_max_bytes: int  # every evaluation document is cut to this many bytes
    mates_stages: int  # stage 0 trains on random windows, each later stage on MATES' selection
    mates_probes: int
    mates_reference_docs: int
    mates_chunk_tokens: int  # MiniLM tokens read per document (one chunk)
    features: FeatureRecipe
    overlap_threshold: float = 0.5  # word 5-gram Jaccard from which a pool document counts as a target copy
    pool_docs: int | None = None  # an empty store gets this many embedded pool documents (None: all)
    heldout_docs: int | None = None  # ... and this many held-out ones (None: all)
    max_chars: int | None = None  # ... each cut to this many characters (None: whole)
    threads: int = 1  # torch threads per run (tiny LMs are overhead-bound: one thread per run)
    workers: int = 2  # runs trained at once, each in its own process
    #: random runs this many seeds when more than ``seeds``: its spread is the noise gate and half of every
    #: multiplier's interval, and a 3-seed std is itself uncertain by about half
    random_seeds: int = 0
    #: preselect, preselect-strat and closest keep this share of the pool's characters (top by their score)
    keep_share: float = 0.3
    extra: dict[str, Any] = field(default_factory=dict)

    def seeds_of(self, method: str) -> int:
        """How many seeds ``method`` runs with."""
        return max(self.seeds, self.random_seeds) if method == "random" else self.seeds

    @property
    def step_tokens(self) -> int:
        return self.seq_len * self.batch_size

    @property
    def budget_steps(self) -> int:
        return self.budget // self.step_tokens

    def points(self, multiples: tuple[float, ...]) -> list[int]:
        """Evaluation points in steps for budget multiples (whole steps, at least one)."""
        return sorted({max(1, round(m * self.budget_steps)) for m in multiples})

    @property
    def random_tokens(self) -> int:
        return max(self.points(self.random_points)) * self.step_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _family(members: list[tuple[int, int, int, str | None]], **extra: Any) -> dict[str, Any]:
    """A target-aware family: (hidden, layers, tokens, where) per member, trained on its own domain mixture."""
    return {"family": "expfam", "members": [
        {"shape": member_shape(h, n), "tokens": t, "seed": 100 + i, **({"where": w} if w else {})}
        for i, (h, n, t, w) in enumerate(members)], **extra}


_MATH_CODE = "domain IN ('math', 'code')"
_PROSE = "domain IN ('books', 'encyclopedic')"
_DEFAULT_RECIPE = FeatureRecipe(
    reference={"name": "tiny-lm", "config": "micro", "tokens": 1_000_000},
    proxies={"name": "proxy", "config": "micro", "tokens": 100_000, "seeds": 2},
    # six members of one shape and one token budget that differ only in their domain mixture, with graded
    # overlaps (math+code < technical < everything < ...), so a target's ranking follows how much of its
    # kind of text each member saw, and a document is positive when its losses follow that order. A larger
    # general member (the previous family) won every target it did not specialise on, so the positives were
    # "text every extra token helps" (multilingual), whatever the target.
    family=_family([(64, 2, 1_200_000, w) for w in (
        None, _MATH_CODE, _PROSE, "domain IN ('web', 'forum', 'docs')",
        "domain IN ('multilingual', 'docs', 'code')", "domain IN ('books', 'encyclopedic', 'web', 'forum')")],
                   family_eval_sql="SELECT text FROM docs WHERE corpus = 'heldout'",
                   sample_docs=2000, target_docs=400, max_chars=1000,
                   # 2,000 scored documents, not millions (README "Selection experiment"): positives the top 10%
                   # by loss correlation with the target (perfect ones were 83 code and 17 math for math-code),
                   # every other sampled document a negative (the lowest strengths were one kind of text, all
                   # prose for math-code, so man pages in other languages ranked as code), 50 fastText epochs
                   # (at the paper's 3, P(positive) was 0.50 +- 0.001 on every document)
                   positive_share=0.1, negatives="rest", fasttext={"epoch": 50}),
    target_lm={"config": "micro", "tokens": 400_000},
)

_TINY_SHAPE = {"seq_len": 64, "batch_size": 8, "lr": 1e-2}
_TINY_RECIPE = FeatureRecipe(
    reference={"name": "tiny-lm", "config": NANO, "tokens": 24_576, **_TINY_SHAPE},
    proxies={"name": "proxy", "config": NANO, "tokens": 8_192, "seeds": 2, **_TINY_SHAPE},
    family={"family": "expfam", "members": [
        {"shape": NANO, "tokens": t, "seed": 100 + i, **_TINY_SHAPE, **({"where": w} if w else {})}
        for i, (t, w) in enumerate([(8_192, None), (12_288, None), (8_192, _MATH_CODE), (8_192, _PROSE)])],
        "family_eval_sql": "SELECT text FROM docs WHERE corpus = 'heldout'",
        "sample_docs": 480, "target_docs": 20, "max_chars": 400, "min_positives": 3,
        "positive_share": 0.1, "negatives": "rest"},
    target_lm={"config": NANO, "tokens": 8_192, **_TINY_SHAPE},
    perplexity_max_tokens=128, el2n_max_tokens=64,
)

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny", budget=16_384, seeds=2, random_points=(0.5, 1.0, 2.0), method_points=(1.0,),
        model=NANO, seq_len=64, batch_size=8, lr=1e-2, warmup_steps=4, cooldown=0.2, eval_max_bytes=256,
        mates_stages=2, mates_probes=12, mates_reference_docs=8, mates_chunk_tokens=32,
        features=_TINY_RECIPE, pool_docs=480, heldout_docs=160, max_chars=1_000, workers=1),
    "default": Scale(
        name="default", budget=2_457_600, seeds=3, random_points=(0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        method_points=(1.0,), model=MICRO, seq_len=128, batch_size=16, lr=2e-3, warmup_steps=50, cooldown=0.2,
        eval_max_bytes=512, mates_stages=4, mates_probes=150, mates_reference_docs=64, mates_chunk_tokens=64,
        features=_DEFAULT_RECIPE, random_seeds=5),
    "large": Scale(
        name="large", budget=3_686_400, seeds=3, random_points=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        method_points=(0.5, 1.0), model=MICRO, seq_len=128, batch_size=16, lr=2e-3, warmup_steps=50,
        cooldown=0.2, eval_max_bytes=1024, mates_stages=6, mates_probes=300, mates_reference_docs=64,
        mates_chunk_tokens=128, features=_DEFAULT_RECIPE, random_seeds=5),
}


def get_scale(name: str, *, budget: int | None = None, seeds: int | None = None,
              keep_share: float | None = None) -> Scale:
    """A scale by name, optionally with another token budget (eval points scale with it), seed count, or share
    of the pool that the top-share methods keep."""
    if name not in SCALES:
        raise ConfigError(f"unknown experiment scale {name!r}: choose one of {', '.join(SCALES)}")
    scale = SCALES[name]
    if budget is not None:
        if budget < 10 * scale.step_tokens:
            raise ConfigError(f"budget {budget:,} is under 10 training steps of {scale.step_tokens:,} tokens "
                              f"at scale {name!r}")
        scale = replace(scale, budget=int(budget) // scale.step_tokens * scale.step_tokens)  # whole steps
    if seeds is not None:
        if seeds < 1:
            raise ConfigError(f"seeds must be at least 1, got {seeds}")
        scale = replace(scale, seeds=int(seeds))
    if keep_share is not None:
        if not 0 < keep_share <= 1:
            raise ConfigError(f"keep_share (--share) must be in (0, 1], got {keep_share}")
        scale = replace(scale, keep_share=float(keep_share))
    return scale
