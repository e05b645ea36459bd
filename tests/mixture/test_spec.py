"""Mixture specs: every mistake is refused before any work, naming the field and the numbers."""

from __future__ import annotations

import pytest

from curate.errors import ConfigError
from curate.mixture import load_spec, plan_mixture
from curate.mixture.plan import check_against_store
from tests.mixture._specs import spec_dict


def refused(**over) -> str:
    with pytest.raises(ConfigError) as exc:
        load_spec(spec_dict(**over))
    return str(exc.value)


def test_valid_spec_loads_with_default_phase_and_stable_hash(tmp_path):
    spec = load_spec(spec_dict(phases=None) | {"phases": [{"name": "all", "fraction": 1.0}]})
    assert spec.phases[0].name == "all" and spec.tokenizer == "bytes"
    assert spec.spec_hash() == load_spec(spec_dict(phases=[{"name": "all", "fraction": 1}])).spec_hash()
    d = spec_dict()
    d.pop("phases")
    assert [p.name for p in load_spec(d).phases] == ["main"]


def test_weights_not_summing_to_one_names_the_sum_and_parts():
    msg = refused(weights={"web": 0.5, "code": 0.3})
    assert "weights: weights sum to 0.8, not 1" in msg and "web=0.5" in msg and "code=0.3" in msg


def test_phase_weights_and_fractions_are_checked():
    msg = refused(phases=[{"name": "main", "fraction": 0.8},
                          {"name": "anneal", "fraction": 0.2, "weights": {"math": 0.6, "code": 0.6}}])
    assert "phases[1] (anneal).weights" in msg and "1.2" in msg
    msg = refused(phases=[{"name": "main", "fraction": 0.7}, {"name": "anneal", "fraction": 0.2}])
    assert "fractions sum to 0.9, not 1" in msg and "main=0.7" in msg and "anneal=0.2" in msg
    assert "duplicate phase names ['a']" in refused(phases=[{"name": "a", "fraction": 0.5}, {"name": "a", "fraction": 0.5}])


@pytest.mark.parametrize("over, words", [
    ({"tokens": 0}, ["tokens", "greater than 0"]),
    ({"max_epochs": 0}, ["max_epochs", "greater than or equal to 1"]),
    ({"weights": {"web": -0.5, "code": 1.5}}, ["weights", ">= 0", "web=-0.5"]),
    ({"tokenizer": ""}, ["tokenizer", "at least 1 character"]),
    ({"name": "bad name!"}, ["name", "invalid mixture name"]),
    ({"shuffle": True}, ["shuffle", "Extra inputs"]),
    ({"phases": [{"name": "main", "fraction": 1.5}]}, ["phases[0].fraction", "less than or equal to 1"]),
    ({"select": "nope.sql"}, ["select", "nope.sql", "not found"]),
])
def test_field_errors_name_the_field(over, words):
    msg = refused(**over)
    for w in words:
        assert w in msg, (w, msg)


def test_yaml_file_and_relative_select(tmp_path):
    (tmp_path / "q.sql").write_text("-- keep code\nSELECT doc_id FROM docs WHERE domain = 'code';\n")
    (tmp_path / "m.yaml").write_text("name: m\ntokens: 1000\nselect: q.sql\nweights: {code: 1}\n")
    spec = load_spec(tmp_path / "m.yaml")
    assert "domain = 'code'" in spec.select_sql
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="a mixture spec is a mapping"):
        load_spec(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")


def test_store_checks_unknown_domain_corpus_and_sql(mix_store):
    from curate import connect

    con = connect(mix_store)
    spec = load_spec(spec_dict(weights={"web": 0.5, "maths": 0.5}))
    with pytest.raises(ConfigError) as exc:
        check_against_store(spec, con)
    assert "weights: unknown domain 'maths' (weight 0.5)" in str(exc.value) and "'math'" in str(exc.value)
    anneal = spec_dict(phases=[{"name": "main", "fraction": 0.9},
                               {"name": "anneal", "fraction": 0.1, "weights": {"poetry": 1.0}}])
    with pytest.raises(ConfigError, match=r"phases\[1\] \(anneal\).weights: unknown domain 'poetry'"):
        check_against_store(load_spec(anneal), con)
    with pytest.raises(ConfigError, match="corpora: unknown corpus 'nope'"):
        check_against_store(load_spec(spec_dict(corpora=["nope"])), con)
    with pytest.raises(ConfigError, match=r"where\[0\] 'no_such_col > 1': DuckDB refused it"):
        plan_mixture(mix_store, load_spec(spec_dict(where="no_such_col > 1")))
    bad_phase = spec_dict(phases=[{"name": "main", "fraction": 1.0, "where": "n_bytes >>> 2"}])
    with pytest.raises(ConfigError, match=r"phases\[0\] \(main\).where"):
        plan_mixture(mix_store, load_spec(bad_phase))


def test_select_sql_must_return_doc_id(mix_store, tmp_path):
    (tmp_path / "q.sql").write_text("SELECT domain FROM docs")
    spec = load_spec(spec_dict(select="q.sql"), base_dir=tmp_path)
    with pytest.raises(ConfigError, match="must return a doc_id column"):
        plan_mixture(mix_store, spec)
