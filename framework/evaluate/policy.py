"""The label policy: which stored label values count as positive, negative or uncertain.

`label_codes` reads it from a label's declaration (codegen writes the result
into the generated package's ``dataset.json``, which `evaluation_spec`
reads): for a coded label, the code named ``positive`` is positive, the code named
``uncertain`` is uncertain, every other code (``negative``,
``not_mentioned``) is negative, as the predictions table's column
descriptions say; for a ``bool`` label, true is positive. For MIMIC-CXR: 3
positive; 1 and 0 negative; 2 uncertain. Uncertain labels follow
``--uncertain``: ``ignore`` (left out of that label's AUROC and counted as
``excluded``), ``negative`` or ``positive``. A NULL label is always excluded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

import attrs
import pyarrow as pa

from datathon_etl.framework.schema.ir import Column
from datathon_etl.framework.schema.package import DatasetPackage

__all__ = [
    "Code",
    "EvaluationSpec",
    "LabelCodes",
    "UncertainPolicy",
    "evaluation_spec",
    "label_codes",
]

Code = int | bool


class UncertainPolicy(StrEnum):
    """What an uncertain label counts as, in training and in evaluation."""

    IGNORE = "ignore"
    NEGATIVE = "negative"
    POSITIVE = "positive"


def _codes(values: Sequence[Code]) -> tuple[Code, ...]:
    return tuple(values)


@attrs.frozen
class LabelCodes:
    """Which stored values of one label column are positive, negative or uncertain.

    Values in none of the three (and NULL) are excluded.

    Attributes:
        column: The label's column, in the labels and the predictions.
        positive: Values that count as positive.
        negative: Values that count as negative.
        uncertain: Values that count as ``--uncertain`` says.
    """

    column: str
    positive: tuple[Code, ...] = attrs.field(converter=_codes)
    negative: tuple[Code, ...] = attrs.field(converter=_codes)
    uncertain: tuple[Code, ...] = attrs.field(default=(), converter=_codes)

    def outcome(self, value: Code | None, policy: UncertainPolicy) -> int | None:
        """1 (positive), 0 (negative) or None (excluded), as the SQL decides."""
        if value is None:
            return None
        if value in self.positive:
            return 1
        if value in self.negative:
            return 0
        if value in self.uncertain and policy is not UncertainPolicy.IGNORE:
            return 1 if policy is UncertainPolicy.POSITIVE else 0
        return None


def label_codes(column: Column) -> LabelCodes | None:
    """The codes of a target label as the rule above reads them; None if it cannot be scored.

    A label can be scored when it is coded with a code named ``positive``, or a ``bool``.
    """
    if column.enum is not None:
        codes = column.enum.codes
        positive = tuple(c.value for c in codes if c.name == "positive")
        if not positive:
            return None
        uncertain = tuple(c.value for c in codes if c.name == "uncertain")
        negative = tuple(c.value for c in codes if c.value not in positive + uncertain)
        return LabelCodes(column.name, positive, negative, uncertain)
    if column.type.name == "bool":
        return LabelCodes(column.name, positive=(True,), negative=(False,))
    return None


def _label_tuple(labels: Iterable[LabelCodes]) -> tuple[LabelCodes, ...]:
    return tuple(labels)


def _splits(splits: Mapping[str, int]) -> dict[str, int]:
    return dict(splits)


@attrs.frozen
class EvaluationSpec:
    """A dataset's evaluation (built by `evaluation_spec` from its generated package).

    Attributes:
        dataset: The dataset's name.
        labels: One entry per evaluated label, in model output order (any
            sequence; kept as a tuple).
        predictions_schema: The predictions table's Arrow schema (generated):
            what a submission's columns must be.
        ids: The id columns (the key, then ``path``), in both tables.
        split: The labels' split column, or None (every labels row is scored).
        splits: Split name -> its code in ``split``.
        patient: The column naming the patient, which the bootstrap
            resamples; None: each image is its own patient.
    """

    dataset: str
    labels: tuple[LabelCodes, ...] = attrs.field(converter=_label_tuple)
    predictions_schema: pa.Schema = attrs.field(factory=lambda: pa.schema([]))
    ids: tuple[str, ...] = ("path",)
    split: str | None = None
    splits: dict[str, int] = attrs.field(factory=dict, converter=_splits)
    patient: str | None = None


def evaluation_spec(package: DatasetPackage) -> EvaluationSpec:
    """The evaluation of a generated package's data set (its ``evaluation`` declaration)."""
    declared = package.evaluation
    return EvaluationSpec(
        dataset=package.name,
        labels=[LabelCodes(**codes) for codes in declared["labels"]],
        predictions_schema=package.predictions_schema,
        ids=package.rows.id_columns,
        split=declared["split"],
        splits=declared["splits"],
        patient=declared["patient"],
    )
