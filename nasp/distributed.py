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
import socket
import sys
import time
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
_peers: list[tuple[str, int]] = []  # (host, pid) of every rank, gathered at init
_first_failure: bool | None = None  # whether this rank's failure was the run's first (settle_failure)


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
            backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
            store = _attempt_store(world)
            if store is None:
                dist.init_process_group(backend, timeout=timedelta(minutes=30))
            else:
                dist.init_process_group(backend, store=store, rank=world.rank, world_size=world.size,
                                        timeout=timedelta(minutes=30))
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
    every: list[Any] = [None] * world.size
    dist.all_gather_object(every, (socket.gethostname(), os.getpid()))
    _peers[:] = [tuple(p) for p in every]
    return world


def _attempt_store(world: World) -> Any:
    """The agent's store with a prefix of this restart (``torchrun --max-restarts``), or None for torch's default.
    torchrun keeps one store (the same MASTER_PORT) across the restarts of a group, so without a prefix a
    restarted rank can read the address a dead rank of the previous attempt left there and fail to connect
    ("Gloo connectFullMesh failed ... Connection refused": seen one restart in two here)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "MASTER_ADDR" not in os.environ:
        return None
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    client = dist.TCPStore(os.environ["MASTER_ADDR"], _env_int("MASTER_PORT"), world.size, is_master=False,
                           timeout=timedelta(minutes=30))
    return dist.PrefixStore(f"nasp-pg/attempt_{restart}", client)


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
        # gloo's worker thread drops the barrier's tensor after the wait returns, and that needs the GIL: let it
        # take it now, not while the interpreter shuts down (then it aborts the process: "terminate called
        # without an active exception", seen one script in four here that ended without exit_process)
        time.sleep(0.05)
        dist.destroy_process_group()
    _world = None


def exit_process(code: int) -> NoReturn:
    """End the process with ``code``. Under torchrun the interpreter's own shutdown can abort ("terminate called
    without an active exception": a gloo thread that still has to drop a tensor when the interpreter finalises;
    ``shutdown`` lets it, and a rank of the CLI also flushes its output and leaves at once, skipping the
    finalisation it does not need)."""
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
    same parameters have gradients on every rank; that is checked first (``check_selection``), so a rank whose
    Ā drifted fails the run with one line instead of an all-reduce of unequal sizes (a gloo abort, an NCCL hang)."""
    if _world is not None:
        params = list(params)
        check_selection(params)
        average_([p.grad for p in params if p.grad is not None])


def check_selection(params: list[nn.Parameter]) -> None:
    """The ranks agree on which weights have a gradient (the ops Ā selected): one all-gather of a 16-byte
    checksum of that mask. DistributedError on every rank when they do not."""
    if _world is None or _world.size == 1:
        return
    mine = _bits(torch.tensor([p.grad is not None for p in params], dtype=torch.bool))
    every = [torch.zeros_like(mine) for _ in range(_world.size)]
    dist.all_gather(every, mine)
    bad = [r for r, other in enumerate(every) if not torch.equal(other, every[0])]
    if bad:
        raise DistributedError(f"the ranks disagree on Ā, the ops this step trains (rank {bad[0]} differs from "
                               f"rank 0): A was changed outside SearchAlgorithm.arch_update on some rank (a plugin "
                               f"must step A through arch_update); the last good checkpoint is kept")


def average_buffers(module: nn.Module) -> None:
    """BatchNorm running statistics averaged over the ranks (each rank saw its own share of the batches), so
    every rank scores, and rank 0 saves, the same network."""
    if _world is not None:
        average_([b for b in module.buffers() if b.is_floating_point()])


def own_buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    """This rank's buffers (BatchNorm running statistics), copied to the CPU for a checkpoint."""
    return {name: b.detach().cpu().clone() for name, b in module.named_buffers()}


def load_own_buffers(module: nn.Module, every: list[dict[str, torch.Tensor]]) -> None:
    """Every rank's ``own_buffers`` from a checkpoint back into ``module``: this rank's own on as many ranks;
    on another number of ranks their mean (the counters: rank 0's), what the epoch's end would average."""
    mine = every[rank()] if len(every) == size() else None
    for name, b in module.named_buffers():
        if name not in every[0]:
            continue
        if mine is not None:
            value = mine[name]
        elif b.is_floating_point():
            value = torch.stack([e[name].to(torch.float64) for e in every]).mean(0)
        else:
            value = every[0][name]
        with torch.no_grad():
            b.copy_(value.to(b.dtype))


def own_rows(every: list[dict[Any, torch.Tensor]]) -> dict[Any, torch.Tensor]:
    """Per-rank tensors whose rows are each rank's share of the streams (a recurrent carry, by window): this
    rank's own on as many ranks; on another number, every rank's rows side by side, this rank's share of them."""
    if len(every) == size():
        return dict(every[rank()])
    out = {}
    for key in every[0]:
        rows = torch.cat([e[key] for e in every])
        out[key] = rows[shard(rows.shape[0])]
    return out


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


def own_share(shares: list[dict[str, T]], means: tuple[str, ...] = ()) -> dict[str, T]:
    """This rank's running sums from every rank's sums in a checkpoint: its own when the number of ranks is the
    same (an exact resume); on another number, rank 0 takes their total and the others zeros, a key of ``means``
    (a sum of per-rank means, divided by the number of ranks at the epoch's end) rescaled to the new number."""
    n_old, n_new, r = len(shares), size(), rank()
    if n_old == n_new:
        return dict(shares[r])
    if r:
        return {k: type(v)(0) for k, v in shares[0].items()}  # type: ignore[call-arg]
    total: dict[str, Any] = {k: sum(s[k] for s in shares) for k in shares[0]}
    for k in means:
        total[k] = total[k] * n_new / n_old
    return total


# --- data preparation: rank 0 first -------------------------------------------------------------------------
def prepare_first(fn: Callable[[], T]) -> T:
    """``fn()`` (a dataset download, a cache build) on every rank, rank 0 first: rank 0 alone, then the first
    rank of every other node (a node without a shared file system prepares its own copy), then the others, who
    find it prepared. A failure of rank 0 is raised on every rank (once prepared, the others only read)."""
    if _world is None or _world.size == 1:
        return fn()
    result: Any = None
    outcome: tuple[bool, Any] = (True, None)
    if _world.main:
        try:
            result = fn()
        except Exception as exc:
            outcome = (False, exc if _picklable(exc) else DistributedError(f"{type(exc).__name__}: {exc}"))
    ok, error = broadcast(outcome)
    if not ok:
        raise error
    for phase in (1, 2):
        if not _world.main and phase == (1 if _world.local_rank == 0 else 2):
            result = fn()
        barrier()
    return result


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


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
            outcome = (False, exc if _picklable(exc) else DistributedError(f"{type(exc).__name__}: {exc}"))
    ok, value = broadcast(outcome)
    if not ok:
        raise value
    return value


def gather(value: T) -> list[T] | None:
    """Every rank's ``value`` on rank 0, in rank order (None on the others); ``[value]`` in a plain run."""
    if _world is None:
        return [value]
    box: list[Any] | None = [None] * _world.size if _world.main else None
    dist.gather_object(value, box, dst=0)
    return box


def host() -> str:
    return socket.gethostname()


def main_host() -> str:
    """The host of rank 0 (where the run folder is written)."""
    return _peers[0][0] if _peers else host()


def relaunch(words: str, world_size: int | None = None) -> str:
    """The command line that runs ``nasp <words>`` on this run's ranks (or ``world_size`` of them): plain nasp
    for one process, else torchrun with as many processes (and nodes) as this run has."""
    n = size() if world_size is None else world_size
    if n == 1:
        return f"nasp {words}"
    per_node = _env_int("LOCAL_WORLD_SIZE", n) if launched() and world_size in (None, size()) else n
    nodes = max(n // max(per_node, 1), 1)
    if nodes == 1:
        return f"torchrun --standalone --nproc_per_node={per_node} -m nasp {words}"
    return (f"torchrun --nnodes={nodes} --nproc_per_node={per_node} --rdzv_backend=c10d "
            f"--rdzv_endpoint=HOST:PORT -m nasp {words} (on each of the {nodes} nodes)")


BROKEN = ("connection reset", "connection closed", "broken pipe", "connection refused", "timed out")


def explain_broken(message: str) -> str:
    """``message`` of a collective that broke because a peer ended (gloo's "Connection reset by peer") as what
    happened: a rank on this host whose process is gone (or a zombie) is named as killed or crashed."""
    if _world is None:
        return message
    low = message.lower()
    broken = any(word in low for word in BROKEN)
    if not (broken or "gloo" in low or "nccl" in low):
        return message
    me = host()
    gone: list[int] = []
    for _ in range(20):  # a killed peer's sockets close while it exits, a moment before it is a zombie
        gone = [r for r, (h, pid) in enumerate(_peers) if r != _world.rank and h == me and not _alive(pid)]
        if gone or not any(h == me for r, (h, _pid) in enumerate(_peers) if r != _world.rank):
            break
        time.sleep(0.05)
    if gone:
        who = ", ".join(f"rank {r} (pid {_peers[r][1]} on {me})" for r in gone)
        return (f"{who} ended without a nasp error: killed (a signal, the out-of-memory killer) or crashed; "
                f"the other ranks stopped with it (torchrun's summary names its exit code)")
    if broken:
        return ("a collective between the ranks broke: another rank ended without a nasp error (killed, crashed, "
                "or its node went down); torchrun's summary names which")
    return message


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, ended but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True


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
    if _world is None or _world.size == 1:
        return message, reason
    message = explain_broken(message)
    if _store is None:
        return f"rank {_world.rank}: {message}", reason
    global _first_failure
    try:
        if _store.add("failures", 1) == 1:
            _first_failure = True
            _store.set("failure", f"{reason}\n" + f"rank {_world.rank}: {message}")
        else:
            _first_failure = bool(_first_failure)
            _store.wait(["failure"], timedelta(seconds=5))
        first_reason, first = _store.get("failure").decode().split("\n", 1)
        return first, first_reason
    except Exception:  # the store went with the launcher: this rank's own words then
        return f"rank {_world.rank}: {message}", reason


def claim_report() -> bool:
    """Whether this rank prints the run's failure message: the rank that failed first (the one that noticed, for
    a rank killed without a word), else the first rank to ask (an atomic counter in the store); so the message
    appears once, also when rank 0 waits in a collective or torchrun has ended it."""
    if _world is None or _world.size == 1:
        return True
    if _store is None:
        return _world.main
    if _first_failure is not None:
        return _first_failure
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
