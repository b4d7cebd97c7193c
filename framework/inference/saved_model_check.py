"""Refuses a SavedModel that could do more than compute on tensors, before TensorFlow loads it.

A SavedModel is a program: its graph and the functions in its library may
hold ops that read and write files (``ReadFile``, ``WriteFile``,
``MatchingFiles``), run Python (``PyFunc``, ``EagerPyFunc``), open sockets,
print to a path, or read datasets and queues. `check_saved_model` reads
``saved_model.pb`` as a protocol buffer (nothing is loaded or run) and
accepts it only when every op of its graph and of every function in its
library is on `PURE_OPS`, an allow-list of ops that compute tensors from
tensors and in-memory variables. Anything else is refused, naming the op
and the function that holds it.

One exception, the checkpoint: TensorFlow writes into every SavedModel a
save and a restore function (named by the meta graph's ``saver_def``) that
call `CHECKPOINT_OPS` (``SaveV2``, ``RestoreV2``, ...). TensorFlow 2's loader
never calls them: it restores the variables itself, from the model's own
``variables/`` folder. Those ops are accepted in functions reachable only
from the saver's nodes; the same op anywhere else is refused.

A SavedModel without an object graph (TensorFlow 1's format) is refused
whole: loading it runs its graph's restore and init ops.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Set
from typing import Any

__all__ = ["CHECKPOINT_OPS", "PURE_OPS", "UnsafeModelError", "check_saved_model"]

PURE_OPS: frozenset[str] = frozenset(
    {
        # Constants, placeholders, plumbing.
        *("Const", "Placeholder", "PlaceholderWithDefault", "Identity", "IdentityN", "NoOp"),
        *("StopGradient", "PreventGradient", "EnsureShape", "Snapshot", "CheckNumerics"),
        *("Assert",),  # fails the call with its message; reads and writes nothing
        # Calls and control flow (the functions they call are checked too).
        *("PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While"),
        *("StatelessWhile", "Case", "StatelessCase"),
        # Variables held in memory.
        *("VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp"),
        *("AssignAddVariableOp", "AssignSubVariableOp", "DestroyResourceOp"),
        *("DisableCopyOnRead", "ResourceGather"),
        # Element-wise arithmetic and comparisons.
        *("Add", "AddV2", "AddN", "Sub", "Mul", "MulNoNan", "Div", "RealDiv", "DivNoNan"),
        *("FloorDiv", "FloorMod", "TruncateDiv", "Mod", "Maximum", "Minimum", "Neg", "Abs"),
        *("Sign", "Square", "SquaredDifference", "Sqrt", "Rsqrt", "Reciprocal", "Inv", "Pow"),
        *("Exp", "Expm1", "Log", "Log1p", "Floor", "Ceil", "Round", "Rint", "Erf", "Erfc"),
        *("Sin", "Cos", "Tan", "Atan", "Atan2", "Sinh", "Cosh", "IsNan", "IsInf", "IsFinite"),
        *("ClipByValue", "Equal", "NotEqual", "Less", "LessEqual", "Greater"),
        *("GreaterEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "Select", "SelectV2"),
        # Activations.
        *("Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus"),
        *("Softsign", "Softmax", "LogSoftmax"),
        # Linear algebra, convolutions, pooling, normalisation.
        *("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "BiasAdd"),
        *("Conv2D", "Conv3D", "Conv2DBackpropInput", "Conv3DBackpropInputV2"),
        *("DepthwiseConv2dNative", "MaxPool", "MaxPoolV2", "MaxPool3D", "AvgPool"),
        *("AvgPool3D", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "LRN"),
        *("MatrixBandPart", "MatrixDiag", "MatrixDiagV3", "MatrixDiagPartV3"),
        # Reductions and scans.
        *("Sum", "Mean", "Max", "Min", "Prod", "All", "Any", "ArgMax", "ArgMin", "Cumsum"),
        *("Cumprod", "TopKV2"),
        # Shapes, indexing, layout.
        *("Shape", "ShapeN", "Size", "Rank", "Reshape", "Squeeze", "ExpandDims"),
        *("Transpose", "ConcatV2", "Concat", "Pack", "Unpack", "Split", "SplitV", "Slice"),
        *("StridedSlice", "Tile", "Pad", "PadV2", "MirrorPad", "Fill", "ZerosLike"),
        *("OnesLike", "Range", "BroadcastTo", "BroadcastArgs", "BroadcastGradientArgs"),
        *("Gather", "GatherV2", "GatherNd", "OneHot", "Where", "ReverseV2", "Cast"),
        *("Bitcast", "SpaceToDepth", "DepthToSpace", "SpaceToBatchND", "BatchToSpaceND"),
        # Image resizing.
        *("ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic", "ResizeArea"),
    }
)
"""Ops that compute tensors from tensors and in-memory variables, and nothing else."""

CHECKPOINT_OPS: frozenset[str] = frozenset(
    {
        *("SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "ShardedFilespec"),
        *("StringJoin", "StaticRegexFullMatch"),
    }
)
"""Ops of the checkpoint functions every SavedModel holds, which the loader never calls."""

_SAVED_MODEL_FILE = "saved_model.pb"


class UnsafeModelError(ValueError):
    """The model holds an op outside the allow-list, or cannot be checked."""


def _callees(node: Any, library: Set[str]) -> set[str]:
    """The functions a node calls: by attribute (``f``, branches, bodies) or as its op."""
    called = {node.op} & library
    for value in node.attr.values():
        if value.func.name:
            called.add(value.func.name)
        called.update(f.name for f in value.list.func)
    return called


def _closure(roots: Iterable[str], calls: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(calls.get(name, ()))
    return seen


def _node_name(tensor: str) -> str:
    return tensor.split(":")[0].lstrip("^")


def check_saved_model(path: str) -> None:
    """Reads ``path/saved_model.pb`` and refuses it unless every op is pure (module docstring).

    Args:
        path: A local SavedModel folder.

    Raises:
        UnsafeModelError: An op outside the allow-list (named, with where it
            is), a TensorFlow 1 SavedModel, or a file that does not parse.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        with open(os.path.join(path, _SAVED_MODEL_FILE), "rb") as f:
            saved_model.ParseFromString(f.read())
    except (OSError, DecodeError) as e:
        raise UnsafeModelError(f"cannot read {_SAVED_MODEL_FILE}: {e}") from e
    for meta_graph in saved_model.meta_graphs:
        _check_meta_graph(meta_graph)


def _check_meta_graph(meta_graph: Any) -> None:
    if not meta_graph.object_graph_def.nodes:
        raise UnsafeModelError(
            "a TensorFlow 1 SavedModel (no object graph): loading it runs its graph; "
            "export the model with tf.saved_model.save or keras Model.export"
        )
    graph = meta_graph.graph_def
    library = {f.signature.name for f in graph.library.function}
    calls = {
        f.signature.name: {c for n in f.node_def for c in _callees(n, library)}
        for f in graph.library.function
    }
    saver = meta_graph.saver_def
    saver_nodes = {_node_name(saver.save_tensor_name), _node_name(saver.restore_op_name)}
    saver_roots: set[str] = set()
    # What the loader may call: the object graph's functions, the graph's other nodes.
    other_roots = set(meta_graph.object_graph_def.concrete_functions)
    for node in graph.node:
        if node.op not in PURE_OPS and node.op not in library:
            raise UnsafeModelError(f"op {node.op} (graph node {node.name!r}) is not a pure op")
        called = _callees(node, library)
        (saver_roots if node.name in saver_nodes else other_roots).update(called)
    saver_reach = _closure(saver_roots, calls)
    other_roots |= set(calls) - saver_reach
    checkpoint_only = saver_reach - _closure(other_roots, calls)
    for function in graph.library.function:
        name = function.signature.name
        allowed = PURE_OPS | CHECKPOINT_OPS if name in checkpoint_only else PURE_OPS
        for node in function.node_def:
            if node.op not in allowed and node.op not in library:
                raise UnsafeModelError(f"op {node.op} (in function {name!r}) is not a pure op")
