"""The test suite (a package, so that `tests.*` helpers never resolve to another distribution's `tests`)."""
