"""Train the small multi-label CNN in PyTorch on MIMIC-CXR Parquet shards; write predictions.

The PyTorch twin of ``train_mimic_cxr.py`` (same model, targets and loss),
for datathon teams; not part of the installed package. It reads the Parquet
shards written by ``datathon-etl mimic_cxr ingest --output_parquet_dir``
with Hugging Face ``datasets`` (images as ``uint8 [C, H, W]`` tensors,
labels as int64 codes), trains on one split, predicts another and writes a
predictions file that ``datathon-etl mimic_cxr evaluate`` scores as a team's
submission (the ids, one logit per target label), and with ``--onnx_out``
the model as ONNX, which ``datathon-etl mimic_cxr infer`` runs (with
``--normalize datathon_etl.framework.inference.preprocess:scale_to_unit_channels_first``)::

    pip install 'datathon-etl[torch]'   # torch==2.13.0
    python examples/train_mimic_cxr_torch.py \
        --train 'out/parquet/train/*/*.parquet' --predict 'out/parquet/valid/*/*.parquet' \
        --predictions_out teams/torch_cnn.parquet --epochs 1 --uncertain ignore
    datathon-etl mimic_cxr evaluate --submissions teams/ --labels_db out/tables.duckdb \
        --split valid

Pre-processing as the Keras example's: pixels divided by 255 (PIL decodes
the JPEGs here, TensorFlow in ``infer``: a pixel may differ by a few levels). ``positive``
is 1, ``negative`` and ``not_mentioned`` 0, ``uncertain`` as ``--uncertain``
says (``ignore``: left out of the loss for that label and image).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn
from torch.utils.data import DataLoader

from datathon_etl.datasets.mimic_cxr.schema import Finding
from datathon_etl.framework.evaluate import UncertainPolicy
from datathon_etl.generated.mimic_cxr import arrow_schema, features, rows

IGNORED = -1.0
"""The target value of a label left out of the loss."""


def load(pattern: str) -> datasets.Dataset:
    """The Parquet shards matching ``pattern`` as torch tensors (one row per image)."""
    data = datasets.load_dataset("parquet", data_files=pattern, split="train")
    return data.with_format("torch")


def targets(codes: torch.Tensor, policy: UncertainPolicy) -> torch.Tensor:
    """Maps Finding codes ``[batch, labels]`` to training targets: 1, 0 or `IGNORED`."""
    uncertain = {
        UncertainPolicy.IGNORE: IGNORED,
        UncertainPolicy.NEGATIVE: 0.0,
        UncertainPolicy.POSITIVE: 1.0,
    }[policy]
    positive = (codes == int(Finding.POSITIVE)).float()
    return torch.where(codes == int(Finding.UNCERTAIN), uncertain, positive)


def masked_binary_crossentropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy from logits, averaged over the labels that are not `IGNORED`."""
    mask = (target != IGNORED).float()
    per_label = nn.functional.binary_cross_entropy_with_logits(
        logits, target.clamp(min=0.0), reduction="none"
    )
    return ((per_label * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def build_model(channels: int, labels: int, width: int = 16) -> nn.Module:
    """A small CNN: four strided 3x3 convolutions, global pooling, one logit per label."""
    layers: list[nn.Module] = []
    for multiple in (1, 2, 4, 8):
        layers += [nn.Conv2d(channels, width * multiple, 3, stride=2, padding=1), nn.ReLU()]
        channels = width * multiple
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, labels)
    )


def pixels(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The batch's images, ``float32 [batch, C, H, W]`` in [0, 1]."""
    return batch[features.IMAGE_FEATURE].float() / 255.0


def train(model: nn.Module, data: datasets.Dataset, args: argparse.Namespace) -> float:
    """Trains ``model`` in place; returns the last batch's loss."""
    policy = UncertainPolicy(args.uncertain)
    loader = DataLoader(
        data, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(args.epochs):
        for batch in loader:
            codes = torch.stack([batch[name] for name in rows.TARGET_COLUMNS], dim=-1)
            loss = masked_binary_crossentropy(model(pixels(batch)), targets(codes, policy))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


def predict(model: nn.Module, data: datasets.Dataset, batch_size: int) -> pa.Table:
    """One predictions row per image: its ids, then one logit per target label."""
    model.eval()
    predictions = []
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=batch_size):
            logits = model(pixels(batch)).tolist()
            for index, output in enumerate(logits):
                ids = {name: batch[name][index] for name in rows.ID_COLUMNS}
                ids = {name: v if isinstance(v, str) else int(v) for name, v in ids.items()}
                predictions.append(rows.prediction_row(ids, output))
    return pa.Table.from_pylist(predictions, schema=arrow_schema.PREDICTIONS)


def export_onnx(model: nn.Module, shape: Sequence[int], path: str) -> None:
    """Saves ``model`` as ONNX with a dynamic batch dimension, input ``[batch, C, H, W]``."""
    model.eval()
    with warnings.catch_warnings():
        # The TorchScript exporter (deprecated, but it needs no onnxscript).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, *shape),),
            path,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Trains, predicts and writes the predictions; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="train_mimic_cxr_torch.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--train", required=True, help="Parquet glob of the training split")
    parser.add_argument("--predict", required=True, help="Parquet glob of the split to predict")
    parser.add_argument("--predictions_out", required=True, help="the .parquet file to write")
    parser.add_argument("--onnx_out", help="also save the model here, as .onnx, for infer")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=16, help="filters of the first layer")
    parser.add_argument(
        "--uncertain",
        default=UncertainPolicy.IGNORE.value,
        choices=[policy.value for policy in UncertainPolicy],
        help="what an uncertain label becomes: ignore (masked from the loss), negative, positive",
    )
    args = parser.parse_args(argv)
    if not args.predictions_out.endswith(".parquet"):
        parser.error("--predictions_out must end with .parquet")
    if args.onnx_out and not args.onnx_out.endswith(".onnx"):
        parser.error("--onnx_out must end with .onnx")

    torch.manual_seed(0)
    data = load(args.train)
    shape = data[0][features.IMAGE_FEATURE].shape  # [C, H, W]: ingestion makes them all alike
    model = build_model(shape[0], len(rows.TARGET_COLUMNS), args.width)
    started = time.monotonic()
    loss = train(model, data, args)
    predictions = predict(model, load(args.predict), args.batch_size)
    pq.write_table(predictions, args.predictions_out)
    if args.onnx_out:
        export_onnx(model, shape, args.onnx_out)
    print(
        f"train_mimic_cxr_torch: {args.epochs} epoch(s) on {len(data)} images in "
        f"{time.monotonic() - started:.1f} s, loss {loss:.4f}; {predictions.num_rows} "
        f"predictions written to {args.predictions_out}"
        + (f", model to {args.onnx_out}" if args.onnx_out else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
