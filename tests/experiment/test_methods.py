"""Method selections on the tiny experiment's real store: each keeps what its rule says, for its target."""

from __future__ import annotations

import pytest

from curate import connect
from curate.errors import ConfigError
from curate.experiment.methods import (
    METHODS,
    UPSAMPLE_FACTOR,
    method_phases,
    parse_methods,
    pool_domain_shares,
    pool_where,
    two_phase_weights,
)
from curate.experiment.prepare import register_score_views
from curate.experiment.targets import BUILTIN
from curate.selection import band_doc_ids

WHERE = pool_where("demo")


@pytest.fixture(scope="module")
def con(tiny):
    c = connect(tiny[1])
    register_score_views(c, tiny[2], list(BUILTIN.values()))
    return c


def _kept(con, method, target, keep_share=0.3):
    shares = pool_domain_shares(con, "demo")
    phases = method_phases(method, "demo", BUILTIN[target], shares, 0.2, keep_share)
    return {r[0] for p in phases for c in p.components for r in con.sql(c.sql).fetchall()}


def _domains(con, ids):
    con.register("_ids", __import__("pyarrow").table({"doc_id": sorted(ids)}))
    out = dict(con.sql("SELECT CAST(domain AS VARCHAR), count(*) FROM docs JOIN _ids USING (doc_id) GROUP BY 1"
                       ).fetchall())
    con.unregister("_ids")
    return out


def test_oracle_keeps_only_the_targets_domains(con):
    assert set(_domains(con, _kept(con, "oracle", "math-code"))) == {"math", "code"}
    assert set(_domains(con, _kept(con, "oracle", "prose"))) == {"encyclopedic", "books"}
    with pytest.raises(ConfigError, match="fixed phases"):
        METHODS["mates"].phases("demo", BUILTIN["mixed"], {}, 0.3)


def test_score_based_methods_keep_their_share_of_the_characters_by_the_targets_score(con):
    chars = dict(con.sql("SELECT doc_id, length(text) FROM docs WHERE corpus = 'demo'").fetchall())
    total = sum(chars.values())
    for method in ("preselect", "closest"):
        for target in ("math-code", "prose"):
            for keep in (0.2, 0.3):
                kept = _kept(con, method, target, keep)
                share = sum(chars[d] for d in kept) / total
                assert keep <= share < keep + max(chars[d] for d in kept) / total, (method, target, keep, share)
            assert _kept(con, method, target, 0.2) < _kept(con, method, target, 0.3)  # the top of the same order
    # per domain: every domain keeps its own top share
    strat = _domains(con, _kept(con, "preselect-strat", "mixed"))
    assert set(strat) == set(_domains(con, set(chars)))
    # the score views hold every pool document, one score each
    n = con.execute("SELECT count(*), count(DISTINCT doc_id) FROM exp_preselect_math_code").fetchall()[0]
    assert n == (len(chars), len(chars))


def test_target_free_methods_are_the_shared_sql(con):
    assert _kept(con, "ppl-middle", "prose") == set(band_doc_ids(con, "bits_per_byte", keep="middle", fraction=0.5,
                                                                  where=WHERE))
    hard, easy = _kept(con, "el2n-hard", "mixed"), _kept(con, "el2n-easy", "mixed")
    assert hard and easy and not hard & easy


def test_two_phase_upsamples_the_targets_domains_in_its_last_phase():
    shares = {"math": 0.1, "code": 0.1, "books": 0.4, "web": 0.4}
    w = two_phase_weights(shares, BUILTIN["math-code"])
    assert w["math"] / w["books"] == pytest.approx(UPSAMPLE_FACTOR * 0.1 / 0.4) and sum(w.values()) == pytest.approx(1)
    mixed = two_phase_weights(shares, BUILTIN["mixed"])  # in-distribution: the default math, code, encyclopedic
    assert mixed == w
    main, anneal = method_phases("two-phase", "demo", BUILTIN["prose"], shares, 0.2, 0.3)
    assert (main.fraction, anneal.fraction) == (0.8, 0.2) and main.components[0].label == "pool"
    assert {c.label: round(c.weight, 4) for c in anneal.components}["books"] == round(
        two_phase_weights(shares, BUILTIN["prose"])["books"], 4)


def test_method_names_are_checked():
    assert parse_methods(None) == list(METHODS)
    assert parse_methods("mates,el2n-hard") == ["random", "mates", "el2n-hard"]
    with pytest.raises(ConfigError, match="unknown method.*'perplexity'.*choose from"):
        parse_methods("random,perplexity")
    with pytest.raises(ConfigError, match="twice"):
        parse_methods(["mates", "mates"])


def test_random_runs_more_seeds_and_a_runs_fingerprint_ignores_how_many(tmp_path):
    from dataclasses import replace

    from curate.experiment.run import _fingerprint, plan_runs
    from curate.experiment.scales import get_scale

    scale = get_scale("default")
    assert scale.random_seeds == 5 and scale.seeds == 3
    specs = plan_runs(["random", "el2n-hard"], [BUILTIN["math-code"]], scale, seed=0)
    seeds = {m: [s["seed"] for s in specs if s["method"] == m] for m in ("random", "el2n-hard")}
    assert seeds == {"random": [0, 1, 2, 3, 4], "el2n-hard": [0, 1, 2]}
    fewer = replace(scale, random_seeds=0)
    assert [s["seed"] for s in plan_runs(["random"], [], fewer, seed=0)] == [0, 1, 2]
    # the runs random shares with a 3-seed experiment are the same runs: reused, not retrained
    assert _fingerprint(specs[0], scale, {}, tmp_path) == _fingerprint(specs[0], fewer, {}, tmp_path)
    assert _fingerprint(specs[0], scale, {}, tmp_path) != _fingerprint(specs[0], replace(scale, lr=1e-3), {}, tmp_path)


def test_the_kept_share_is_a_setting_that_only_top_share_runs_depend_on(tmp_path):
    from dataclasses import replace

    from curate.experiment.run import _fingerprint, plan_runs
    from curate.experiment.scales import get_scale

    scale = get_scale("default")
    narrow = get_scale("default", keep_share=0.1)
    assert narrow.keep_share == 0.1 and replace(narrow, keep_share=scale.keep_share) == scale
    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "preselect-math-code.json").write_text('{"fingerprint": "f"}')
    specs = {s["method"]: s for s in plan_runs(["random", "el2n-hard", "preselect"], [BUILTIN["math-code"]], scale,
                                              seed=0)}
    # a run that keeps a top share retrains when the share changes; the others are reused
    assert _fingerprint(specs["preselect"], scale, {}, tmp_path) != _fingerprint(specs["preselect"], narrow, {},
                                                                                 tmp_path)
    for method in ("random", "el2n-hard"):
        assert _fingerprint(specs[method], scale, {}, tmp_path) == _fingerprint(specs[method], narrow, {}, tmp_path)
    assert "top 10% of the pool" in METHODS["preselect"].describe(0.1)
    for bad in (0, 1.5, -0.2):
        with pytest.raises(ConfigError, match="keep_share.*--share"):
            get_scale("default", keep_share=bad)
