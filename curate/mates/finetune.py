"""Fine-tune the influence encoder with a linear head (the paper's recipe): MSE, best epoch by held-out Spearman."""

from __future__ import annotations

from typing import Any

import numpy as np

from curate.errors import ConfigError
from curate.mates.encoder import TextEncoder
from curate.mates.stats import spearman


def fit_finetune(encoder: TextEncoder, texts: list[str], y: np.ndarray, *, valid_fraction: float = 0.1,
                 epochs: int = 5, lr: float = 5e-5, head_lr: float = 1e-3, batch_size: int = 8, seed: int = 0,
                 progress: bool | None = False) -> dict[str, Any]:
    """Train ``encoder`` + a linear head with MSE; keep the epoch with the best held-out Spearman (in place)."""
    import copy

    import torch

    from curate.progress import progress as progress_bar

    n = len(texts)
    n_valid = max(3, int(round(valid_fraction * n)))
    if n - n_valid < 2:
        raise ConfigError(f"{n} probes are too few to fine-tune with a held-out split")
    perm = np.random.default_rng(seed).permutation(n)
    valid, train = perm[:n_valid], perm[n_valid:]
    torch.manual_seed(seed)
    head = torch.nn.Linear(encoder.dim, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.AdamW([{"params": encoder.model.parameters(), "lr": lr},
                             {"params": head.parameters(), "lr": head_lr}], weight_decay=0.01)
    target = torch.tensor(y, dtype=torch.float32)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"spearman": -np.inf}
    rng = np.random.default_rng(seed + 1)

    def predict(idx: np.ndarray) -> np.ndarray:
        encoder.model.eval()
        with torch.inference_mode():
            out = head(encoder.embed([texts[i] for i in idx])).squeeze(-1)
        return out.double().numpy()

    with progress_bar("mates fine-tune", total=epochs * len(train), unit="docs", enabled=progress) as advance:
        for epoch in range(1, epochs + 1):
            encoder.model.train()
            order = rng.permutation(train)
            losses = []
            for lo in range(0, len(order), batch_size):
                idx = order[lo: lo + batch_size]
                pred = head(encoder.embed([texts[i] for i in idx], grad=True)).squeeze(-1)
                loss = torch.nn.functional.mse_loss(pred, target[idx])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                advance(len(idx))
            rho = spearman(predict(valid), y[valid])
            history.append({"epoch": epoch, "train_mse": float(np.mean(losses)), "valid_spearman": rho})
            if np.isfinite(rho) and rho > best["spearman"]:
                best = {"spearman": rho, "epoch": epoch, "encoder": copy.deepcopy(encoder.model.state_dict()),
                        "head": copy.deepcopy(head.state_dict())}
    if "encoder" in best:
        encoder.model.load_state_dict(best["encoder"])
        head.load_state_dict(best["head"])
    encoder.model.eval()
    heldout = np.full(n, np.nan)
    heldout[valid] = predict(valid)
    return {"w": head.weight.detach().double().numpy()[0], "b": float(head.bias.detach()),
            "x_mean": np.zeros(encoder.dim), "x_std": np.ones(encoder.dim), "heldout": heldout,
            "best_epoch": best.get("epoch"), "history": history, "train_pred": predict(train), "train_idx": train}
