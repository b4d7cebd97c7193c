"""`make demo`: MIMIC-CXR from raw files to a scored model, on a synthetic sample.

Writes a small synthetic sample in the legacy layout, then runs, on the
embedded defaults (local files, DuckDB):

1. the generated ingestion entry point (JPGs, TFRecords, WebDataset and
   Parquet shards, labels table, and the data card ``_card.html``), and one
   SQL query on the labels table's decoded view;
2. ``examples/train_mimic_cxr.py``: one short epoch of a small CNN on the
   train split's TFRecords, saved as ``.keras``;
3. ``datathon-etl mimic_cxr infer``: batched predictions of the valid split
   into a team's predictions file (``teams/small_cnn.duckdb``);
4. ``datathon-etl mimic_cxr evaluate``: the teams folder scored against the
   valid split's labels: per-label and mean AUROC with bootstrap intervals,
   a leaderboard printed and written as a table beside the labels, and as a
   page (``datathon-etl card --leaderboard``).

Everything lands under ``demo-output/``. The labels are random, so expect
AUROCs near 0.5: the point is the path, not the model.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datathon_etl.datasets.mimic_cxr.synthetic import write_sample
from datathon_etl.framework.demo import run_command, show_query

QUERY = """
SELECT view, dataset AS split,
       count(*) AS images,
       count(*) FILTER (WHERE cardiomegaly = 'positive') AS cardiomegaly_positive,
       count(*) FILTER (WHERE edema = 'uncertain') AS edema_uncertain
FROM mimic_cxr_labels_decoded
GROUP BY ALL
ORDER BY split, view
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Builds the sample, ingests it, prints where everything is and one query."""
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    parser.add_argument("--images", type=int, default=100, help="images in the sample")
    parser.add_argument("--workers", type=int, default=2, help="local workers (threads)")
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
    command = ingest_args(sample_dir, out, args.workers)
    code = run_command("mimic_cxr ingest", ingest, command, "ingestion")
    if code != 0:
        return code

    database = out / "tables.duckdb"
    show_query(database, QUERY, "the labels table's decoded view")

    model = args.out / "model" / "mimic_cxr_small_cnn.keras"
    code = _train(out / "tfrecords", model)
    if code != 0:
        return code
    teams = args.out / "teams"
    teams.mkdir(parents=True, exist_ok=True)
    predictions = f"{teams / 'small_cnn.duckdb'}:mimic_cxr_predictions"
    code = _infer(out / "tfrecords", model, args.out / "infer", predictions, args.workers)
    if code != 0:
        return code

    from datathon_etl.generated.mimic_cxr.evaluate import main as evaluate

    # The sample is small: a label needs only 2 positives and 2 negatives to be ranked.
    command = ["--submissions", str(teams), "--labels_db", str(database), "--split", "valid"]
    command += ["--min_positives", "2"]
    print()
    code = run_command("mimic_cxr evaluate", evaluate, command, "evaluation")
    if code != 0:
        return code
    from datathon_etl.framework.card import CardError
    from datathon_etl.framework.card.command import write_leaderboard_page

    try:
        leaderboard = write_leaderboard_page(f"{database}:mimic_cxr_leaderboard")
    except CardError as e:
        print(f"demo: no leaderboard page: {e}", file=sys.stderr)
        return 1
    print(
        "demo: (SYNTHETIC random labels: AUROCs near 0.5 are expected)\n"
        "demo: outputs\n"
        f"  resized JPGs       {out / 'jpg'}/\n"
        f"  TFRecords          {out / 'tfrecords'}/<split>/<view>/data-*.tfrecord\n"
        f"  WebDataset         {out / 'webdataset'}/<split>/<view>/data-*.tar\n"
        f"  Parquet            {out / 'parquet'}/<split>/<view>/data-*.parquet "
        "(examples/train_mimic_cxr_torch.py trains on them)\n"
        f"  tables             {database} (mimic_cxr_labels and its _decoded view, "
        "mimic_cxr_leaderboard)\n"
        f"  predictions        {predictions}\n"
        f"  trained model      {model}\n"
        f"  manifests          {out / '_manifest.json'}, {args.out / 'infer' / '_manifest.json'}\n"
        f"  data card          {out / '_card.html'} (open it in a browser)\n"
        f"  leaderboard page   {leaderboard}\n"
        f"demo: done in {time.monotonic() - started:.0f} s"
    )
    return 0


def ingest_args(sample_dir: Path, out: Path, workers: int) -> list[str]:
    """The demo's ingestion command line: every output, and the data card, under ``out``."""
    return [
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
        "--output_webdataset_dir",
        str(out / "webdataset"),
        "--output_parquet_dir",
        str(out / "parquet"),
        "--output_image_shape",
        "320",
        "320",
        "--direct_running_mode",
        "multi_threading",
        "--direct_num_workers",
        str(workers),
    ]


def _train(tfrecords: Path, model: Path) -> int:
    """Runs ``examples/train_mimic_cxr.py`` in this process: one short epoch on the train split."""
    script = Path(__file__).resolve().parents[2] / "examples" / "train_mimic_cxr.py"
    if not script.is_file():
        print(f"demo: {script} is missing (run the demo from a checkout)", file=sys.stderr)
        return 1
    model.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "--tfrecords",
        str(tfrecords / "train" / "*" / "*.tfrecord"),
        "--model_out",
        str(model),
        "--epochs",
        "1",
        "--uncertain",
        "ignore",
    ]
    shown = script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd()) else script
    print(f"\ndemo: python {shown} " + " ".join(command), flush=True)
    train: Any = runpy.run_path(str(script))["main"]
    code: int = train(command)
    return code


def _infer(tfrecords: Path, model: Path, out: Path, table: str, workers: int) -> int:
    """Predicts the valid split into ``table``."""
    from datathon_etl.generated.mimic_cxr.infer import main as infer

    command = [
        "--input_tfrecord_pattern",
        str(tfrecords / "valid" / "*" / "*.tfrecord"),
        "--keras_model",
        str(model),
        "--predictions_table",
        table,
        "--output_dir",
        str(out),
        "--direct_running_mode",
        "multi_threading",
        "--direct_num_workers",
        str(workers),
    ]
    print()
    return run_command("mimic_cxr infer", infer, command, "inference")


if __name__ == "__main__":
    sys.exit(main())
