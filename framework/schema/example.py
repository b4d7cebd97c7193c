"""The unit every imaging pipeline carries: encoded image, path, key, labels."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

__all__ = ["Example"]

K = TypeVar("K")
L = TypeVar("L")


@attrs.frozen
class Example(Generic[K, L]):
    """One image with its identity and labels.

    Attributes:
        image: The encoded (resized) image bytes.
        path: The image's path relative to the data set's root.
        key: The dataset's key instance.
        labels: The dataset's label instance.
    """

    image: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    path: str
    key: K
    labels: L
