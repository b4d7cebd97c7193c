"""`make demo-jpg`: MIMIC-CXR-JPG 2.x ingestion on a synthetic sample.

Writes a small, clearly synthetic sample in the current PhysioNet layout (a
``files/`` tree of JPGs, the metadata, split, CheXpert and NegBio CSVs, with
one of each defect the ingestion handles), then runs the generated entry point
``datathon-etl mimic_cxr_jpg ingest`` on the embedded defaults (local files,
DuckDB), prints the leakage report and one SQL query on the labels table.
Everything lands under ``demo-output/jpg/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from datathon_etl.datasets.mimic_cxr_jpg.synthetic import write_sample
from datathon_etl.framework.demo import run_command, show_query

QUERY = """
SELECT CASE split WHEN 0 THEN 'train' WHEN 1 THEN 'validate' ELSE 'test' END AS split,
       CASE view WHEN 0 THEN 'frontal' WHEN 1 THEN 'lateral' WHEN 2 THEN 'other'
                 ELSE 'unknown' END AS view,
       count(*) AS images,
       count(*) FILTER (WHERE no_finding IS NULL) AS without_study_labels,
       count(*) FILTER (WHERE cardiomegaly = 3) AS cardiomegaly_positive
FROM mimic_cxr_jpg_labels
GROUP BY ALL
ORDER BY split, view
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the sample, ingests it, prints the reports and one query."""
    parser = argparse.ArgumentParser(prog="make demo-jpg", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output/jpg"), help="output folder")
    parser.add_argument("--images", type=int, default=100, help="well-formed images")
    parser.add_argument("--workers", type=int, default=2, help="local workers (threads)")
    parser.add_argument(
        "--labels_source", choices=("chexpert", "negbio"), default="chexpert", help="label file"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    sample_dir = args.out / "sample"
    print(f"demo: writing a SYNTHETIC MIMIC-CXR-JPG sample to {sample_dir}/ ...", flush=True)
    sample = write_sample(sample_dir, images=args.images, full_size=2)
    print(
        f"demo: {len(sample.images)} good images under {sample_dir}/files/, planted defects: "
        f"{', '.join(sample.defects)}",
        flush=True,
    )

    from datathon_etl.generated.mimic_cxr_jpg.ingest import main as ingest

    out = args.out / "ingest"
    command = [
        "--input_prefix",
        f"{sample_dir}/files/",
        "--input_csv",
        f"{sample_dir}/*.csv.gz",
        "--labels_source",
        args.labels_source,
        "--output_dir",
        str(out),
        "--output_jpg_dir",
        str(out / "jpg"),
        "--output_tfrecord_dir",
        str(out / "tfrecords"),
        "--output_image_shape",
        "320",
        "320",
        # The planted defects are quarantined on purpose: let them pass.
        "--max_bad_fraction",
        "0.25",
        "--direct_running_mode",
        "multi_threading",
        "--direct_num_workers",
        str(args.workers),
    ]
    code = run_command("mimic_cxr_jpg ingest", ingest, command, "ingestion")
    if code != 0:
        return code

    leakage = json.loads((out / "_leakage.json").read_text())
    print(f"\ndemo: patient leakage report ({out / '_leakage.json'}):")
    print(json.dumps(leakage, indent=2))
    database = out / "tables.duckdb"
    show_query(database, QUERY)
    print(
        "demo: outputs\n"
        f"  resized JPGs   {out / 'jpg'}/files/...\n"
        f"  TFRecords      {out / 'tfrecords'}/<train|validate|test>/<view>/data-*.tfrecord\n"
        f"  labels table   {database} (mimic_cxr_jpg_labels)\n"
        f"  quarantine     {out / '_quarantine'}/ (the planted defects)\n"
        f"  manifest       {out / '_manifest.json'}\n"
        f"demo: done in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
