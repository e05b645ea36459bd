"""Store layout, format versions, atomic writes and name checks."""

from __future__ import annotations

import json

import pytest

from curate.errors import ConfigError
from curate.store import FORMAT_VERSION, Store, StoreError


def test_create_and_reopen(tmp_path):
    st = Store.open(tmp_path / "s", create=True)
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert meta["format"] == FORMAT_VERSION and "created" in meta
    assert Store.open(tmp_path / "s").root == st.root


def test_missing_store_says_how_to_create_one(tmp_path):
    with pytest.raises(StoreError, match="curate ingest"):
        Store.open(tmp_path / "nothing")


def test_newer_format_is_refused(tmp_path):
    Store.open(tmp_path / "s", create=True)
    (tmp_path / "s" / "store.json").write_text(json.dumps({"format": FORMAT_VERSION + 1}))
    with pytest.raises(StoreError, match="upgrade curate"):
        Store.open(tmp_path / "s")


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    st = Store.open(tmp_path / "s", create=True)
    with pytest.raises(RuntimeError):
        with st.atomic_output("features/x/part.parquet") as out:
            out.write(b"half a file")
            raise RuntimeError("killed mid-write")
    assert not st.exists("features/x/part.parquet")
    assert list((tmp_path / "s" / "features" / "x").iterdir()) == []
    st.write_bytes("features/x/part.parquet", b"whole")
    assert st.read_bytes("features/x/part.parquet") == b"whole"


def test_temporaries_are_invisible_and_cleaned(tmp_path):
    st = Store.open(tmp_path / "s", create=True)
    d = tmp_path / "s" / "shards" / "c"
    d.mkdir(parents=True)
    (d / "part-00000.parquet").write_bytes(b"x")
    (d / "part-00001.parquet.abc123.tmp").write_bytes(b"partial")
    assert st.list_files("shards/c") == ["shards/c/part-00000.parquet"]
    assert st.clean_temporaries("shards/c") == 1
    assert sorted(p.name for p in d.iterdir()) == ["part-00000.parquet"]


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 200, "sp ace"])
def test_names_that_would_escape_or_confuse_paths_are_refused(tmp_path, bad):
    st = Store.open(tmp_path / "s", create=True)
    with pytest.raises(ConfigError, match="invalid corpus name"):
        st.shards_dir(bad)


def test_object_store_uri_goes_through_pyarrow_fs(tmp_path):
    st = Store.open(f"file://{tmp_path / 's'}", create=True)
    st.write_json("x.json", {"a": 1})
    assert st.read_json("x.json") == {"a": 1}
    assert (tmp_path / "s" / "x.json").exists()
