"""Planning: exact targets, tokens within one document, the repetition cap, shortfalls, determinism."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.mixture import ShortfallError, build_mixture, load_spec, plan_mixture
from curate.mixture.plan import allocate
from tests.mixture._specs import spec_dict


def _uses(plan):
    return plan.con.execute("SELECT phase, domain, doc_id, epoch, n_tokens FROM plan_occ").fetchall()


def _max_doc(plan) -> dict[str, int]:
    return dict(plan.con.execute("SELECT domain, max(n) FROM plan_pool GROUP BY 1").fetchall())


def check_invariants(plan, spec) -> None:
    big = _max_doc(plan)
    assert sum(c.target for c in plan.cells) == spec.tokens  # targets are exact integers
    for c in plan.cells:
        if c.shortfall == 0:
            assert abs(c.tokens - c.target) <= big.get(c.domain, 0) / 2 + 1, c  # within one document
        else:
            assert c.tokens == c.capacity  # short: every remaining slot is taken
    rows = _uses(plan)
    per_doc: dict[str, list[int]] = {}
    for _p, _d, doc, epoch, _n in rows:
        per_doc.setdefault(doc, []).append(epoch)
    for epochs in per_doc.values():  # epochs number a document's uses 1, 2, ... over the whole mixture
        assert sorted(epochs) == list(range(1, len(epochs) + 1))
        assert len(epochs) <= spec.max_epochs


def test_targets_tokens_and_cap(mix_store):
    spec = load_spec(spec_dict())
    plan = plan_mixture(mix_store, spec)
    check_invariants(plan, spec)
    anneal = {c.domain: c.target for c in plan.cells if c.phase == "anneal"}
    assert anneal == {"math": 16_000, "code": 16_000, "encyclopedic": 8_000}
    assert not plan.shortfalls


def test_repetition_reaches_the_cap_and_spans_phases(mix_store, domain_tokens):
    # encyclopedic supply is small: 2.5 passes in main, the anneal continues with the least-used docs
    enc = domain_tokens["encyclopedic"]
    spec = load_spec(spec_dict(tokens=int(enc * 3.5), max_epochs=4, weights={"encyclopedic": 1.0},
                               phases=[{"name": "main", "fraction": 5 / 7}, {"name": "anneal", "fraction": 2 / 7}]))
    plan = plan_mixture(mix_store, spec)
    check_invariants(plan, spec)
    main, anneal = plan.cells
    assert main.max_epoch == 3 and anneal.max_epoch == 4
    assert not plan.shortfalls


def test_shortfall_names_phase_domain_and_numbers(mix_store, domain_tokens, tmp_path):
    math = domain_tokens["math"]
    d = spec_dict(tokens=1_000_000, max_epochs=2, weights={"web": 0.5, "math": 0.5},
                  phases=[{"name": "main", "fraction": 1.0}])
    spec = load_spec(d)
    plan = plan_mixture(mix_store, spec)
    short = {c.domain: c for c in plan.shortfalls}
    assert short["math"].capacity == 2 * math and short["math"].shortfall == 500_000 - 2 * math
    with pytest.raises(ShortfallError) as exc:
        build_mixture(mix_store, spec)
    msg = str(exc.value)
    assert f"domain 'math': needs 500,000 tokens, supply {math:,} tokens" in msg
    assert f"allows {2 * math:,}; short by {500_000 - 2 * math:,}" in msg and "max_epochs=2" in msg
    assert "--allow-short" in msg
    m = build_mixture(mix_store, spec, allow_short=True, report=False)
    assert m.data["allow_short"] and {s["domain"] for s in m.data["shortfalls"]} == set(short)
    assert m.data["tokens"]["planned"] == plan.tokens


def test_selection_sql_and_phase_filter(mix_store, tmp_path):
    (tmp_path / "long.sql").write_text("-- long docs only\nSELECT doc_id FROM docs WHERE n_bytes >= 1000 -- trailing\n")
    d = spec_dict(select="long.sql", phases=[
        {"name": "main", "fraction": 0.8},
        {"name": "anneal", "fraction": 0.2, "weights": {"math": 0.5, "code": 0.5}, "where": "n_bytes >= 3000"},
    ])
    spec = load_spec(d, base_dir=tmp_path)
    plan = plan_mixture(mix_store, spec)
    sizes = plan.con.execute("SELECT phase, min(n_tokens) FROM plan_occ GROUP BY 1").fetchall()
    assert dict(sizes)["main"] >= 1000 and dict(sizes)["anneal"] >= 3000


def test_seed_changes_the_sample_not_the_counts(mix_store):
    a = plan_mixture(mix_store, load_spec(spec_dict(seed=0)))
    b = plan_mixture(mix_store, load_spec(spec_dict(seed=1)))
    a2 = plan_mixture(mix_store, load_spec(spec_dict(seed=0)))
    assert sorted(_uses(a)) == sorted(_uses(a2))
    assert sorted(_uses(a)) != sorted(_uses(b))
    assert [c.target for c in a.cells] == [c.target for c in b.cells]


@given(total=st.integers(0, 10**12), ws=st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_allocate_is_exact(total, ws):
    weights = {f"d{i}": w for i, w in enumerate(ws)}
    if sum(ws) == 0:
        return
    out = allocate(total, weights)
    assert sum(out.values()) == total and all(v >= 0 for v in out.values())
    for k, w in weights.items():
        assert abs(out[k] - total * w / sum(ws)) < 1 + 1e-6 * total


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.integers(1_000, 3_000_000), max_epochs=st.integers(1, 5), seed=st.integers(0, 2**31),
       frac=st.floats(0.05, 0.95), w=st.floats(0.05, 0.95))
def test_planning_invariants_hold_for_any_budget(mix_store, tokens, max_epochs, seed, frac, w):
    spec = load_spec(spec_dict(tokens=tokens, max_epochs=max_epochs, seed=seed, weights={"math": w, "code": 1 - w},
                               phases=[{"name": "main", "fraction": frac},
                                       {"name": "anneal", "fraction": 1 - frac, "weights": {"math": 1.0}}]))
    check_invariants(plan_mixture(mix_store, spec), spec)
