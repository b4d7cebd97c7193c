"""`CardOptions`: whether an ingestion ends by writing its data card, and with images."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

__all__ = ["CardOptions"]


class CardOptions(PipelineOptions):
    """``--no_card`` and ``--card_without_images``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("data card")
        group.add_argument(
            "--no_card",
            action="store_true",
            default=False,
            help=(
                "Do not write <output_dir>/_card.html, the data set's card (one self-contained "
                "page: counts, label prevalence, leakage, quarantine, thumbnails, dictionary). "
                "`datathon-etl card OUTPUT_DIR` writes it later."
            ),
        )
        group.add_argument(
            "--card_without_images",
            action="store_true",
            default=False,
            help=(
                "Leave the thumbnails out of the card, for a card shared beyond those "
                "allowed to see the images."
            ),
        )
