"""Scorer lookup: built-ins, a third-party scorer found through the entry-point group, and refusals."""

from __future__ import annotations

import sys
import textwrap

import pytest

from curate.errors import ConfigError
from curate.execute import run_scorer
from curate.scoring import Scorer
from scorers.registry import ENTRY_POINT_GROUP, available, get_scorer


def test_builtins_implement_the_protocol():
    for name in ("heuristics", "langid"):
        scorer = get_scorer(name)
        assert isinstance(scorer, Scorer) and scorer.name == name
        assert scorer.schema.names[0] == "doc_id"


def test_unknown_scorer_and_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="available are"):
        get_scorer("nope")
    with pytest.raises(ConfigError, match="bad settings for scorer 'heuristics'"):
        get_scorer("heuristics", not_a_setting=1)


def test_third_party_scorer_via_entry_point(tmp_path, monkeypatch, sharded_store):
    pkg = tmp_path / "site" / "shout_scorer"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        import pyarrow as pa
        import pyarrow.compute as pc
        from curate.scoring import BaseScorer

        class ShoutScorer(BaseScorer):
            name = "shout"
            version = "1"

            @property
            def schema(self):
                return pa.schema([("doc_id", pa.string()), ("exclamations", pa.int32())])

            def score(self, batch):
                n = pc.count_substring(batch.column("text"), "!").cast(pa.int32())
                return pa.RecordBatch.from_arrays([batch.column("doc_id"), n], schema=self.schema)
    '''))
    dist = tmp_path / "site" / "shout_scorer-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-scorer\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nshout = shout_scorer:ShoutScorer\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert available()["shout"] == "shout_scorer:ShoutScorer"
    report = run_scorer(sharded_store, get_scorer("shout"), workers=0)
    assert report.done == 6 and report.rows == 300
    sys.modules.pop("shout_scorer", None)
