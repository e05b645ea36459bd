"""Download pinned packages from the registries and unpack them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional

from tools.corpus.model import Package, Source
from tools.corpus.text import slug

# Download and unpack
# --------------------------------------------------------------------------

JOBS = 2


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def fetch(registry: str, name: str, version: Optional[str], cache: Path) -> Package:
    d = cache / registry
    d.mkdir(parents=True, exist_ok=True)
    if registry == "deb":
        pattern = re.compile(re.escape(name) + "_" + (re.escape(version.replace(":", "%3a")) if version else r"[^_]+")
                             + r"_[a-z0-9]+\.deb$")
        found = sorted(p for p in d.iterdir() if pattern.match(p.name))
        if not found:
            try:
                shutil.chown(d, "_apt")  # lets apt download sandboxed; harmless if it fails
            except (LookupError, PermissionError, OSError):
                pass
            run(["apt-get", "download", f"{name}={version}" if version else name], d)
            found = sorted(p for p in d.iterdir() if pattern.match(p.name))
        file = found[-1]
        ver = subprocess.run(["dpkg-deb", "-f", str(file), "Version"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout.strip()
    elif registry == "npm":
        fname = name.lstrip("@").replace("/", "-") + f"-{version}.tgz"
        file = d / fname
        if not file.exists():
            run(["npm", "pack", "--silent", f"{name}@{version}"], d)
        ver = version
    elif registry == "pypi":
        found = [p for p in d.iterdir() if p.name.startswith(f"{name}-{version}.")]
        if not found:
            pip = [sys.executable, "-m", "pip"] if _has_pip() else ["pip"]
            run(pip + ["download", "--no-deps", "--no-binary", ":all:", "-d", ".", f"{name}=={version}"], d)
            found = [p for p in d.iterdir() if p.name.startswith(f"{name}-{version}.")]
        file = sorted(found)[0]
        ver = version
    else:
        raise ValueError(registry)
    return Package(registry, name, ver, file)


def _has_pip() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def unpack(pkg: Package, cache: Path) -> None:
    root = cache / "unpacked" / f"{pkg.registry}-{slug(pkg.name)}-{slug(pkg.version)}"
    done = root / ".complete"
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        if pkg.registry == "deb":
            subprocess.run(["dpkg-deb", "-x", str(pkg.file), str(root)], check=True)
        else:
            with tarfile.open(pkg.file) as tf:
                if hasattr(tarfile, "data_filter"):
                    tf.extractall(root, filter="data")
                else:
                    tf.extractall(root)
        done.write_text("ok\n")
    pkg.root = root


def glob_re(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            j = pattern.index("]", i)
            out += pattern[i:j + 1]
            i = j + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


_LISTINGS: dict = {}


def list_files(pkg: Package) -> list:
    """Sorted package-relative paths of regular files (symlinks excluded)."""
    if pkg.root not in _LISTINGS:
        files = []
        for dirpath, dirnames, filenames in os.walk(pkg.root):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for f in filenames:
                full = os.path.join(dirpath, f)
                if not os.path.islink(full) and f != ".complete":
                    files.append(os.path.relpath(full, pkg.root).replace(os.sep, "/"))
        _LISTINGS[pkg.root] = sorted(files)
    return _LISTINGS[pkg.root]


def match_files(src: Source, pkg: Package) -> list:
    inc = [glob_re(p) for p in src.paths]
    exc = [glob_re(p) for p in src.exclude]
    return [f for f in list_files(pkg)
            if any(r.match(f) for r in inc) and not any(r.match(f) for r in exc)]


# --------------------------------------------------------------------------
