"""The scale bench's layouts: each data set's writer writes the count asked, all ingested.

`bench.scale` runs each layout at its release's image count; here each
writer runs at a small count through the layout's real generated ingestion,
so that a writer that writes too few or too many images, or inputs the
command refuses, fails here and not an hour into a bench.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from datathon_etl.framework.manifest import Manifest

_BENCH = Path(__file__).parents[1] / "bench"
if "bench" not in sys.modules:
    # Imported from its folder: the repository root on the path would put its
    # `datasets/` in place of Hugging Face's `datasets`.
    _spec = importlib.util.spec_from_file_location(
        "bench", _BENCH / "__init__.py", submodule_search_locations=[str(_BENCH)]
    )
    assert _spec is not None
    assert _spec.loader is not None
    sys.modules["bench"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["bench"])

from bench import scale  # noqa: E402

IMAGES = 23
"""Odd, so that the last patient or study is cut short."""


@pytest.mark.parametrize("layout", scale.LAYOUTS, ids=lambda layout: layout.name)
def test_each_layout_writes_the_count_asked_and_all_are_ingested(
    layout: scale.Layout, tmp_path: Path
) -> None:
    flags = layout.write(tmp_path / "in", IMAGES)
    out = tmp_path / "out"
    main = importlib.import_module(layout.module).main
    code = main(
        [
            *flags,
            *("--output_dir", str(out), "--output_jpg_dir", str(out / "jpg")),
            *("--output_tfrecord_dir", str(out / "tfrecords")),
            *("--output_image_shape", "64", "64", "--no_card"),
        ]
    )
    assert code == 0
    manifest = Manifest.read(str(out / "_manifest.json"))
    manifest.check()
    images = manifest.stages["images"]
    assert (images.written, sum(images.quarantined.values())) == (IMAGES, 0)
    assert len([p for p in (out / "jpg").rglob("*") if p.is_file()]) == IMAGES
