"""Train a small multi-label Keras CNN on MIMIC-CXR TFRecords; save it as ``.keras``.

An example for datathon teams, not part of the installed package. It reads
the TFRecords written by ``datathon-etl mimic_cxr ingest`` through the
generated ``tf.data`` loader (``generated/mimic_cxr/features.py``), trains
one logit per CheXpert label, and saves a model that ``datathon-etl
mimic_cxr infer`` can run as is::

    python examples/train_mimic_cxr.py \
        --tfrecords 'out/tfrecords/train/*/*.tfrecord' \
        --model_out model.keras --epochs 1 --uncertain ignore

Pre-processing matches the inference pipeline's default: the image decoded
as stored (``uint8 [H, W, C]``) and divided by 255. Labels: ``positive`` is
1, ``negative`` and ``not_mentioned`` are 0, and ``uncertain`` follows
``--uncertain``: ``ignore`` (masked out of the loss for that label and
image), ``negative`` (0) or ``positive`` (1). The model outputs logits, as
the predictions table stores them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from datathon_etl.datasets.mimic_cxr.schema import Finding
from datathon_etl.framework.evaluate import UncertainPolicy
from datathon_etl.generated.mimic_cxr import features, rows

IGNORED = -1.0
"""The target value of a label left out of the loss."""


def targets(labels: tf.Tensor, policy: UncertainPolicy) -> tf.Tensor:
    """Maps Finding codes to training targets: 1, 0, or `IGNORED` (-1).

    Args:
        labels: ``int64 [..., labels]`` Finding codes.
        policy: What ``uncertain`` becomes.

    Returns:
        ``float32`` targets of the same shape.
    """
    uncertain = {
        UncertainPolicy.IGNORE: IGNORED,
        UncertainPolicy.NEGATIVE: 0.0,
        UncertainPolicy.POSITIVE: 1.0,
    }[policy]
    positive = tf.cast(tf.equal(labels, int(Finding.POSITIVE)), tf.float32)
    return tf.where(tf.equal(labels, int(Finding.UNCERTAIN)), uncertain, positive)


@keras.saving.register_keras_serializable(package="datathon_etl_examples")
def masked_binary_crossentropy(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Binary cross-entropy from logits, averaged over the labels that are not `IGNORED`."""
    mask = tf.cast(tf.not_equal(y_true, IGNORED), tf.float32)
    per_label = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.maximum(y_true, 0.0), logits=logits
    )
    return tf.reduce_sum(per_label * mask, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)


def image_shape(pattern: str | Sequence[str]) -> list[int]:
    """The first image's shape ``[H, W, C]``: ingestion makes them all the same."""
    for parsed in features.load_dataset(pattern).take(1):
        return [int(d) for d in parsed[features.IMAGE_FEATURE].shape]
    raise ValueError(f"{pattern}: no TFRecord example found")


def training_data(
    pattern: str | Sequence[str], policy: UncertainPolicy, batch_size: int, shape: Sequence[int]
) -> tf.data.Dataset:
    """(image / 255, targets) batches from the generated loader."""
    target_columns = list(rows.TARGET_COLUMNS)

    def to_pair(parsed: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        pixels = tf.ensure_shape(parsed[features.IMAGE_FEATURE], shape)
        image = tf.cast(pixels, tf.float32) / 255.0
        codes = tf.stack([parsed[name] for name in target_columns])
        return image, targets(codes, policy)

    return (
        features.load_dataset(pattern)
        .map(to_pair, num_parallel_calls=tf.data.AUTOTUNE)
        .shuffle(256, seed=0)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def build_model(input_shape: Sequence[int], labels: int, width: int = 16) -> keras.Model:
    """A small CNN: four strided 3x3 convolutions, global pooling, one logit per label."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for multiple in (1, 2, 4, 8):
        x = keras.layers.Conv2D(width * multiple, 3, strides=2, padding="same", activation="relu")(
            x
        )
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(labels, name="logits")(x)
    return keras.Model(inputs, outputs, name="mimic_cxr_small_cnn")


def main(argv: Sequence[str] | None = None) -> int:
    """Trains and saves the model; returns the exit code."""
    parser = argparse.ArgumentParser(prog="train_mimic_cxr.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tfrecords", nargs="+", required=True, help="TFRecord glob(s), local or gs://"
    )
    parser.add_argument("--model_out", required=True, help="where to save the .keras model")
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
    if not args.model_out.endswith(".keras"):
        parser.error("--model_out must end with .keras")

    keras.utils.set_random_seed(0)
    shape = image_shape(args.tfrecords)
    data = training_data(args.tfrecords, UncertainPolicy(args.uncertain), args.batch_size, shape)
    model = build_model(shape, len(rows.TARGET_COLUMNS), args.width)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate), loss=masked_binary_crossentropy
    )
    started = time.monotonic()
    with warnings.catch_warnings():
        # Keras warns at the end of every epoch of a dataset of unknown length.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history: Any = model.fit(data, epochs=args.epochs, shuffle=False, verbose=2)
    model.save(args.model_out)
    loss = history.history["loss"][-1]
    print(
        f"train_mimic_cxr: {args.epochs} epoch(s) in {time.monotonic() - started:.1f} s, "
        f"loss {loss:.4f}; model (input {shape}, "
        f"{len(rows.TARGET_COLUMNS)} logits) saved to {args.model_out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
