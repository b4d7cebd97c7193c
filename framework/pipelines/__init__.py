"""Runnable pipelines: each module has ``main(argv) -> int``."""
