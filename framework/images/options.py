"""`ImageOptions`: the image transform's flags, the same in every pipeline; `ImageTreeOptions`."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from datathon_etl.framework.images.dicom import DicomOptions, MultiFrame, Window
from datathon_etl.framework.images.formats import OUTPUT_FORMATS, ImageFormat
from datathon_etl.framework.images.transform import DEFAULT_MAX_PIXELS, Aspect, ImageSpec

__all__ = ["ImageOptions", "ImageTreeOptions", "image_spec_from_options"]


class ImageTreeOptions(PipelineOptions):
    """Where the resized images go as files (the original ``--output_jpg_dir``)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument_group("image tree").add_argument(
            "--output_jpg_dir",
            default=None,
            help=(
                "Write the resized images here, at their relative paths, named for "
                "their output format: a.jpg stays a.jpg, a.png becomes a.png.jpg, "
                "b.dcm becomes b.jpg (with --output_image_format png: a.jpg.png, "
                "a.png, b.png) (optional)."
            ),
        )


class ImageOptions(PipelineOptions):
    """How images are resized and re-encoded."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("image transform")
        group.add_argument(
            "--output_image_shape",
            type=int,
            nargs="+",
            metavar="HEIGHT WIDTH [CHANNELS]",
            default=[320, 320],
            help=(
                "Output height and width in pixels (default: 320 320), optionally "
                "followed by the channels (1 or 3), as the original pipelines took it."
            ),
        )
        group.add_argument(
            "--output_channels",
            type=int,
            choices=(1, 3),
            default=None,
            help="1 for grayscale (default), 3 for RGB.",
        )
        group.add_argument(
            "--output_image_format",
            choices=[f.value for f in OUTPUT_FORMATS],
            default=None,
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
        group.add_argument(
            "--output_bit_depth",
            type=int,
            choices=(8, 16),
            default=8,
            help="8 (default) or 16: 16-bit grayscale PNG, keeping the precision of "
            "16-bit PNG and DICOM sources (needs --output_image_format png, 1 channel).",
        )
        dicom = parser.add_argument_group("DICOM input")
        dicom.add_argument(
            "--dicom_window",
            choices=[w.value for w in Window],
            default=Window.STORED.value,
            help="The VOI window of grey DICOM images: stored (the file's VOI LUT or "
            "first window, min-max where it has none; default), fixed "
            "(--dicom_window_center and --dicom_window_width) or minmax (each "
            "image's own range).",
        )
        dicom.add_argument(
            "--dicom_window_center",
            type=float,
            default=None,
            help="The fixed window's centre, in modality units (HU for CT).",
        )
        dicom.add_argument(
            "--dicom_window_width",
            type=float,
            default=None,
            help="The fixed window's width, in modality units (> 1).",
        )
        dicom.add_argument(
            "--dicom_multi_frame",
            choices=[m.value for m in MultiFrame],
            default=MultiFrame.REFUSE.value,
            help="Files of several frames: refuse (quarantined as multi_frame; default) "
            "or take the first frame.",
        )


def image_spec_from_options(
    options: PipelineOptions, source_format: ImageFormat | None = None
) -> ImageSpec:
    """Builds the `ImageSpec`; raises ValueError naming the flag that is wrong.

    Args:
        options: The pipeline's options.
        source_format: The only input format accepted (the original
            ``--image_format``), which is also the output's unless
            ``--output_image_format`` says the same; None: any.
    """
    image = options.view_as(ImageOptions)
    shape = list(image.output_image_shape)
    if len(shape) not in (2, 3):
        raise ValueError(
            f"--output_image_shape takes HEIGHT WIDTH [CHANNELS], got {len(shape)} values"
        )
    height, width, *channels = shape
    if channels and image.output_channels not in (None, channels[0]):
        raise ValueError(
            f"--output_image_shape says {channels[0]} channels, --output_channels "
            f"{image.output_channels}; give one"
        )
    if channels and channels[0] not in (1, 3):
        raise ValueError(f"--output_image_shape: channels must be 1 or 3, got {channels[0]}")
    output_format = image.output_image_format or source_format or ImageFormat.JPEG
    if source_format is not None and ImageFormat(output_format) is not source_format:
        raise ValueError(
            f"--image_format {source_format} writes {source_format} images, as the "
            f"original did; --output_image_format {output_format} contradicts it"
        )
    try:
        return ImageSpec(
            height=height,
            width=width,
            channels=(channels or [image.output_channels or 1])[0],
            format=ImageFormat(output_format),
            source_format=source_format,
            jpeg_quality=image.jpeg_quality,
            aspect=Aspect(image.aspect),
            max_pixels=image.max_pixels,
            bit_depth=image.output_bit_depth,
            dicom=DicomOptions(
                window=image.dicom_window,
                window_center=image.dicom_window_center,
                window_width=image.dicom_window_width,
                multi_frame=image.dicom_multi_frame,
            ),
        )
    except (ValueError, TypeError) as error:
        raise ValueError(f"image flags: {error}") from error
