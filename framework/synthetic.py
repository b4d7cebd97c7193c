"""Deterministic synthetic chest-X-ray-like images for demos and benchmarks.

The images are not anatomy: a dark background, a bright body ellipse, two darker
lungs crossed by rib-like bands, a bright spine and heart, and fine noise. The
noise is what matters for speed measurements: real MIMIC-CXR-JPG files
(2544x3056, 8-bit, quality 95) are 1.4 to 1.8 MB, and decoding cost is dominated
by JPEG entropy decoding, so a smooth synthetic image would decode unrealistically
fast. At 2544x3056 and quality 95 these files are in that size range too.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["synthetic_cxr_jpeg", "synthetic_cxr_pixels"]

# Standard deviation of the per-pixel grain, in 8-bit grey levels. Chosen so a
# 2544x3056 image at quality 95 is about 1.6 MB, like a real MIMIC-CXR-JPG file.
_NOISE_SIGMA = 2.0


def synthetic_cxr_pixels(seed: int, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Returns a synthetic chest-X-ray-like 8-bit grayscale image.

    Args:
        seed: Seeds the random variations (body shape, rib phase, noise); the
            same seed and size always give the same pixels.
        height: Rows, at least 1.
        width: Columns, at least 1.

    Returns:
        A ``(height, width)`` uint8 array.

    Raises:
        ValueError: If ``height`` or ``width`` is below 1.
    """
    if height < 1 or width < 1:
        raise ValueError(f"size must be at least 1x1, got {height}x{width}")
    rng = np.random.default_rng(seed)
    # Normalised coordinates: y from 0 (top) to 1, x from -1 (left) to 1.
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    jitter = rng.uniform(-0.04, 0.04, size=6).astype(np.float32)

    def ellipse(cx: float, cy: float, rx: float, ry: float) -> npt.NDArray[np.float32]:
        # 1 inside, falling smoothly to 0 across the edge (no hard, unrealistic step).
        r2 = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        return np.clip((1.15 - r2) * 4.0, 0.0, 1.0)

    body = ellipse(0.0, 0.62 + jitter[0], 0.88 + jitter[1], 0.62)
    lungs = ellipse(-0.40, 0.45 + jitter[2], 0.27, 0.32) + ellipse(
        0.40, 0.45 + jitter[3], 0.27, 0.32
    )
    heart = ellipse(0.12 + jitter[4], 0.62, 0.22, 0.16)
    spine = np.clip(1.0 - np.abs(x - jitter[5]) / 0.07, 0.0, 1.0)
    # Ribs: bands curving down from the spine, only visible over the lungs.
    ribs = 0.5 + 0.5 * np.sin(np.float32(38.0) * (y + 0.22 * x * x) + np.float32(seed % 7))

    image = np.float32(12.0) + 150.0 * body
    image -= lungs * (85.0 - 30.0 * ribs)
    image += 45.0 * heart * body + 40.0 * spine * body
    image += rng.standard_normal((height, width), dtype=np.float32) * np.float32(_NOISE_SIGMA)
    pixels: npt.NDArray[np.uint8] = np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)
    return pixels


def synthetic_cxr_jpeg(seed: int, height: int, width: int, quality: int = 95) -> bytes:
    """Returns a synthetic chest-X-ray-like 8-bit grayscale JPEG.

    At 2544 wide by 3056 high and quality 95 the file is 1.4 to 1.8 MB, the size
    class of MIMIC-CXR-JPG. The bytes are the same for the same arguments (with
    the same numpy and libjpeg).

    Args:
        seed: Seeds the random variations; see `synthetic_cxr_pixels`.
        height: Rows, at least 1.
        width: Columns, at least 1.
        quality: JPEG quality, 1 to 100.

    Returns:
        The JPEG file's bytes (baseline, no EXIF).

    Raises:
        ValueError: If the size or the quality is out of range.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1 to 100, got {quality}")
    buffer = io.BytesIO()
    Image.fromarray(synthetic_cxr_pixels(seed, height, width), mode="L").save(
        buffer, format="JPEG", quality=quality
    )
    return buffer.getvalue()
