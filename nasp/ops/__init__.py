"""Candidate operations: a registry of factories ``(C, stride, affine) -> nn.Module``, of kind cnn or rnn."""

from nasp.ops import builtin as _builtin  # noqa: F401  (registers the built-in ops)
from nasp.ops import recurrent as _recurrent  # noqa: F401  (registers the recurrent cell's activations)
from nasp.ops.registry import OPS, OpSpec, create_op, get_op, list_ops, op_param_count, register_op

__all__ = ["OPS", "OpSpec", "create_op", "get_op", "list_ops", "op_param_count", "register_op"]
