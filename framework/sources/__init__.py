"""Beam sources that read records for the pipelines: label CSV rows, image files."""
