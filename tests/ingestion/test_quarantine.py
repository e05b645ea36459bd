"""Every quarantine reason, on real documents, with the good records around it kept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from curate import connect, ingest
from curate.ingestion import FieldMap


def _quarantine(store_dir: Path) -> list[dict]:
    con = connect(store_dir)
    return con.execute("SELECT * FROM quarantine ORDER BY input, position").df().to_dict("records")


def _kept_texts(store_dir: Path) -> set[str]:
    return {r[0] for r in connect(store_dir).execute("SELECT text FROM docs").fetchall()}


BAD_LINES = {  # reason -> (the line, the detail a user reads beside its input and line number)
    "malformed_json": (b'{"text": "unterminated', "malformed JSON: Unterminated string starting at column 10"),
    "not_object": (b'["a", "json", "array"]', "expected a JSON object, got a JSON array"),
    "missing_text": (b'{"id": "no-text-here"}', "field 'text' is missing or null (use --text-field to map another field)"),
    "wrong_type": (b'{"text": 12345}', "field 'text' is int, expected a string"),
    "invalid_utf8": (b'{"text": "caf\xe9 latin-1 bytes"}', "invalid UTF-8 at byte 13 of the line"),
    "nul_bytes": (b'{"text": "before\\u0000after"}', "text contains NUL bytes (binary data?)"),
    "empty_text": (b'{"text": "   \\n\\t "}', "text is empty or only whitespace"),
}


@pytest.mark.parametrize("reason", sorted(BAD_LINES))
def test_each_bad_line_is_quarantined_with_location_and_neighbours_kept(reason, real_docs, store_dir, tmp_path, write_jsonl):
    docs = [{"id": d["id"], "text": d["text"]} for d in real_docs[:6]]
    line, detail = BAD_LINES[reason]
    path = write_jsonl(tmp_path / "in.jsonl", docs, raw_lines={3: line})
    s = ingest([path], store_dir, "c")
    assert (s.read, s.kept, s.quarantined, s.duplicates) == (7, 6, 1, 0)
    assert s.reasons == {reason: 1}
    [q] = _quarantine(store_dir)
    assert q["reason"] == reason
    assert q["unit"] == "line" and q["position"] == 4  # the bad line is line 4 of the file
    assert q["input"] == str(path)
    assert q["detail"] == detail
    assert _kept_texts(store_dir) == {d["text"] for d in docs}


def test_messages_say_what_and_what_to_do(store_dir, tmp_path, write_jsonl, real_docs):
    path = write_jsonl(tmp_path / "in.jsonl", [{"body": real_docs[0]["text"]}, {"text": 7}])
    ingest([path], store_dir, "c", max_doc_bytes=10)
    details = {q["reason"]: q["detail"] for q in _quarantine(store_dir)}
    assert "use --text-field" in details["missing_text"]
    assert "expected a string" in details["wrong_type"]


def test_oversized_document_is_quarantined_without_loading_the_line(store_dir, tmp_path, write_jsonl, real_docs):
    big = "x" * (3 << 20)  # 3 MB
    docs = [{"text": real_docs[0]["text"]}, {"text": big}, {"text": real_docs[1]["text"]}]
    path = write_jsonl(tmp_path / "in.jsonl", docs)
    s = ingest([path], store_dir, "c", max_doc_bytes=1 << 20)
    assert s.reasons == {"too_large": 1} and s.kept == 2
    [q] = _quarantine(store_dir)
    assert q["position"] == 2 and q["detail"] == (f"text is {3 << 20:,} bytes, over the document size limit of "
                                                   f"{1 << 20:,} bytes (raise --max-doc-mb, or max_doc_bytes in "
                                                   "Python, to keep it)")
    assert len(q["raw"]) <= 2000


def test_line_far_beyond_the_limit_is_skipped_while_streaming(store_dir, tmp_path, real_docs):
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as f:
        f.write(json.dumps({"text": real_docs[0]["text"]}).encode() + b"\n")
        f.write(b'{"text": "' + b"y" * (50 << 20) + b'"}\n')  # a 50 MB single document
        f.write(json.dumps({"text": real_docs[1]["text"]}).encode() + b"\n")
    s = ingest([path], store_dir, "c", max_doc_bytes=1 << 20)
    assert (s.read, s.kept, s.quarantined) == (3, 2, 1)
    assert s.reasons == {"too_large": 1}
    [q] = _quarantine(store_dir)
    assert q["position"] == 2 and q["detail"].startswith(f"line is {(50 << 20) + 12:,} bytes, over the document size "
                                                         f"limit of {1 << 20:,} bytes (raise --max-doc-mb")


def test_binary_file_passed_as_jsonl(store_dir, tmp_path):
    path = tmp_path / "image.jsonl"
    path.write_bytes(bytes(range(256)) * 64)
    s = ingest([path], store_dir, "c")
    assert s.kept == 0 and s.reasons == {"binary": 1}
    [q] = _quarantine(store_dir)
    assert (q["position"], q["detail"]) == (1, "input holds NUL bytes: this looks like a binary file, not JSON lines")


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_inputs(suffix, store_dir, tmp_path, real_docs):
    lines = b"".join(json.dumps({"id": d["id"], "text": d["text"]}).encode() + b"\n" for d in real_docs[:40])
    path = tmp_path / f"in.jsonl{suffix}"
    path.write_bytes(gzip.compress(lines) if suffix == ".gz" else zstandard.ZstdCompressor().compress(lines))
    s = ingest([path], store_dir, "c")
    assert s.kept == 40 and s.quarantined == 0


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_truncated_compressed_input_keeps_what_came_before(suffix, store_dir, tmp_path, real_docs):
    docs = [{"id": f"{i}-{d['id']}", "text": d["text"]} for i, d in enumerate(real_docs * 20)]
    lines = b"".join(json.dumps(d).encode() + b"\n" for d in docs)
    blob = gzip.compress(lines) if suffix == ".gz" else zstandard.ZstdCompressor().compress(lines)
    path = tmp_path / f"cut.jsonl{suffix}"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    s = ingest([path], store_dir, "c")
    assert s.reasons.get("unreadable") == 1
    assert 0 < s.kept < len(docs)
    assert s.read == s.kept + s.quarantined + s.duplicates
    # every kept document is a complete, correct one from the front of the file
    kept = _kept_texts(store_dir)
    assert kept <= {d["text"] for d in docs}
    q = [r for r in _quarantine(store_dir) if r["reason"] == "unreadable"][0]
    assert "truncated or corrupt" in q["detail"]


def test_blank_lines_and_crlf_are_not_records(store_dir, tmp_path, real_docs):
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"\n".join(json.dumps({"text": d["text"]}).encode() + b"\r" for d in real_docs[:3]).replace(b"\r\n", b"\r\n\n")
        + b"\n"
    )
    s = ingest([path], store_dir, "c")
    assert (s.read, s.kept, s.quarantined) == (3, 3, 0)


def test_duplicate_ids_are_counted_not_written(store_dir, tmp_path, write_jsonl, real_docs):
    docs = [{"id": "a", "text": real_docs[0]["text"]}, {"id": "a", "text": real_docs[1]["text"]},
            {"text": real_docs[2]["text"]}, {"text": real_docs[2]["text"]}]
    s = ingest([write_jsonl(tmp_path / "d.jsonl", docs)], store_dir, "c")
    assert (s.read, s.kept, s.duplicates) == (4, 2, 2)
    ids = connect(store_dir).execute("SELECT doc_id FROM docs").fetchall()
    assert len(ids) == len(set(ids)) == 2


def test_field_mapping_and_meta(store_dir, tmp_path, write_jsonl, real_docs):
    d = real_docs[0]
    rec = {"content": d["text"], "key": 17, "link": "u://x", "lang": "en", "tags": ["a", "b"]}
    fields = FieldMap(text="content", id="key", url="link", domain=None, domain_value="web", source_value="crawl")
    ingest([write_jsonl(tmp_path / "m.jsonl", [rec])], store_dir, "c", fields=fields)
    row = connect(store_dir).execute("SELECT orig_id, url, domain, source, meta, n_bytes, text FROM docs").fetchone()
    assert row[:4] == ("17", "u://x", "web", "crawl")
    assert json.loads(row[4]) == {"lang": "en", "tags": ["a", "b"]}
    assert row[5] == len(d["text"].encode()) and row[6] == d["text"]


def test_mixed_good_and_bad_lines_in_large_input(store_dir, tmp_path, real_docs):
    """Several parser chunks; bad lines spread across them are located exactly."""
    path = tmp_path / "big.jsonl"
    bad_at = {}
    with open(path, "wb") as f:
        line = 0
        for i in range(6000):
            d = real_docs[i % len(real_docs)]
            line += 1
            if i % 997 == 5:
                f.write(b"{oops\n")
                bad_at[line] = "malformed_json"
                line += 1
            f.write(json.dumps({"id": str(i), "text": d["text"]}).encode() + b"\n")
    s = ingest([path], store_dir, "c")
    assert s.kept == 6000 and s.quarantined == len(bad_at)
    got = {q["position"]: q["reason"] for q in _quarantine(store_dir)}
    assert got == bad_at
    assert len(pq.ParquetFile(next((store_dir / "shards" / "c").glob("part-*.parquet"))).schema_arrow) == 9
