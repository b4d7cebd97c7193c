"""Ingesting labelled images: join on paths, read bytes after, transform, write."""

from datathon_etl.framework.ingest.pipeline import IngestJob, build_pipeline, run
from datathon_etl.framework.ingest.spec import IngestSpec

__all__ = ["IngestJob", "IngestSpec", "build_pipeline", "run"]
