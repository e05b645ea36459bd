"""Method selections on the tiny experiment's real store: equal budgets, the right documents, refusals."""

from __future__ import annotations

import pytest

from curate import connect
from curate.errors import ConfigError
from curate.experiment.methods import METHODS, draw, parse_methods, pool_where, two_phase_plan
from curate.experiment.scales import get_scale
from curate.selection import band_doc_ids, top_share_doc_ids

SCALE = get_scale("tiny")
WHERE = pool_where("demo")
STATIC = [m for m, spec in METHODS.items() if spec.kind == "sql"]


@pytest.fixture(scope="module")
def con(tiny):
    return connect(tiny[1])


@pytest.fixture(scope="module")
def draws(tiny, con):
    out = {m: draw(con, METHODS[m].sql(WHERE), SCALE.budget, seed=0, what=m) for m in STATIC}
    out["two-phase"], _ = two_phase_plan(tiny[1], con, "demo", SCALE.budget, seed=0,
                                         anneal_fraction=SCALE.anneal_fraction)
    return out


def _within_one_document(table, budget: int) -> None:
    n = table.column("n_tokens").to_pylist()
    total = sum(n)
    assert total >= budget and total - n[-1] < budget, (total, n[-1], budget)


@pytest.mark.parametrize("method", STATIC)
def test_every_draw_meets_the_budget_within_one_document(draws, con, method):
    table = draws[method]
    _within_one_document(table, SCALE.budget)
    ids = table.column("doc_id").to_pylist()
    assert len(set(ids)) == len(ids)  # no document twice
    # token counts are the stored bytes plus the end-of-document token the packer adds
    con.register("_ids", table.select(["doc_id", "n_tokens"]))
    bad = con.sql("SELECT count(*) FROM _ids JOIN docs USING (doc_id) "
                  f"WHERE n_tokens <> n_bytes + 1 OR NOT ({WHERE})").fetchall()[0][0]
    con.unregister("_ids")
    assert bad == 0


def test_two_phase_meets_each_phase_share_and_upsamples_at_the_end(draws):
    table = draws["two-phase"]
    phases = table.column("phase").to_pylist()
    first_anneal = phases.index("anneal")
    assert set(phases[:first_anneal]) == {"main"} and set(phases[first_anneal:]) == {"anneal"}  # main, then anneal
    main, anneal = table.slice(0, first_anneal), table.slice(first_anneal)
    _within_one_document(main, round(SCALE.budget * (1 - SCALE.anneal_fraction)))
    _within_one_document(anneal, round(SCALE.budget * SCALE.anneal_fraction))

    def upsampled_share(t):
        n = t.column("n_tokens").to_pylist()
        up = [x for x, d in zip(n, t.column("domain").to_pylist()) if d in ("math", "code", "encyclopedic")]
        return sum(up) / sum(n)

    assert upsampled_share(anneal) > upsampled_share(main)


def test_draws_come_from_each_method_rule_and_differ_from_random(draws, con):
    ids = {m: set(t.column("doc_id").to_pylist()) for m, t in draws.items()}
    assert ids["preselect"] <= set(top_share_doc_ids(con, "preselect_score", share=0.1, where=WHERE))
    assert ids["ppl-middle"] <= set(band_doc_ids(con, "bits_per_byte", keep="middle", fraction=0.5, where=WHERE))
    hard = set(band_doc_ids(con, "el2n", keep="high", fraction=0.5, where=WHERE))
    assert ids["el2n-hard"] <= hard and not ids["el2n-easy"] & hard
    for m in ids:
        if m != "random":
            assert ids[m] != ids["random"], m
    # the same seed draws the same documents; another seed another order
    again = draw(con, METHODS["random"].sql(WHERE), SCALE.budget, seed=0, what="random")
    assert again.column("doc_id").to_pylist() == draws["random"].column("doc_id").to_pylist()
    other = draw(con, METHODS["random"].sql(WHERE), SCALE.budget, seed=1, what="random")
    assert other.column("doc_id").to_pylist() != draws["random"].column("doc_id").to_pylist()


def test_a_longer_random_draw_starts_with_the_shorter_one(con, draws):
    longer = draw(con, METHODS["random"].sql(WHERE), 2 * SCALE.budget, seed=0, what="random")
    short = draws["random"].column("doc_id").to_pylist()
    assert longer.column("doc_id").to_pylist()[:len(short)] == short


def test_a_selection_too_small_for_the_budget_is_refused(con):
    pool_tokens = con.sql(f"SELECT sum(n_bytes + 1) FROM docs WHERE {WHERE}").fetchall()[0][0]
    with pytest.raises(ConfigError, match="preselect.*fewer than the budget"):
        draw(con, METHODS["preselect"].sql(WHERE), pool_tokens // 5, seed=0, what="preselect")


def test_method_names_are_checked():
    assert parse_methods(None) == list(METHODS)
    assert parse_methods("mates,el2n-hard") == ["random", "mates", "el2n-hard"]
    with pytest.raises(ConfigError, match="unknown method.*'perplexity'.*choose from"):
        parse_methods("random,perplexity")
    with pytest.raises(ConfigError, match="twice"):
        parse_methods(["mates", "mates"])
    with pytest.raises(ConfigError, match="chooses while training"):
        METHODS["mates"].sql(WHERE)
