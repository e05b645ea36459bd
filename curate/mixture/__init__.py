"""Token-budgeted mixtures: spec → plan (DuckDB) → ordered shards + manifest → loader."""

from curate.mixture.build import build_mixture
from curate.mixture.manifest import MixtureManifest
from curate.mixture.plan import Plan, ShortfallError, plan_mixture
from curate.mixture.spec import MixtureSpec, PhaseSpec, load_spec

__all__ = ["MixtureManifest", "MixtureSpec", "PhaseSpec", "Plan", "ShortfallError", "build_mixture",
           "load_spec", "plan_mixture"]
