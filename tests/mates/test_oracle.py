"""Oracle probes on a real proxy LM: the change in reference loss is recomputed by hand, and restore is exact."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from curate.errors import ConfigError
from curate.lm.load import LoadedLM, load_causal_lm
from curate.lm.score import score_texts
from curate.mates.oracle import Prober, ProbeSettings, moments_from, probe_oracle


@pytest.fixture(scope="module")
def lm(mates_store):
    return load_causal_lm(mates_store.path("models/proxy"))


@pytest.fixture(scope="module")
def texts(real_docs):
    by = {}
    for d in real_docs:
        by.setdefault(d["domain"], []).append(d["text"])
    return {"reference": by["encyclopedic"][:8], "probes": [by["code"][0], by["books"][0], by["multilingual"][0]]}


def _reference_loss(model, encoder, texts: list[str], ctx: int) -> float:
    """Mean NLL per token through the perplexity scorer's path (not the prober's)."""
    res = score_texts(LoadedLM(model, encoder, None, ctx), texts, max_tokens=ctx - 1, window=ctx, stride=ctx // 2,
                      batch_tokens=4096)
    return float(res.nll_sum.sum() / res.n_tokens.sum())


def _adamw_step_by_hand(model, ids: torch.Tensor, s: ProbeSettings) -> None:
    """One AdamW step from zero moments, written out: clip, m, v, bias correction, decoupled decay."""
    params = list(model.parameters())
    loss = model(input_ids=ids, labels=ids).loss
    grads = torch.autograd.grad(loss, params)
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, s.grad_clip / (float(norm) + 1e-6))
    b1, b2 = s.betas
    with torch.no_grad():
        for p, g in zip(params, grads):
            g = g * scale
            m_hat = ((1 - b1) * g) / (1 - b1)
            v_hat = ((1 - b2) * g * g) / (1 - b2)
            decay = s.weight_decay if p.dim() >= 2 else 0.0
            p.mul_(1 - s.lr * decay)
            p.sub_(s.lr * m_hat / (v_hat.sqrt() + s.eps))


def test_probe_changes_reference_loss_by_the_amount_recomputed_by_hand(lm, texts):
    s = ProbeSettings()
    prober = Prober(lm.model, lm.encoder, texts["reference"], s, context=lm.context)
    ref = copy.deepcopy(lm.model).eval()
    pre = _reference_loss(ref, lm.encoder, texts["reference"], lm.context)
    assert prober.pre_loss == pytest.approx(pre, abs=1e-5)
    for text in texts["probes"]:
        post, n_tokens = prober.probe(text)
        by_hand = copy.deepcopy(lm.model).eval()
        raw = list(text.encode("utf-8"))[: lm.context - 1]
        _adamw_step_by_hand(by_hand, torch.tensor([[lm.encoder.bos_id, *raw]]), s)
        expect = _reference_loss(by_hand, lm.encoder, texts["reference"], lm.context)
        assert n_tokens == len(raw)
        assert abs(post - pre) > 1e-4  # a real change, well above float noise
        assert post - prober.pre_loss == pytest.approx(expect - pre, abs=2e-5)


def _trained_with_optimizer(lm, text: str):
    model = copy.deepcopy(lm.model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    ids = torch.tensor([[lm.encoder.bos_id, *list(text.encode())[:100]]])
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def test_restore_is_bit_exact_for_weights_and_optimizer_moments(lm, texts):
    model, opt = _trained_with_optimizer(lm, texts["reference"][0])
    caller_w = {k: v.clone() for k, v in model.state_dict().items()}
    caller_opt = copy.deepcopy(opt.state_dict())
    prober = Prober(model, lm.encoder, texts["reference"], moments=moments_from(opt, model), context=lm.context)
    assert prober.moments == "optimizer"
    w0 = {k: v.clone() for k, v in prober.model.state_dict().items()}
    s0 = copy.deepcopy(prober.opt.state_dict())
    assert s0["state"], "the probe optimizer starts from the job's moments"

    first = prober.probe(texts["probes"][0])
    prober.step(prober.probe_ids(texts["probes"][1]))  # a step without restore does move the weights
    assert any(not torch.equal(w0[k], v) for k, v in prober.model.state_dict().items())
    prober.restore()
    prober.probe(texts["probes"][2])

    for k, v in prober.model.state_dict().items():
        assert torch.equal(w0[k], v), k
    s1 = prober.opt.state_dict()
    assert s1["state"].keys() == s0["state"].keys()
    for i, st in s0["state"].items():
        for key, val in st.items():
            assert torch.equal(val, s1["state"][i][key]), (i, key)
    assert prober.probe(texts["probes"][0]) == first  # same state, same number, bit for bit
    # the job's own model and optimizer were never touched
    assert all(torch.equal(caller_w[k], v) for k, v in model.state_dict().items())
    for i, st in caller_opt["state"].items():
        assert all(torch.equal(v, opt.state_dict()["state"][i][k]) for k, v in st.items())


def test_moments_change_the_step_and_zero_moments_are_the_default(lm, texts):
    model, opt = _trained_with_optimizer(lm, texts["reference"][0])
    zero = Prober(model, lm.encoder, texts["reference"], context=lm.context)
    live = Prober(model, lm.encoder, texts["reference"], moments=moments_from(opt, model), context=lm.context)
    assert zero.moments == "zero" and not zero.opt.state
    assert zero.pre_loss == live.pre_loss
    assert zero.probe(texts["probes"][0])[0] != live.probe(texts["probes"][0])[0]
    sgd = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    ids = torch.tensor([[lm.encoder.bos_id, 65, 66, 67]])
    model(input_ids=ids, labels=ids).loss.backward()
    sgd.step()
    with pytest.raises(ConfigError, match="no Adam moments"):
        moments_from(sgd, model)
    with pytest.raises(ConfigError, match="reference set is empty"):
        Prober(model, lm.encoder, [], context=lm.context)


def test_probe_oracle_reports_loss_change_and_time(lm, texts):
    res = probe_oracle(lm.model, lm.encoder, texts["reference"], texts["probes"] + [""], context=lm.context)
    assert np.allclose(res.delta[:3], res.post_loss[:3] - res.pre_loss)
    assert np.isnan(res.post_loss[3]) and res.n_tokens[3] == 0  # an empty text cannot be stepped on
    assert res.seconds > 0 and res.seconds_per_probe == pytest.approx(res.seconds / 4)


@pytest.mark.slow
def test_ray_workers_give_the_in_process_numbers(lm, texts):
    from curate.execute import init_ray

    ray = init_ray(num_cpus=2)
    try:
        probes = texts["probes"] * 3
        one = probe_oracle(lm.model, lm.encoder, texts["reference"], probes, context=lm.context)
        two = probe_oracle(lm.model, lm.encoder, texts["reference"], probes, context=lm.context, workers=2)
    finally:
        ray.shutdown()
    assert two.workers == 2
    assert np.allclose(one.post_loss, two.post_loss, atol=1e-6)
