"""Runs inside the datatrove virtualenv (never imports curate): times one datatrove pipeline.

Usage: python -P _datatrove_job.py '<json job>'   (-P: this folder must not shadow ``fasttext``)

Job keys: kind ("fasttext" | "heuristics" | "heuristics-default" | "minhash" | "jsonl-parquet"), input_dir, probe_dir,
work_dir, tasks, workers, model, label, repeats, warm_docs. Prints one JSON line with:

- ``startup_s``: wall time of the pipeline over a tiny probe input (one small file per task):
  process pool, imports, model load. Run once untimed first (which also copies the model into
  datatrove's asset cache).
- ``runs``: per full run, its wall time and its steady-state throughput. Steady state is timed
  inside the pipeline by a pass-through step right after the reader: generators pull one
  document at a time, so when it is asked for document k+1, document k has been through the
  filters and the writer. Each task stamps the time once its first ``warm_docs`` documents are
  through (model loaded, tokenizer warm) and when its input is exhausted, and counts the input
  text bytes in between (dropped documents included); the tasks' rates
  (bytes ÷ seconds) are summed, as they run side by side on their own cores.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

t_import = time.perf_counter()
from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.base import PipelineStep  # noqa: E402
from datatrove.pipeline.readers import ParquetReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

IMPORT_S = time.perf_counter() - t_import
NEVER = 1e9  # thresholds no document reaches: every check runs on every document (score-only)


class Stamp(PipelineStep):
    """Pass-through: per task, when the warm-up documents are through, when the input ends, bytes between."""

    name = "⏱ stamp"

    def __init__(self, out_dir: str, warm_docs: int) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.warm_docs = warm_docs

    def run(self, data, rank: int = 0, world_size: int = 1):
        n, nbytes, t_warm = 0, 0, None
        for doc in data:
            n += 1
            if t_warm is not None:
                nbytes += len(doc.text.encode("utf-8"))
            yield doc
            if n == self.warm_docs:
                t_warm = time.perf_counter()
        t_end = time.perf_counter()
        Path(self.out_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(self.out_dir) / f"rank-{rank:05d}.json", "w") as f:
            json.dump({"rank": rank, "docs": n, "bytes": nbytes, "t_warm": t_warm, "t_end": t_end}, f)


def ids_and_metadata(self, document) -> dict:
    """Writer adapter: keep the id and the scores (metadata), not the text — the analogue of a feature table."""
    return {"id": document.id, **document.metadata}


def filters(job: dict) -> list:
    kind = job["kind"]
    if kind == "fasttext":
        from datatrove.pipeline.filters import FastTextClassifierFilter

        # score-only: the label at threshold 0.0 keeps every document; newlines -> spaces like curate
        return [FastTextClassifierFilter(job["model"], keep_labels=(job["label"], 0.0),
                                         newline_replacement=" ", save_labels_in_metadata=True)]
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter

    if kind == "heuristics-default":  # datatrove's defaults: a document stops at its first failed check
        return [GopherRepetitionFilter(), GopherQualityFilter()]
    return [
        GopherRepetitionFilter(dup_line_frac=NEVER, dup_para_frac=NEVER, dup_line_char_frac=NEVER,
                               dup_para_char_frac=NEVER, top_n_grams=((2, NEVER), (3, NEVER), (4, NEVER)),
                               dup_n_grams=tuple((n, NEVER) for n in range(5, 11))),
        # min_doc_words=1 only skips documents without a single word (the checks below divide by it)
        GopherQualityFilter(min_doc_words=1, max_doc_words=10**12, min_avg_word_length=None,
                            max_avg_word_length=NEVER, max_symbol_word_ratio=NEVER, max_bullet_lines_ratio=NEVER,
                            max_ellipsis_lines_ratio=NEVER, max_non_alpha_words_ratio=1e-12, min_stop_words=None),
    ]


def run(job: dict, input_dir: str, tag: str) -> dict:
    work = Path(job["work_dir"]) / tag
    shutil.rmtree(work, ignore_errors=True)
    stamps = work / "stamps"
    pipeline = [
        ParquetReader(input_dir, glob_pattern="*.parquet", text_key="text", id_key="doc_id", read_metadata=False),
        Stamp(str(stamps), job.get("warm_docs", 20)),
        *filters(job),
        JsonlWriter(str(work / "out"), compression=None, adapter=ids_and_metadata),
    ]
    ex = LocalPipelineExecutor(pipeline=pipeline, tasks=job["tasks"], workers=job["workers"],
                               logging_dir=str(work / "logs"), skip_completed=False)
    t0 = time.perf_counter()
    ex.run()
    wall = time.perf_counter() - t0
    ranks = [json.loads(p.read_text()) for p in sorted(stamps.glob("rank-*.json"))]
    rates = [r["bytes"] / (r["t_end"] - r["t_warm"]) for r in ranks if r["t_warm"] and r["t_end"] > r["t_warm"]]
    return {"wall_s": wall, "docs": sum(r["docs"] for r in ranks),
            "steady_mb_s": sum(rates) / 1e6 if len(rates) == len(ranks) and ranks else None,
            "per_task_mb_s": [round(x / 1e6, 3) for x in rates]}


def run_minhash(job: dict) -> dict:
    """datatrove's four-stage MinHash dedup (signatures, buckets, clusters, filter) as its example runs it,
    FineWeb's 14 buckets x 8 hashes on word 5-grams; wall time per stage and in all."""
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
    )
    from datatrove.utils.hashing import HashConfig

    work = Path(job["work_dir"]) / "minhash"
    shutil.rmtree(work, ignore_errors=True)
    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)

    def reader():
        return ParquetReader(job["input_dir"], glob_pattern="*.parquet", text_key="text", id_key="doc_id",
                             read_metadata=False)

    stages = {
        "signatures": ([reader(), MinhashDedupSignature(output_folder=str(work / "sigs"), config=config)],
                       job["tasks"]),
        "buckets": ([MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"),
                                         config=config)], config.num_buckets),
        "clusters": ([MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove"),
                                          config=config)], 1),
        "filter": ([reader(), MinhashDedupFilter(input_folder=str(work / "remove"),
                                                 exclusion_writer=JsonlWriter(str(work / "removed"), compression=None,
                                                                              adapter=ids_and_metadata)),
                    JsonlWriter(str(work / "kept"), compression=None, adapter=ids_and_metadata)], job["tasks"]),
    }
    walls = {}
    for name, (pipeline, tasks) in stages.items():
        ex = LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=job["workers"],
                                   logging_dir=str(work / "logs" / name), skip_completed=False)
        t0 = time.perf_counter()
        ex.run()
        walls[name] = time.perf_counter() - t0
    def count(folder: str) -> int:
        return sum(len(f.read_text().splitlines()) for f in (work / folder).glob("*.jsonl"))

    return {"import_s": IMPORT_S, "stages_s": walls, "wall_s": sum(walls.values()), "kept": count("kept"),
            "removed": count("removed")}


def run_convert(job: dict, input_dir: str, tag: str) -> dict:
    """JsonlReader -> ParquetWriter (zstd): datatrove's way of turning JSON lines into Parquet; wall time."""
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import ParquetWriter

    work = Path(job["work_dir"]) / tag
    shutil.rmtree(work, ignore_errors=True)
    pipeline = [JsonlReader(input_dir, glob_pattern="*.jsonl", text_key="text", id_key="id"),
                ParquetWriter(str(work / "out"), compression="zstd")]
    ex = LocalPipelineExecutor(pipeline=pipeline, tasks=job["tasks"], workers=job["workers"],
                               logging_dir=str(work / "logs"), skip_completed=False)
    t0 = time.perf_counter()
    ex.run()
    wall = time.perf_counter() - t0
    import pyarrow.parquet as pq

    docs = sum(pq.read_metadata(f).num_rows for f in (work / "out").rglob("*.parquet"))
    shutil.rmtree(work / "out", ignore_errors=True)
    return {"wall_s": wall, "docs": docs}


def main() -> None:
    job = json.loads(sys.argv[1])
    if job["kind"] == "jsonl-parquet":
        run_convert(job, job["probe_dir"], "probe")  # warm-up
        startup = run_convert(job, job["probe_dir"], "probe")["wall_s"]
        runs = [run_convert(job, job["input_dir"], "full") for _ in range(job.get("repeats", 1))]
        print(json.dumps({"import_s": IMPORT_S, "startup_s": startup, "runs": runs}))
        return
    if job["kind"] == "minhash":
        print(json.dumps(run_minhash(job)))
        return
    run(job, job["probe_dir"], "probe")  # warm-up
    startup = run(job, job["probe_dir"], "probe")["wall_s"]
    runs = [run(job, job["input_dir"], "full") for _ in range(job.get("repeats", 1))]
    print(json.dumps({"import_s": IMPORT_S, "startup_s": startup, "runs": runs}))


if __name__ == "__main__":
    main()
