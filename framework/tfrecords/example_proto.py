"""The `tf.train.Example` protobuf messages, without importing TensorFlow.

TensorFlow costs about 3 CPU-seconds and 0.5 GB per process to import; the
ingestion only needs the Example message to write records. These classes are
built from the same message definitions as TensorFlow's ``example.proto`` and
``feature.proto``, so they produce the same bytes. They live in a private
descriptor pool so that TensorFlow, when a process imports it too, can still
register its own copy in the default pool.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto as Field

__all__ = ["ExampleProto"]

_PACKAGE = "tensorflow"


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="datathon_etl/tensorflow_example.proto", package=_PACKAGE, syntax="proto3"
    )

    def message(name: str, *fields: Field) -> descriptor_pb2.DescriptorProto:
        proto = file.message_type.add(name=name)
        proto.field.extend(fields)
        return proto

    def field(
        name: str, number: int, kind: int, *, repeated: bool = False, type_name: str = ""
    ) -> Field:
        label = Field.LABEL_REPEATED if repeated else Field.LABEL_OPTIONAL
        proto = Field(name=name, number=number, type=kind, label=label)
        if type_name:
            proto.type_name = type_name
        return proto

    message("BytesList", field("value", 1, Field.TYPE_BYTES, repeated=True))
    message("FloatList", field("value", 1, Field.TYPE_FLOAT, repeated=True))
    message("Int64List", field("value", 1, Field.TYPE_INT64, repeated=True))
    feature = message(
        "Feature",
        field("bytes_list", 1, Field.TYPE_MESSAGE, type_name=".tensorflow.BytesList"),
        field("float_list", 2, Field.TYPE_MESSAGE, type_name=".tensorflow.FloatList"),
        field("int64_list", 3, Field.TYPE_MESSAGE, type_name=".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for list_field in feature.field:
        list_field.oneof_index = 0
    features = message(
        "Features",
        field(
            "feature",
            1,
            Field.TYPE_MESSAGE,
            repeated=True,
            type_name=".tensorflow.Features.FeatureEntry",
        ),
    )
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.extend(
        [
            field("key", 1, Field.TYPE_STRING),
            field("value", 2, Field.TYPE_MESSAGE, type_name=".tensorflow.Feature"),
        ]
    )
    message("Example", field("features", 1, Field.TYPE_MESSAGE, type_name=".tensorflow.Features"))
    return file


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())

ExampleProto: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.Example")
)
"""The ``tensorflow.Example`` message class (wire-compatible with `tf.train.Example`)."""
