"""Tests of the synthetic chest-X-ray-like JPEG generator."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from datathon_etl.framework.synthetic import synthetic_cxr_jpeg, synthetic_cxr_pixels


def test_mimic_sized_image_is_mimic_sized_file() -> None:
    """At 2544x3056 and quality 95 the file is 1.4 to 1.8 MB, like MIMIC-CXR-JPG."""
    data = synthetic_cxr_jpeg(seed=0, height=3056, width=2544)
    assert 1.4e6 <= len(data) <= 1.8e6
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (2544, 3056))


def test_same_seed_same_bytes() -> None:
    """The generator is deterministic."""
    assert synthetic_cxr_jpeg(7, 300, 250) == synthetic_cxr_jpeg(7, 300, 250)


def test_different_seeds_differ() -> None:
    """Seeds change the image."""
    assert synthetic_cxr_jpeg(1, 300, 250) != synthetic_cxr_jpeg(2, 300, 250)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 40), (40, 1), (301, 257)])
def test_pixels_shape_and_type(height: int, width: int) -> None:
    """Any size from 1x1 up gives a uint8 array of that shape."""
    pixels = synthetic_cxr_pixels(0, height, width)
    assert pixels.shape == (height, width)
    assert pixels.dtype == np.dtype(np.uint8)


def test_looks_like_a_chest_x_ray() -> None:
    """Dark background at the corners, brighter body, lungs darker than the spine."""
    pixels = synthetic_cxr_pixels(0, 600, 500).astype(float)
    corner = pixels[:40, :40].mean()
    spine = pixels[250:300, 245:255].mean()
    left_lung = pixels[250:300, 130:170].mean()
    assert corner < 30
    assert left_lung > corner + 20
    assert spine > left_lung + 40


@pytest.mark.parametrize(
    ("height", "width", "quality"), [(0, 10, 95), (10, 0, 95), (10, 10, 0), (10, 10, 101)]
)
def test_rejects_bad_arguments(height: int, width: int, quality: int) -> None:
    """Empty sizes and qualities outside 1..100 are refused."""
    with pytest.raises(ValueError, match="must be"):
        synthetic_cxr_jpeg(0, height, width, quality)
