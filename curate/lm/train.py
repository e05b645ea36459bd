"""``train_lm``: a tiny Llama-style reference LM trained on the store, saved under ``models/<name>/``.

Byte-level tokenizer, fixed seed, AdamW with warmup + cosine (or warmup-stable-decay, or
constant), a plain torch loop on CPU threads, token batches streamed from DuckDB (or from a
caller's data source that may look at the live model, as a staged MATES selection does). The model is
saved in Hugging Face format (``save_pretrained`` + tokenizer) with ``card.json``:
parameters, tokens seen, held-out loss and bits per byte, seed, config, wall time and
the SHA-256 of the weights. The same request on the same data gives the same weights.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.store import Store

DEFAULT_SQL = "SELECT text FROM docs WHERE corpus <> 'heldout'"
HELDOUT_SQL = "SELECT text FROM docs WHERE corpus = 'heldout'"
CARD_FILE = "card.json"
SPLIT_MOD = 50  # without a held-out corpus, 1 in 50 documents (2%, by text hash) is held out
ONE_THREAD_PARAMS = 2_000_000  # below this, train on one thread by default (see train_lm)
SCHEDULES = ("cosine", "wsd", "constant")
#: a data source instead of ``sql``: called once with (model, optimizer) before the first step, it yields
#: (batch_size, seq_len) int64 token batches; it runs between steps, so it sees the live model
Batches = Callable[[Any, Any], Iterator[Any]]

#: Llama shapes (byte vocabulary, tied embeddings) plus training defaults sized for 2 CPU cores.
PRESETS: dict[str, dict[str, Any]] = {
    # ~0.1M params: what the demo trains, so scoring 27k documents stays a matter of seconds on 2 cores
    "micro": {"model": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                        "intermediate_size": 192},
              "train": {"seq_len": 128, "batch_size": 8, "tokens": 1_000_000, "lr": 1e-2}},
    "tiny": {"model": {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
                       "intermediate_size": 384},
             "train": {"seq_len": 256, "batch_size": 16, "tokens": 2_000_000, "lr": 3e-3}},
    "small": {"model": {"hidden_size": 320, "num_hidden_layers": 8, "num_attention_heads": 5,
                        "intermediate_size": 864},
              "train": {"seq_len": 256, "batch_size": 16, "tokens": 1_000_000, "lr": 1.5e-3}},
    "medium": {"model": {"hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8,
                         "intermediate_size": 1376},
               "train": {"seq_len": 256, "batch_size": 16, "tokens": 1_000_000, "lr": 1e-3}},
}


@dataclass
class LMCard:
    """What a reference LM is, what it saw, and how well it does on held-out text."""

    name: str
    params: int
    tokens_seen: int
    steps: int
    heldout_loss: float  # mean nats per token, scored like the perplexity scorer does
    heldout_bits_per_byte: float
    heldout_docs: int
    heldout_tokens: int
    train_loss: float  # mean of the last 10% of steps
    seed: int
    preset: str | None
    config: dict[str, Any]
    training: dict[str, Any]
    tokenizer: str
    weights_sha256: str
    wall_seconds: float
    tokens_per_second: float
    threads: int
    created: str
    versions: dict[str, str] = field(default_factory=dict)
    #: held-out loss during training (``eval_at``): [{"tokens", "loss", "bits_per_byte"}, ...]
    curve: list[dict[str, float]] = field(default_factory=list)


def seed_runs(name: str, seed: int, seeds: int) -> list[tuple[str, int]]:
    """(model name, seed) for one model, or for a family ``<name>-s0``, ``-s1``, ... with seeds
    ``seed``, ``seed+1``, ... (what ``curate.lm.load.store_lm_paths`` finds by name)."""
    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    return [(name, seed)] if seeds == 1 else [(f"{name}-s{i}", seed + i) for i in range(seeds)]


def _model_config(config: str | dict[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(preset name, model shape, training defaults) from a preset name or an explicit dict."""
    if isinstance(config, str):
        if config not in PRESETS:
            raise ConfigError(f"unknown LM preset {config!r}: choose one of {', '.join(PRESETS)} or pass a dict")
        return config, dict(PRESETS[config]["model"]), dict(PRESETS[config]["train"])
    return None, dict(config), dict(PRESETS["tiny"]["train"])


def build_model(shape: dict[str, Any], seq_len: int, seed: int) -> Any:
    """A freshly initialised LlamaForCausalLM over the byte vocabulary (seeded)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from curate.lm.tokenizer import BOS_ID, EOS_ID, PAD_ID, VOCAB_SIZE

    cfg = LlamaConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=seq_len, tie_word_embeddings=True,
                      bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, rope_theta=10000.0,
                      attention_dropout=0.0, **shape)
    cfg.num_key_value_heads = shape.get("num_key_value_heads", cfg.num_attention_heads)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def lr_at(step: int, steps: int, lr: float, warmup: int, schedule: str, min_ratio: float = 0.1) -> float:
    """Learning rate at ``step``: linear warmup, then cosine to ``min_ratio``, WSD (flat, last 20% linear decay)
    or constant (every step after warmup at ``lr``: a run stopped early is the same as a shorter run)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        t = (step - warmup) / max(1, steps - warmup)
        return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))
    decay_start = int(steps * 0.8)
    if step < decay_start:
        return lr
    t = (step - decay_start) / max(1, steps - decay_start)
    return lr * (1 - (1 - min_ratio) * t)


def _split_sql(st: Store, sql: str, eval_sql: str | None) -> tuple[str, str, str]:
    """(train SQL, eval SQL, how the held-out set was chosen)."""
    if eval_sql:
        return sql, eval_sql, "eval_sql"
    if "heldout" in st.corpora() and sql == DEFAULT_SQL:
        return sql, HELDOUT_SQL, "corpus 'heldout'"
    key = f"hash(text || '#split') % {SPLIT_MOD}"
    return (f"SELECT text FROM ({sql}) AS t WHERE {key} <> 0",
            f"SELECT text FROM ({sql}) AS t WHERE {key} = 0", f"hashed 1/{SPLIT_MOD} of the training SQL")


def _same_request(old: dict[str, Any] | None, preset: str | None, shape: dict[str, Any], training: dict[str, Any],
                  seed: int) -> bool:
    return bool(old) and old.get("config", {}).get("shape") == shape and old.get("preset") == preset \
        and old.get("training") == training and old.get("seed") == seed


def train_lm(
    store: Store | str,
    name: str,
    *,
    config: str | dict[str, Any] = "tiny",
    sql: str = DEFAULT_SQL,
    eval_sql: str | None = None,
    tokens: int | None = None,
    seq_len: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    schedule: str = "cosine",
    warmup: int | None = None,
    weight_decay: float = 0.1,
    seed: int = 0,
    eval_tokens: int = 65_536,
    eval_at: list[int] | None = None,
    batches: Batches | None = None,
    threads: int | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> LMCard:
    """Train a reference LM on ``sql`` (a query with a ``text`` column) and save it as ``models/<name>/``.

    ``config`` is a preset (``micro`` ~0.1M params, ``tiny`` ~1M, ``small`` ~10M, ``medium`` ~25M) or a dict of
    ``LlamaConfig`` shape fields. ``tokens``/``seq_len``/``batch_size``/``lr`` default to the preset's.
    The held-out set is ``eval_sql``, else corpus ``heldout`` (with the default SQL), else a hashed
    2% of the training SQL. A model already trained by the same request is returned unless ``force``.

    ``eval_at``: token counts at which the held-out loss is also measured during training (after the
    first step reaching each), kept in ``card.curve`` with the final one; measuring never changes the
    weights. ``batches``: a data source used instead of ``sql`` (see :data:`Batches`); such a run is
    never reused from an earlier card, since its data cannot be compared.
    """
    import torch

    from curate.lm.data import token_rows
    from curate.lm.load import weights_sha256
    from curate.lm.tokenizer import Encoder
    from curate.progress import progress as progress_bar
    from curate.query import connect

    st = Store.of(store)
    model_dir = st.models_dir(name)
    if schedule not in SCHEDULES:
        raise ConfigError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")
    preset, shape, defaults = _model_config(config)
    seq_len = seq_len or defaults["seq_len"]
    batch_size = batch_size or defaults["batch_size"]
    tokens = tokens or defaults["tokens"]
    lr = lr or defaults["lr"]
    steps = max(1, tokens // (seq_len * batch_size))
    warmup = warmup if warmup is not None else min(200, max(1, steps // 20))
    train_sql, held_sql, held_how = _split_sql(st, sql, eval_sql)
    training = {"sql": sql, "train_sql": train_sql, "eval_sql": held_sql, "heldout": held_how, "tokens": tokens,
                "seq_len": seq_len, "batch_size": batch_size, "lr": lr, "schedule": schedule, "warmup": warmup,
                "weight_decay": weight_decay, "optimizer": "AdamW(0.9, 0.95), clip 1.0", "eval_tokens": eval_tokens}
    if eval_at:  # only when asked: the requests of existing cards stay the same
        training["eval_at"] = sorted({int(t) for t in eval_at})
    if batches is not None:
        training["train_sql"] = None
        training["data"] = f"batches from {getattr(batches, '__qualname__', type(batches).__name__)}"
    old = st.read_json(f"{model_dir}/{CARD_FILE}")
    if not force and batches is None and _same_request(old, preset, shape, training, seed) and st.is_local:
        try:
            if weights_sha256(st.path(model_dir)) == old["weights_sha256"]:
                return LMCard(**old)
        except ConfigError:
            pass

    model = build_model(shape, seq_len, seed)
    n_params = sum(p.numel() for p in model.parameters())
    # a model this small is bound by per-op overhead: a second thread buys little when the machine is
    # idle and collapses throughput 5-20x when another process wants the core (measured: micro preset,
    # 15.7k tokens/s on 1 thread vs 0.6-3k on 2 under load)
    threads = threads or (1 if n_params < ONE_THREAD_PARAMS else os.cpu_count() or 1)
    torch.set_num_threads(threads)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95), eps=1e-8)
    con = connect(st)
    encoder = Encoder(None)
    held_texts = heldout_texts(con, held_sql, seq_len, eval_tokens)  # read before the training stream opens
    rows = batches(model, opt) if batches is not None else \
        token_rows(con, train_sql, encoder, seq_len=seq_len, batch_size=batch_size, seed=seed)
    per_step = seq_len * batch_size
    marks = sorted({max(1, -(-int(t) // per_step)) for t in (eval_at or []) if 0 < int(t) <= steps * per_step})
    curve: list[dict[str, float]] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    eval_seconds = 0.0
    model.train()
    with progress_bar(f"train-lm {name}", total=steps * per_step, unit="tokens", enabled=progress) as advance:
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, lr, warmup, schedule)
            x = torch.from_numpy(next(rows))
            loss = model(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            advance(x.numel())
            if marks and step + 1 == marks[0] and step + 1 < steps:
                t_eval = time.perf_counter()
                curve.append(_curve_point((step + 1) * per_step, model, encoder, held_texts, seq_len))
                model.train()
                marks.pop(0)
                eval_seconds += time.perf_counter() - t_eval
    train_seconds = time.perf_counter() - t0 - eval_seconds
    if hasattr(rows, "close"):
        rows.close()  # releases the DuckDB stream
    held = evaluate_texts(model, encoder, held_texts, seq_len)
    if eval_at:
        curve.append(_curve_point(steps * per_step, model, encoder, held_texts, seq_len, held))
    wall = time.perf_counter() - t0
    tail = losses[-max(1, len(losses) // 10):]
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        _save(model, Path(tmp))
        card = LMCard(
            name=name, params=n_params, tokens_seen=steps * seq_len * batch_size, steps=steps,
            heldout_loss=round(held["loss"], 6), heldout_bits_per_byte=round(held["bpb"], 6),
            heldout_docs=held["docs"], heldout_tokens=held["tokens"], train_loss=round(sum(tail) / len(tail), 6),
            seed=seed, preset=preset, config={"architecture": "LlamaForCausalLM", "shape": shape,
                                              "vocab_size": model.config.vocab_size},
            training=training, tokenizer="bytes", weights_sha256=weights_sha256(tmp), wall_seconds=round(wall, 2),
            tokens_per_second=round(steps * seq_len * batch_size / train_seconds, 1), threads=threads,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            versions={"torch": torch.__version__, "transformers": transformers.__version__}, curve=curve,
        )
        for f in sorted(Path(tmp).iterdir()):
            st.write_bytes(f"{model_dir}/{f.name}", f.read_bytes())
    st.write_json(f"{model_dir}/{CARD_FILE}", asdict(card))  # written last: a card means a complete model
    return card


def _save(model: Any, directory: Path) -> None:
    from curate.lm.tokenizer import save_byte_tokenizer

    model.save_pretrained(str(directory), safe_serialization=True)
    save_byte_tokenizer(directory)


def heldout_texts(con: Any, sql: str, seq_len: int, eval_tokens: int) -> list[str]:
    """The held-out documents: in a fixed order until their capped lengths reach ``eval_tokens``."""
    from curate.lm.data import ordered_texts

    texts, budget = [], 0
    per_doc = seq_len * 4  # cap each document so the held-out set spans many documents
    for text in ordered_texts(con, sql, seed=0):
        texts.append(text)
        budget += min(len(text), per_doc)
        if budget >= eval_tokens:
            break
    if not texts:
        raise ConfigError(f"the held-out SQL returned no text: {sql}")
    return texts


def evaluate_texts(model: Any, encoder: Any, texts: list[str], seq_len: int) -> dict[str, Any]:
    """Held-out loss and bits per byte, scored exactly as the perplexity scorer scores documents
    (each document capped at 4 windows); leaves the model in eval mode."""
    from curate.lm.load import LoadedLM
    from curate.lm.score import score_texts

    model.eval()
    per_doc = seq_len * 4
    lm = LoadedLM(model, encoder, Path("."), seq_len)
    res = score_texts(lm, texts, max_tokens=per_doc, window=seq_len, stride=seq_len // 2, batch_tokens=16384)
    nll, n, nb = float(res.nll_sum.sum()), int(res.n_tokens.sum()), int(res.n_bytes.sum())
    return {"loss": nll / max(n, 1), "bpb": nll / math.log(2) / max(nb, 1), "docs": len(texts), "tokens": n}


def _curve_point(tokens: int, model: Any, encoder: Any, texts: list[str], seq_len: int,
                 held: dict[str, Any] | None = None) -> dict[str, float]:
    held = held or evaluate_texts(model, encoder, texts, seq_len)
    return {"tokens": tokens, "loss": round(held["loss"], 6), "bits_per_byte": round(held["bpb"], 6)}
