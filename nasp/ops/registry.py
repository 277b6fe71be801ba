"""The op registry: ``@register_op("name")`` on a factory ``(C, stride, affine) -> nn.Module``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from nasp.registry import Registry

OpFactory = Callable[[int, int, bool], nn.Module]


@dataclass(frozen=True)
class OpSpec:
    """A registered op. ``pool`` ops get a non-affine BatchNorm inside the search network,
    as in DARTS and the NASP reference code, so their scale matches the conv ops'."""

    name: str
    factory: OpFactory
    pool: bool = False
    doc: str = ""


OPS: Registry[OpSpec] = Registry("op")


def register_op(name: str, *, pool: bool = False, overwrite: bool = False) -> Callable[[OpFactory], OpFactory]:
    """Register an op factory ``f(C, stride, affine) -> nn.Module`` mapping C channels to C
    channels, halving height and width when ``stride == 2``."""

    def decorator(factory: OpFactory) -> OpFactory:
        doc = (factory.__doc__ or "").strip().splitlines()
        OPS.add(name, OpSpec(name, factory, pool, doc[0] if doc else ""), overwrite=overwrite, doc=doc[0] if doc else "")
        return factory

    return decorator


def list_ops() -> list[str]:
    return OPS.names()


def get_op(name: str) -> OpSpec:
    return OPS.get(name)


def create_op(name: str, C: int, stride: int = 1, affine: bool = True, *, search: bool = False) -> nn.Module:
    """Build op ``name``; ``search=True`` adds the BatchNorm that pool ops get in a search network."""
    spec = OPS.get(name)
    op = spec.factory(C, stride, affine)
    if search and spec.pool:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op


def op_param_count(name: str, C: int, stride: int = 1, affine: bool = False) -> int:
    """Parameters of op ``name`` at width C (the p_k of the model-size regulariser, eq. 8)."""
    return sum(p.numel() for p in create_op(name, C, stride, affine).parameters())
