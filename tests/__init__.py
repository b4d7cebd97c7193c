"""The test suite: a package, so that `tests.*` never means tf2onnx's installed `tests`."""
