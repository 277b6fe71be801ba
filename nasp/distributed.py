"""Data-parallel runs under torchrun: PyTorch's own engine (torch.distributed, DDP, torchrun's rendezvous).

Nothing here starts processes: ``torchrun --nproc_per_node=N -m nasp run ...`` does, and sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Without WORLD_SIZE in the environment nothing is
initialised and every helper below is the identity, so a plain run stays exactly what it was.

``batch_size`` is the global batch: every rank draws the same global batch (same seeded order, same
augmentation draws) and keeps its equal share of it, so N ranks of B/N images take the step one process
of B images takes (exactly so with ``model.sync_bn=true``). Weight gradients and A's gradients are
averaged over the ranks before each update, so every rank holds the same w, A and Ā; the trainer checks
a checksum of them at every epoch end and fails the run on a mismatch.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from nasp.errors import ConfigError, NaspError

T = TypeVar("T")


class DistributedError(NaspError):
    """The ranks of a distributed run disagree or one of them failed."""


@dataclass(frozen=True)
class World:
    """This process's place in the run: its rank among ``size`` and its rank on this machine."""

    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


_world: World | None = None
_store: Any = None


def launched() -> bool:
    """Whether a launcher (torchrun) started this process as one rank of several."""
    return "WORLD_SIZE" in os.environ


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise ConfigError(f"environment '{name}': torchrun sets it; it is missing (start with torchrun)")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment '{name}': '{raw}' is not an integer") from None


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0) if launched() else 0


def init() -> World | None:
    """Join the process group torchrun described (once; later calls return the same world). None when not
    launched. The backend is gloo for CPU tensors and NCCL for CUDA tensors when CUDA is there; each rank
    takes LOCAL_RANK's GPU."""
    global _world, _store
    if _world is not None or not launched():
        return _world
    world = World(_env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK", 0))
    if not 0 <= world.rank < world.size:
        raise ConfigError(f"environment 'RANK': {world.rank} is not in 0..{world.size - 1}")
    cuda = torch.cuda.is_available() and world.local_rank < torch.cuda.device_count()
    if cuda:
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        try:
            dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"environment 'WORLD_SIZE': set, but torch.distributed could not start "
                              f"({str(exc).splitlines()[0][:200]}); start nasp with torchrun") from None
    try:  # the rendezvous store, where a failing rank leaves its message for the others
        _store = dist.PrefixStore(f"nasp/{os.environ.get('TORCHELASTIC_RUN_ID', 'run')}/"
                                  f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/",
                                  dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                                                is_master=False, timeout=timedelta(seconds=30)))
    except (KeyError, ValueError, RuntimeError):
        _store = None
    _world = world
    return world


def current() -> World | None:
    return _world


def is_main() -> bool:
    """Rank 0, or a plain run: the process that writes the run folder and the console."""
    if _world is not None:
        return _world.main
    return not launched() or os.environ.get("RANK", "0") == "0"


def shutdown() -> None:
    """Leave the process group after a run that ended well or stopped (NCCL asks for it); the barrier keeps
    every rank until rank 0 has written its last files (torchrun ends the others when one exits)."""
    global _world
    if _world is not None and dist.is_initialized():
        barrier()
        dist.destroy_process_group()
    _world = None


def exit_process(code: int) -> NoReturn:
    """End the process with ``code``. Under torchrun the interpreter's own shutdown can abort ("terminate called
    without an active exception": a gloo thread still joinable when C++ destructors run, seen about one run in
    three here) after the run has finished and written everything; so a rank flushes its output and leaves at once."""
    if launched():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def size() -> int:
    return 1 if _world is None else _world.size


def rank() -> int:
    return 0 if _world is None else _world.rank


def cuda_device(device: torch.device) -> torch.device:
    """``device=cuda`` under torchrun is LOCAL_RANK's GPU; a GPU named by number is refused when several ranks
    share this machine (they would all train on it)."""
    if device.type != "cuda" or not launched():
        return device
    if device.index is None:
        return torch.device("cuda", local_rank())
    if _env_int("LOCAL_WORLD_SIZE", 1) > 1:
        raise ConfigError(f"key 'device': '{device}' names one GPU, but torchrun started "
                          f"{os.environ['LOCAL_WORLD_SIZE']} processes on this machine; use device=cuda (each rank "
                          f"takes the GPU of its LOCAL_RANK) or CUDA_VISIBLE_DEVICES")
    return device


# --- data: each rank's share of a global batch ------------------------------------------------------------
def shard(n: int) -> slice:
    """This rank's rows of a global batch of ``n`` (all of it in a plain run); equal shares when n divides."""
    if _world is None:
        return slice(None)
    return slice(n * _world.rank // _world.size, n * (_world.rank + 1) // _world.size)


def check_batch(batch_size: int, key: str = "batch_size") -> None:
    """A training batch must split evenly: unequal shares would weigh some images more than others."""
    if batch_size % size():
        raise ConfigError(f"key '{key}': {batch_size} does not split evenly over the {size()} processes torchrun "
                          f"started (batch_size is the global batch); use a multiple of {size()}")


# --- gradients and sums -----------------------------------------------------------------------------------
def average_(tensors: Iterable[torch.Tensor]) -> None:
    """Average ``tensors`` in place over the ranks, one collective per device and dtype (DDP's bucket, in one)."""
    if _world is None or _world.size == 1:
        return
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    for same in groups.values():
        flat = torch.cat([t.reshape(-1) for t in same])
        dist.all_reduce(flat)
        flat.div_(_world.size)
        for t, part in zip(same, flat.split([t.numel() for t in same]), strict=True):
            t.copy_(part.view_as(t))


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Weight gradients averaged over the ranks after a backward pass. Every rank trains the same Ā, so the
    same parameters have gradients on every rank."""
    if _world is not None:
        average_([p.grad for p in params if p.grad is not None])


def average_buffers(module: nn.Module) -> None:
    """BatchNorm running statistics averaged over the ranks (each rank saw its own share of the batches), so
    every rank scores, and rank 0 saves, the same network."""
    if _world is not None:
        average_([b for b in module.buffers() if b.is_floating_point()])


def average(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A's gradients averaged over the ranks (new tensors; the input is left alone)."""
    if _world is None:
        return grads
    out = {k: g.detach().clone() for k, g in grads.items()}
    average_(out.values())
    return out


def all_sum(values: dict[str, T]) -> dict[str, T]:
    """Numbers summed over the ranks (the ints stay ints); the same dict in a plain run."""
    if _world is None:
        return values
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64)  # type: ignore[arg-type]
    dist.all_reduce(t)
    return {k: (round(float(s)) if isinstance(v, int) else float(s))  # type: ignore[misc]
            for (k, v), s in zip(values.items(), t.tolist(), strict=True)}


def held_by_rank_0(values: dict[str, T]) -> dict[str, T]:
    """Running sums before a mid-epoch checkpoint: the sums over the ranks on rank 0, zeros elsewhere, so rank
    0's checkpoint holds every rank's share and the epoch's total stays right after a resume."""
    if _world is None:
        return values
    total = all_sum(values)
    return total if _world.main else resumed_share(total)


def resumed_share(values: dict[str, T]) -> dict[str, T]:
    """Running sums read from rank 0's checkpoint: rank 0 keeps them, the other ranks start from zero."""
    if _world is None or _world.main:
        return values
    return {k: type(v)(0) for k, v in values.items()}  # type: ignore[call-arg]


# --- agreement between the ranks --------------------------------------------------------------------------
def agree(stop: bool, pause: bool) -> tuple[bool, bool]:
    """(stop, pause) as any rank asks: a signal to one rank stops or pauses all of them at the same step."""
    if _world is None:
        return stop, pause
    t = torch.tensor([int(stop), int(pause)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0]), bool(t[1])


def barrier() -> None:
    """Every rank waits for all the others (a CPU all-reduce: over gloo, whatever the device)."""
    if _world is not None:
        dist.all_reduce(torch.zeros(1))


def broadcast(value: T) -> T:
    """Rank 0's ``value`` on every rank (pickled over gloo)."""
    if _world is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def on_main(fn: Callable[[], T]) -> T:
    """``fn()`` run by rank 0 alone, its result (or its error, raised again) on every rank."""
    if _world is None:
        return fn()
    outcome: tuple[bool, Any] = (True, None)
    if _world.main:
        try:
            outcome = (True, fn())
        except Exception as exc:  # every rank raises it
            try:
                pickle.dumps(exc)
                outcome = (False, exc)
            except Exception:
                outcome = (False, DistributedError(f"{type(exc).__name__}: {exc}"))
    ok, value = broadcast(outcome)
    if not ok:
        raise value
    return value


def _bits(t: torch.Tensor) -> torch.Tensor:
    """An exact checksum of ``t``'s bits (integer sums do not depend on the order of addition)."""
    flat = t.detach().reshape(-1).cpu().contiguous()
    size = flat.element_size()
    ints = flat.view(torch.int64) if size == 8 else flat.view({4: torch.int32, 2: torch.int16}.get(size, torch.uint8)
                                                              if flat.dtype != torch.bool else torch.uint8).to(torch.int64)
    pos = torch.arange(1, len(ints) + 1, dtype=torch.int64)
    return torch.stack([ints.sum(), (ints * pos).sum()])


def check_replicas(tensors: dict[str, list[torch.Tensor]], where: str) -> None:
    """Every rank must hold the same ``tensors`` (A, Ā, the weights); a mismatch fails the run."""
    if _world is None or _world.size == 1 or not tensors:
        return
    mine = torch.cat([torch.cat([_bits(t) for t in ts]) if ts else torch.zeros(0, dtype=torch.int64)
                      for ts in tensors.values()])
    every = [torch.zeros_like(mine) for _ in range(_world.size)]
    dist.all_gather(every, mine)
    bad = [r for r, other in enumerate(every) if not torch.equal(other, every[0])]
    if bad:
        sizes = [2 * len(ts) for ts in tensors.values()]
        differ = [name for name, part_0, part_r in zip(tensors, every[0].split(sizes), every[bad[0]].split(sizes),
                                                           strict=True) if not torch.equal(part_0, part_r)]
        raise DistributedError(f"the ranks disagree on {', '.join(differ)} at {where} (rank {bad[0]} differs from "
                               f"rank 0): the replicas drifted apart; the last good checkpoint is kept")


# --- one failure stops every rank with one message ---------------------------------------------------------
def settle_failure(message: str, reason: str) -> tuple[str, str]:
    """The run's (failure message, reason): the first rank to fail leaves ``rank R: message`` in the rendezvous
    store; a rank whose collective broke because that peer died reports the first failure, not its own."""
    if _world is None or _world.size == 1 or _store is None:
        return message, reason
    try:
        if _store.add("failures", 1) == 1:
            _store.set("failure", f"{reason}\n" + f"rank {_world.rank}: {message}")
        else:
            _store.wait(["failure"], timedelta(seconds=5))
        first_reason, first = _store.get("failure").decode().split("\n", 1)
        return first, first_reason
    except Exception:  # the store went with the launcher: this rank's own words then
        return f"rank {_world.rank}: {message}", reason


def claim_report() -> bool:
    """Whether this rank prints the run's failure message: the first rank to ask does (an atomic counter in the
    store), so the message appears once, also when rank 0 waits in a collective or torchrun has ended it."""
    if _world is None or _world.size == 1:
        return True
    if _store is None:
        return _world.main
    try:
        return bool(_store.add("printed", 1) == 1)
    except Exception:  # the store went with the launcher
        return _world.main


# --- batch statistics over the global batch ---------------------------------------------------------------
class _SumOverRanks(torch.autograd.Function):
    """y = the sum of x over the ranks; each rank's loss depends on y, so x's gradient is the sum of y's."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        g = grad.contiguous().clone()
        dist.all_reduce(g)
        return g


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, on any backend (PyTorch's
    SyncBatchNorm runs on GPUs only; this one runs on gloo too). One all-reduce of (sum, sum of squares,
    count) per layer, in float64, differentiable (torch.distributed.nn), so gradients flow through the
    global mean and variance exactly as a single process of the global batch computes them."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or _world is None or _world.size == 1:
            return super().forward(x)
        c = x.shape[1]
        n_local = x.numel() // c
        sums = torch.cat([x.sum((0, 2, 3), dtype=torch.float64), (x * x).sum((0, 2, 3), dtype=torch.float64),
                          torch.full((1,), float(n_local), dtype=torch.float64, device=x.device)])
        sums = _SumOverRanks.apply(sums)
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
                f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - f).add_(mean.to(self.running_mean.dtype), alpha=f)
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_var.mul_(1 - f).add_(unbiased.to(self.running_var.dtype), alpha=f)
        scale = torch.rsqrt(var + self.eps).float()
        y = (x.float() - mean.float()[None, :, None, None]) * scale[None, :, None, None]
        if self.weight is not None and self.bias is not None:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d turned into a SyncBatchNorm2d in place (the same objects, so every
    reference to them, the gradient probe's included, sees the change; the state dict is unchanged)."""
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = SyncBatchNorm2d
    return module


def data_parallel(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` in DistributedDataParallel for training steps (the module itself in a plain run): gradients
    averaged in buckets during the backward pass, BN buffers broadcast from rank 0."""
    if _world is None:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
