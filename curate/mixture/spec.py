"""Mixture specs: a YAML file (or dict) validated by pydantic before any work starts.

Every refusal is a :class:`~curate.errors.ConfigError` that names the field and
the numbers, so a user can fix the YAML without reading code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from curate.errors import ConfigError
from curate.store import check_name
from curate.view_sql import SQL_DIR

#: sums of weights and fractions are floats typed by people: accept rounding, not mistakes
SUM_TOLERANCE = 1e-6


def _fmt_parts(parts: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in parts.items())


def _check_weights(weights: dict[str, float], field: str) -> dict[str, float]:
    if not weights:
        raise ValueError(f"{field}: no domain weights given: name at least one domain, e.g. {{web: 0.7, code: 0.3}}")
    bad = {k: v for k, v in weights.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"{field}: weights must be finite and >= 0, got {_fmt_parts(bad)}")
    total = sum(weights.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{field}: weights sum to {total:.6g}, not 1 ({_fmt_parts(weights)})")
    return weights


class PhaseSpec(BaseModel):
    """One phase: a fraction of the token budget with its own weights and filter."""

    model_config = ConfigDict(extra="forbid")

    name: str
    fraction: float = Field(gt=0, le=1)
    weights: dict[str, float] | None = None  # None: the mixture's weights
    where: str | None = None  # extra SQL condition over doc_features for this phase only


class MixtureSpec(BaseModel):
    """A token-budgeted mixture: what to select, in which proportions, over which phases."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tokens: int = Field(gt=0)
    # "bytes", or a local HF tokenizer: a directory with tokenizer.json, a store model, a built-in model
    tokenizer: str = Field(default="bytes", min_length=1)
    seed: int = 0
    max_epochs: int = Field(default=4, ge=1, le=1000)
    corpora: list[str] | None = None  # None: every corpus in the store
    select: str | None = None  # a .sql file returning doc_id (relative to the spec file), or sql/<shipped query>
    where: list[str] = Field(default_factory=list)  # SQL conditions over doc_features, ANDed
    weights: dict[str, float]
    phases: list[PhaseSpec] = Field(default_factory=lambda: [PhaseSpec(name="main", fraction=1.0)])

    _select_sql: str | None = PrivateAttr(default=None)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            return check_name("mixture", v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("where", mode="before")
    @classmethod
    def _where_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _sums(self) -> MixtureSpec:
        _check_weights(self.weights, "weights")
        if not self.phases:
            raise ValueError("phases: at least one phase is needed")
        names = [p.name for p in self.phases]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"phases: duplicate phase names {dup}")
        for i, p in enumerate(self.phases):
            if p.weights is not None:
                _check_weights(p.weights, f"phases[{i}] ({p.name}).weights")
        total = sum(p.fraction for p in self.phases)
        if abs(total - 1.0) > SUM_TOLERANCE:
            parts = {p.name: p.fraction for p in self.phases}
            raise ValueError(f"phases: fractions sum to {total:.6g}, not 1 ({_fmt_parts(parts)})")
        return self

    # ------------------------------------------------------------- helpers
    @property
    def base_dir(self) -> Path:
        """The spec file's folder (relative ``select`` and ``tokenizer`` paths start here)."""
        return self._base_dir

    @property
    def select_sql(self) -> str | None:
        """The text of the selection query (read when the spec was loaded)."""
        return self._select_sql

    def phase_weights(self, phase: PhaseSpec) -> dict[str, float]:
        return phase.weights if phase.weights is not None else self.weights

    def domains(self) -> list[str]:
        """Every domain named by any weight, sorted."""
        out = set(self.weights)
        for p in self.phases:
            out |= set(p.weights or {})
        return sorted(out)

    def canonical(self) -> dict[str, Any]:
        """The spec as plain data, with the selection SQL text inlined (what the hash covers)."""
        d = self.model_dump(mode="json")
        d["select_sql"] = self._select_sql
        return d

    def spec_hash(self) -> str:
        data = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(data).hexdigest()[:16]


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec(source: str | os.PathLike[str] | dict[str, Any], *, base_dir: str | os.PathLike[str] | None = None) -> MixtureSpec:
    """Load and validate a mixture spec from a YAML path or a dict.

    ``select`` paths are resolved against the spec file's folder (or ``base_dir``),
    then the working directory, and read now so the spec hash covers the SQL.
    """
    if isinstance(source, dict):
        data, where_from = source, "spec"
        base = Path(base_dir) if base_dir else Path.cwd()
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"mixture spec {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        where_from, base = str(path), Path(base_dir) if base_dir else path.parent
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise ConfigError(f"{where_from}: a mixture spec is a mapping (name, tokens, weights, ...), got {got}")
    try:
        spec = MixtureSpec.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "missing":
                msg = "missing: this field is required"
            elif e["type"] != "value_error" and isinstance(e.get("input"), (str, int, float, bool)):
                msg += f" (got {e['input']!r})"  # the YAML value the user must change
            loc = _loc(e["loc"])
            msgs.append(f"{loc}: {msg}" if loc and not msg.startswith(loc.split("[")[0].split(".")[0] + ":") else msg)
        raise ConfigError(f"{where_from}: invalid mixture spec: " + "; ".join(msgs)) from None
    spec._base_dir = base
    if spec.select:
        # relative to the spec, to the working directory, or a query shipped with curate (sql/<name>.sql)
        shipped = SQL_DIR / Path(spec.select).name if Path(spec.select).parent.name in ("sql", "") else None
        candidates = [base / spec.select, Path(spec.select), *([shipped] if shipped else [])]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"select: SQL file {spec.select!r} not found (looked in {base}, the working directory "
                              f"and curate's shipped queries {SQL_DIR})")
        spec._select_sql = found.read_text()
    return spec
