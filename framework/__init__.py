"""The generic half of datathon-etl: schemas, transforms, sources, sinks, pipelines."""
