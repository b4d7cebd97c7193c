"""`ImageOptions`: the image transform's flags, the same in every pipeline."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.images.formats import ImageFormat
from datathon_etl.framework.images.transform import DEFAULT_MAX_PIXELS, Aspect, ImageSpec

__all__ = ["ImageOptions", "image_spec_from_options"]


class ImageOptions(PipelineOptions):
    """How images are resized and re-encoded."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("image transform")
        group.add_argument(
            "--output_image_shape",
            type=int,
            nargs=2,
            metavar=("HEIGHT", "WIDTH"),
            default=[320, 320],
            help="Output height and width in pixels (default: 320 320).",
        )
        group.add_argument(
            "--output_channels",
            type=int,
            choices=(1, 3),
            default=1,
            help="1 for grayscale (default), 3 for RGB.",
        )
        group.add_argument(
            "--output_image_format",
            choices=[f.value for f in ImageFormat],
            default=ImageFormat.JPEG.value,
            help="Encoding of the output images (default: jpeg).",
        )
        group.add_argument(
            "--jpeg_quality",
            type=int,
            default=95,
            help="JPEG quality of the output images, 1-100 (default: 95).",
        )
        group.add_argument(
            "--aspect",
            choices=[a.value for a in Aspect],
            default=Aspect.STRETCH.value,
            help="How the aspect ratio is handled: stretch (the original pipelines' "
            "behaviour, default), pad (fit inside, black borders) or crop (centre crop).",
        )
        group.add_argument(
            "--max_pixels",
            type=int,
            default=DEFAULT_MAX_PIXELS,
            help="Images with more pixels are quarantined before they are decoded "
            f"(decompression bombs; default: {DEFAULT_MAX_PIXELS}).",
        )


def image_spec_from_options(options: PipelineOptions) -> ImageSpec:
    """Builds the `ImageSpec`; raises ValueError naming the flag that is wrong."""
    image = options.view_as(ImageOptions)
    height, width = image.output_image_shape
    try:
        return ImageSpec(
            height=height,
            width=width,
            channels=image.output_channels,
            format=ImageFormat(image.output_image_format),
            jpeg_quality=image.jpeg_quality,
            aspect=Aspect(image.aspect),
            max_pixels=image.max_pixels,
        )
    except (ValueError, TypeError) as error:
        raise ValueError(f"image flags: {error}") from error
