"""Ingest: inputs → validated, deduplicated document shards (+ quarantine)."""

from curate.ingestion.fields import FieldMap
from curate.ingestion.run import IngestSummary, ingest
from curate.ingestion.schema import DOC_SCHEMA, QUARANTINE_SCHEMA, Reason

__all__ = ["DOC_SCHEMA", "QUARANTINE_SCHEMA", "FieldMap", "IngestSummary", "Reason", "ingest"]
