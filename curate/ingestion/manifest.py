"""The corpus manifest: a checkpoint, and one small log entry per commit since it.

``shards/<corpus>/_manifest.json`` holds the whole state (shard and quarantine files,
ingest runs with their inputs, positions and counts) as of log entry ``log_upto``.
Each commit after it is one file ``shards/<corpus>/_log/<seq>.json`` holding only
what the commit changed: the files it added, the run's position and counts, and the
counts of the inputs it read. So a commit writes a few hundred bytes however large
the corpus is; rewriting the whole manifest per commit cost O(shards + inputs) each
time (~85 bytes per shard, ~400 per input: tens of MB per commit for a crawl of
100k files, a million times over).

The state is written whole (a *checkpoint*, then the log removed) at an ingest's
first commit (it records the run started or resumed), when a run ends, and every
:data:`CHECKPOINT_EVERY` commits. A crash between a checkpoint and the removal
leaves entries the checkpoint covers: they are skipped by number and removed at
the next checkpoint. Readers go through :func:`load_manifest`.
"""

from __future__ import annotations

from typing import Any

from curate.store import Store

MANIFEST = "_manifest.json"
LOG_DIR = "_log"
#: commits between checkpoints: how many log entries a reader replays at most
CHECKPOINT_EVERY = 256


def add_counts(run: dict[str, Any], idx: int, delta: dict[str, int], reasons: dict[str, int]) -> None:
    """Add one piece's counts to the run's and to its input's."""
    for counts in (run["counts"], run["inputs"][idx]["counts"]):
        for k, v in delta.items():
            counts[k] += v
        for k, v in reasons.items():
            counts["reasons"][k] = counts["reasons"].get(k, 0) + v


def empty_manifest(corpus: str) -> dict[str, Any]:
    return {"corpus": corpus, "shards": [], "quarantine": [], "runs": []}


def load_manifest(store: Store, corpus: str) -> dict[str, Any] | None:
    """The corpus manifest as of its last commit (checkpoint + log entries), or None for a corpus never ingested."""
    shard_dir = store.shards_dir(corpus)
    state = store.read_json(f"{shard_dir}/{MANIFEST}")
    if state is None:
        return None  # entries without a checkpoint cannot exist: a run's first commit writes one
    for seq, rel in _entries(store, shard_dir, after=int(state.get("log_upto", 0))):
        try:
            _apply(state, store.read_json(rel))
        except (KeyError, TypeError, ValueError, IndexError, StopIteration) as exc:
            raise store.damaged(rel, exc) from None
        state["log_upto"] = seq
    return state


def _entries(store: Store, shard_dir: str, after: int) -> list[tuple[int, str]]:
    """(seq, path) of the log entries after ``after``, in order."""
    rel_dir = f"{shard_dir}/{LOG_DIR}"
    names = store.stat_files(rel_dir, ".json")
    seqs = sorted(int(n[:-5]) for n in names if n[:-5].isdigit())
    return [(s, f"{rel_dir}/{s:012d}.json") for s in seqs if s > after]


def _apply(state: dict[str, Any], entry: dict[str, Any]) -> None:
    """One commit's changes onto the state."""
    state["shards"].extend(entry["shards"])
    state["quarantine"].extend(entry["quarantine"])
    run = next(r for r in state["runs"] if r["id"] == entry["run"]["id"])
    run.update(entry["run"])
    for idx, counts in entry["inputs"].items():
        run["inputs"][int(idx)]["counts"] = counts


class ManifestLog:
    """Writes a corpus's manifest commit by commit: a log entry, or a checkpoint when one is due."""

    def __init__(self, store: Store, corpus: str, state: dict[str, Any]) -> None:
        self.store = store
        self.shard_dir = store.shards_dir(corpus)
        self.state = state
        self.seq = int(state.get("log_upto", 0))
        # an ingest's first commit is a checkpoint: it records the run it started (with every input) or resumed
        self._since_checkpoint = CHECKPOINT_EVERY
        self._logged = (len(state["shards"]), len(state["quarantine"]))
        self._touched: set[int] = set()

    def touched(self, idx: int) -> None:
        """Input ``idx`` of the current run has new counts to record at the next commit."""
        self._touched.add(idx)

    def commit(self, run: dict[str, Any]) -> None:
        """Record everything added to the state since the last commit, and ``run``'s progress."""
        self.seq += 1
        if run["status"] == "done" or self._since_checkpoint + 1 >= CHECKPOINT_EVERY:
            self.checkpoint()
            return
        shards, quarantine = self._logged
        entry = {"seq": self.seq, "shards": self.state["shards"][shards:],
                 "quarantine": self.state["quarantine"][quarantine:],
                 "run": {k: v for k, v in run.items() if k != "inputs"},
                 "inputs": {str(i): run["inputs"][i]["counts"] for i in sorted(self._touched)}}
        self.store.write_json(f"{self.shard_dir}/{LOG_DIR}/{self.seq:012d}.json", entry, indent=None)
        self._since_checkpoint += 1
        self._mark_logged()

    def checkpoint(self) -> None:
        """Write the whole state as of ``seq`` and remove the log entries it covers."""
        self.state["log_upto"] = self.seq
        self.store.write_json(f"{self.shard_dir}/{MANIFEST}", self.state, indent=None)
        self.store.delete_dir(f"{self.shard_dir}/{LOG_DIR}")  # every entry is <= seq: one ingest at a time writes
        self._since_checkpoint = 0
        self._mark_logged()

    def _mark_logged(self) -> None:
        self._logged = (len(self.state["shards"]), len(self.state["quarantine"]))
        self._touched.clear()
