"""`make demo`: the MIMIC-CXR ingestion on a synthetic sample, on the embedded defaults.

Writes a small synthetic sample in the legacy layout, runs the generated
ingestion entry point on it (local files, DuckDB), and queries the labels
table with SQL. Everything lands under ``demo-output/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from datathon_etl.datasets.mimic_cxr.synthetic import write_sample

QUERY = """
SELECT CASE view WHEN 0 THEN 'frontal' WHEN 1 THEN 'lateral' ELSE 'other' END AS view,
       CASE dataset WHEN 0 THEN 'train' ELSE 'valid' END AS split,
       count(*) AS images,
       count(*) FILTER (WHERE cardiomegaly = 3) AS cardiomegaly_positive,
       count(*) FILTER (WHERE edema = 2) AS edema_uncertain
FROM mimic_cxr_labels
GROUP BY ALL
ORDER BY split, view
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the sample, ingests it, prints where everything is and one query."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--images", type=int, default=100, help="images in the sample")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    args = parser.parse_args(argv)

    started = time.monotonic()
    sample_dir = args.out / "sample"
    print(f"demo: writing a SYNTHETIC legacy MIMIC-CXR sample to {sample_dir}/ ...", flush=True)
    sample = write_sample(sample_dir, images=args.images, full_size=4)
    print(
        f"demo: {len(sample.images)} images in {len(sample.tars)} tars, "
        f"labels in {', '.join(p.name for p in sample.csvs)}",
        flush=True,
    )

    from datathon_etl.generated.mimic_cxr.ingest import main as ingest

    out = args.out / "ingest"
    command = [
        "--input_tars",
        str(sample_dir / "*.tar"),
        "--input_csv",
        str(sample_dir / "*.csv.gz"),
        "--output_dir",
        str(out),
        "--output_jpg_dir",
        str(out / "jpg"),
        "--output_tfrecord_dir",
        str(out / "tfrecords"),
        "--output_image_shape",
        "320",
        "320",
        "--direct_running_mode",
        "multi_processing",
        "--direct_num_workers",
        str(args.workers),
    ]
    print("demo: datathon-etl mimic_cxr ingest " + " ".join(command), flush=True)
    code = ingest(command)
    if code != 0:
        print(f"demo: ingestion failed with exit code {code}", file=sys.stderr)
        return code

    database = out / "tables.duckdb"
    print(f"\ndemo: one SQL query on the labels table ({database}):{QUERY}")
    with duckdb.connect(str(database), read_only=True) as db:
        db.sql(QUERY).show()
    print(
        "demo: outputs\n"
        f"  resized JPGs   {out / 'jpg'}/\n"
        f"  TFRecords      {out / 'tfrecords'}/<split>/<view>/data-*.tfrecord\n"
        f"  labels table   {database} (table mimic_cxr_labels)\n"
        f"  manifest       {out / '_manifest.json'}\n"
        f"demo: done in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
