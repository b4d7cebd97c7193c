"""`make demo-chexpert`: CheXpert ingestion on a synthetic sample.

Writes a small, clearly synthetic sample in the CheXpert-v1.0-small layout
(`datathon_etl.datasets.chexpert.synthetic`), runs the generated entry point
``datathon-etl chexpert ingest`` on it and prints one SQL query on the
labels table. Everything lands under ``demo-output/chexpert/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from datathon_etl.datasets.chexpert.synthetic import FOLDER, write_sample
from datathon_etl.framework.demo import run_command, show_query

QUERY = """
SELECT CASE split WHEN 0 THEN 'train' ELSE 'valid' END AS split,
       CASE view WHEN 0 THEN 'frontal' ELSE 'lateral' END AS view,
       count(*) AS images,
       count(*) FILTER (WHERE cardiomegaly = 3) AS cardiomegaly_positive,
       count(*) FILTER (WHERE cardiomegaly = 2) AS cardiomegaly_uncertain
FROM chexpert_labels
GROUP BY ALL
ORDER BY split, view
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the sample, ingests it, prints one query."""
    parser = argparse.ArgumentParser(prog="make demo-chexpert", description=__doc__)
    parser.add_argument(
        "--out", type=Path, default=Path("demo-output/chexpert"), help="output folder"
    )
    parser.add_argument("--patients", type=int, default=40, help="synthetic patients")
    args = parser.parse_args(argv)

    sample = args.out / "sample"
    print(f"demo: writing a SYNTHETIC CheXpert sample to {sample}/ ...", flush=True)
    paths = write_sample(sample, patients=args.patients)
    print(f"demo: {len(paths)} images", flush=True)

    from datathon_etl.generated.chexpert.ingest import main as ingest

    out = args.out / "ingest"
    command = [
        *("--input_prefix", f"{sample}/{FOLDER}/", "--path_match_regex", r".*\.jpg"),
        *("--input_csv", f"{sample}/{FOLDER}/train.csv", f"{sample}/{FOLDER}/valid.csv"),
        *("--output_dir", str(out), "--output_tfrecord_dir", str(out / "tfrecords")),
        *("--output_image_shape", "224", "224"),
    ]
    code = run_command("chexpert ingest", ingest, command, "ingestion")
    if code != 0:
        return code
    show_query(out / "tables.duckdb", QUERY)
    print(f"demo: TFRecords in {out / 'tfrecords'}/<train|valid>/<view>/, card {out}/_card.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
