"""The op registry: ``@register_op("name")`` on a factory ``(C, stride, affine) -> nn.Module``.

Ops have a kind, like spaces: ``cnn`` ops map (N, C, H, W) to (N, C, H/stride, W/stride); ``rnn`` ops are the
activations of DARTS's recurrent cell, mapping (..., C) to (..., C) (``register_op("name", kind="rnn")``; the
factory is called with (nhid, 1, False))."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from nasp.errors import ConfigError, NaspError, RegistryError
from nasp.registry import Registry

OpFactory = Callable[[int, int, bool], nn.Module]
OpKind = Literal["cnn", "rnn"]
OP_KINDS: tuple[str, ...] = ("cnn", "rnn")


@dataclass(frozen=True)
class OpSpec:
    """A registered op. ``pool`` ops get a non-affine BatchNorm inside the search network,
    as in DARTS and the NASP reference code, so their scale matches the conv ops'."""

    name: str
    factory: OpFactory
    pool: bool = False
    doc: str = ""
    kind: OpKind = "cnn"


OPS: Registry[OpSpec] = Registry("op")


def register_op(name: str, *, pool: bool = False, overwrite: bool = False, kind: OpKind = "cnn"
                ) -> Callable[[OpFactory], OpFactory]:
    """Register an op factory ``f(C, stride, affine) -> nn.Module`` mapping C channels to C
    channels, halving height and width when ``stride == 2`` (``kind="rnn"``: an activation of the
    recurrent cell, mapping (..., C) to (..., C))."""
    if kind not in OP_KINDS:
        raise RegistryError(f"op '{name}': kind '{kind}' is not one of {', '.join(OP_KINDS)}")

    def decorator(factory: OpFactory) -> OpFactory:
        if name in OPS and not overwrite and OPS.get(name).factory is not factory:
            raise RegistryError(f"op '{name}' is already registered{OPS.origin(name)}; to replace it, register it "
                                f"with register_op('{name}', overwrite=True)")
        doc = (factory.__doc__ or "").strip().splitlines()
        OPS.add(name, OpSpec(name, factory, pool, doc[0] if doc else "", kind), overwrite=True, doc=doc[0] if doc else "")
        return factory

    return decorator


def list_ops(kind: str | None = None) -> list[str]:
    """Registered op names, of one kind or all."""
    return [n for n in OPS.names() if kind is None or OPS.get(n).kind == kind]


def get_op(name: str) -> OpSpec:
    return OPS.get(name)


# (op spec, stride) pairs already checked by ``check_op``
_CHECKED: set[tuple[OpSpec, int]] = set()
PROBE_SIZE = 8  # height and width of the probe input; batch 2


def _origin(spec: OpSpec) -> str:
    module = getattr(spec.factory, "__module__", "") or ""
    if module == "nasp" or module.startswith("nasp."):
        return ""
    try:
        return f" (from {inspect.getsourcefile(spec.factory) or module})"
    except TypeError:
        return f" (from {module})" if module else ""


def check_op(spec: OpSpec, C: int, stride: int, affine: bool = True) -> None:
    """Build ``spec`` at width C and stride on its own and run it on a (2, C, 8, 8) tensor: the output must be
    (2, C, 8/stride, 8/stride) (an rnn op: a (2, 3, C) tensor in, the same shape out). ConfigError naming the op
    otherwise. The torch RNG is left as it was."""
    where = f"op '{spec.name}'{_origin(spec)}"
    shape: tuple[int, ...] = (2, C, PROBE_SIZE, PROBE_SIZE)
    expected: tuple[int, ...] = (2, C, PROBE_SIZE // stride, PROBE_SIZE // stride)
    if spec.kind == "rnn":
        shape = expected = (2, 3, C)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            probe = spec.factory(C, stride, affine)
        except NaspError:
            raise
        except Exception as exc:
            raise ConfigError(f"{where}: building it at C={C}, stride {stride} failed: {type(exc).__name__}: "
                              f"{_one_line(exc)}") from None
        if not isinstance(probe, nn.Module):
            raise ConfigError(f"{where}: its factory returned a {type(probe).__name__}, not a torch nn.Module "
                              f"(at C={C}, stride {stride})")
        probe.train()
        try:
            out = probe(torch.linspace(-1.0, 1.0, math.prod(shape)).reshape(shape))
        except Exception as exc:
            raise ConfigError(f"{where}: running it on a {shape} input at stride {stride} failed: "
                              f"{type(exc).__name__}: {_one_line(exc)}") from None
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"{where}: returns a {type(out).__name__}, not a tensor (input {shape}, stride {stride})")
    if tuple(out.shape) != expected and spec.kind == "rnn":
        raise ConfigError(f"{where}: turns a {shape} input into {tuple(out.shape)}; an rnn op keeps the shape "
                          f"(an activation of the recurrent cell)")
    if tuple(out.shape) != expected:
        raise ConfigError(f"{where}: at stride {stride} it turns a {shape} input into {tuple(out.shape)}; expected "
                          f"{expected} (C channels in and out, height and width divided by the stride)")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def create_op(name: str, C: int, stride: int = 1, affine: bool = True, *, search: bool = False) -> nn.Module:
    """Build op ``name``; ``search=True`` adds the BatchNorm that pool ops get in a search network.

    The first time an op is built at a stride it is checked (``check_op``): a factory that does not
    return an nn.Module mapping (N, C, H, W) to (N, C, H/stride, W/stride) is a ConfigError."""
    spec = OPS.get(name)
    if (spec, stride) not in _CHECKED:
        check_op(spec, C, stride, affine)
        _CHECKED.add((spec, stride))
    op = spec.factory(C, stride, affine)
    if search and spec.pool:
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op


def op_param_count(name: str, C: int, stride: int = 1, affine: bool = False) -> int:
    """Parameters of op ``name`` at width C (the p_k of the model-size regulariser, eq. 8). Counted on the meta
    device (no memory: ``model.channels=100000`` is counted, not allocated), after the op's check at a small width."""
    create_op(name, min(C, 4), stride, affine)  # check_op runs once per op and stride, on real tensors
    with torch.device("meta"):
        return sum(p.numel() for p in create_op(name, C, stride, affine).parameters())
