"""`make demo-nih`: NIH ChestX-ray14 ingestion on a synthetic sample.

Writes a small, clearly synthetic sample in the release's layout
(`datathon_etl.datasets.nih_cxr14.synthetic`), runs the generated entry
point ``datathon-etl nih_cxr14 ingest`` on it with the split lists, and
prints one SQL query on the labels table: images and findings per split.
Everything lands under ``demo-output/nih/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from datathon_etl.datasets.nih_cxr14.synthetic import write_sample
from datathon_etl.framework.demo import run_command, show_query

QUERY = """
SELECT CASE split WHEN 0 THEN 'train_val' ELSE 'test' END AS split,
       count(*) AS images,
       count(DISTINCT patient) AS patients,
       count(*) FILTER (WHERE no_finding) AS no_finding,
       count(*) FILTER (WHERE effusion) AS effusion,
       count(*) FILTER (WHERE infiltration) AS infiltration
FROM nih_cxr14_labels
GROUP BY ALL
ORDER BY split DESC
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the sample, ingests it, prints one query."""
    parser = argparse.ArgumentParser(prog="make demo-nih", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output/nih"), help="output folder")
    parser.add_argument("--patients", type=int, default=40, help="synthetic patients")
    args = parser.parse_args(argv)

    sample_dir = args.out / "sample"
    print(f"demo: writing a SYNTHETIC NIH ChestX-ray14 sample to {sample_dir}/ ...", flush=True)
    sample = write_sample(sample_dir, patients=args.patients)
    print(f"demo: {len(sample.images)} images, {len(sample.test)} in test_list.txt", flush=True)

    from datathon_etl.generated.nih_cxr14.ingest import main as ingest

    out = args.out / "ingest"
    command = [
        *("--input_prefix", f"{sample_dir}/images/"),
        *("--input_csv", f"{sample_dir}/Data_Entry_2017_v2020.csv"),
        *("--split_lists", f"{sample_dir}/train_val_list.txt", f"{sample_dir}/test_list.txt"),
        *("--output_dir", str(out), "--output_tfrecord_dir", str(out / "tfrecords")),
        *("--output_image_shape", "224", "224"),
    ]
    code = run_command("nih_cxr14 ingest", ingest, command, "ingestion")
    if code != 0:
        return code
    show_query(out / "tables.duckdb", QUERY)
    print(f"demo: TFRecords in {out / 'tfrecords'}/<train_val|test>/, data card {out}/_card.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
