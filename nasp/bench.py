"""``nasp bench``: time each algorithm's steps and the bare child's training step on the same
batches in one process; peak memory of each in a fresh process of its own.

This is a benchmark, not a test: ratios come from one run on one machine."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from nasp.algorithms import ALGORITHMS, SearchAlgorithm
from nasp.config import AlgorithmConfig, OptimConfig
from nasp.model import ChildNetwork, create_search_network
from nasp.model.dense import DenseChildNetwork
from nasp.model.loss import cross_entropy
from nasp.model.recurrent import HiddenCarry, RecurrentNetwork, RNNDropouts, TokenWindow, selection_of_genotype
from nasp.spaces import get_space

ALL = ["nasp", "pa-standard", "pa-lazy", "darts-1st", "darts-2nd"]


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    space: str = Field("cnn12", description="search space (rnn spaces: DARTS's recurrent network on random tokens)")
    algorithms: list[str] = Field(default_factory=lambda: list(ALL), description="algorithms to time")
    channels: int = Field(8, ge=2, description="initial channels C")
    layers: int = Field(5, ge=1, description="cells")
    batch_size: int = Field(16, ge=2, description="images per step")
    image_size: int = Field(32, ge=8, description="height and width of the CIFAR-shaped batches")
    in_channels: int = Field(3, ge=1, description="image channels")
    num_classes: int = Field(10, ge=2, description="classes")
    nhid: int = Field(64, ge=2, description="rnn: hidden and embedding size (the quick search's; DARTS: 300)")
    bptt: int = Field(35, ge=2, description="rnn: steps per window")
    vocab_size: int = Field(10_000, ge=2, description="rnn: vocabulary (PTB's and the embedded corpus's 10,000)")
    steps: int = Field(5, ge=1, description="timed steps (after one warm-up step)")
    device: str = Field("auto", description="auto, cpu, cuda")
    amp: bool = Field(True, description="bf16 autocast on CUDA")
    channels_last: bool = Field(True, description="channels-last memory format")
    memory: bool = Field(True, description="measure peak memory (one process per algorithm)")
    eval_throughput: bool = Field(True, description="also time the evaluation network's training step (DARTS_V2 at "
                                  "this width, auxiliary head and drop-path on): images/s (cnn spaces)")
    seed: int = Field(0, description="seed of the batches and networks")
    variants: bool = Field(True, description="also time NASP's step and the child's under every speed variant the "
                           "device has (CUDA: eager or CUDA graphs, amp on/off, channels-last on/off; CPU: "
                           "channels-last on/off), side by side (cnn spaces)")


def _recurrent(cfg: BenchConfig) -> bool:
    return get_space(cfg.space).kind == "rnn"


def _batches(cfg: BenchConfig, device: torch.device, warmup: int = 1) -> list[tuple[Any, torch.Tensor]]:
    """Training and validation batches alternating (rnn: windows of two token streams, each carrying its state)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    out: list[tuple[Any, torch.Tensor]] = []
    if _recurrent(cfg):
        carries = (HiddenCarry(), HiddenCarry())
        for i in range(2 * (cfg.steps + 1)):
            tokens = torch.randint(cfg.vocab_size, (cfg.bptt + 1, cfg.batch_size), generator=gen).to(device)
            out.append((TokenWindow(tokens[:-1], carries[i % 2], i // 2, seed=i), tokens[1:].reshape(-1)))
        return out
    for _ in range(2 * (cfg.steps + warmup)):
        x = torch.randn(cfg.batch_size, cfg.in_channels, cfg.image_size, cfg.image_size, generator=gen).to(device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append((x, torch.randint(cfg.num_classes, (cfg.batch_size,), generator=gen).to(device)))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _algorithm(name: str, cfg: BenchConfig, device: torch.device) -> SearchAlgorithm:
    space = get_space(cfg.space)
    torch.manual_seed(cfg.seed)
    optim = OptimConfig()
    if space.kind == "rnn":  # DARTS's recurrent search: plain SGD at lr 20, clip 0.25
        net: torch.nn.Module = RecurrentNetwork(space, cfg.vocab_size, cfg.nhid, cfg.nhid, RNNDropouts(), True).to(device)
        optim = OptimConfig(lr=20.0, momentum=0.0, weight_decay=5e-7, grad_clip=0.25, schedule="constant")
    else:
        # a dense space (nb201): NAS-Bench-201's skeleton, layers cells per stage
        net = create_search_network(space, cfg.channels, cfg.layers, num_classes=cfg.num_classes,
                                    in_channels=cfg.in_channels).to(device)
        if cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
    return ALGORITHMS.get(name)(space, net, AlgorithmConfig(name=name), optim, 50, device, cfg.amp, cfg.seed)


class _RecurrentChild(torch.nn.Module):
    """The child of a recurrent genotype: the network without batch norm, run with the genotype's selection only."""

    def __init__(self, algo: SearchAlgorithm, cfg: BenchConfig) -> None:
        super().__init__()
        self.net = RecurrentNetwork(algo.space, cfg.vocab_size, cfg.nhid, cfg.nhid, RNNDropouts(), batch_norm=False)
        self.selection = selection_of_genotype(algo.space, algo.genotype())

    def forward(self, x: TokenWindow) -> torch.Tensor:
        return self.net(x, None, self.selection)


def _child(algo: SearchAlgorithm, cfg: BenchConfig, device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(cfg.seed)
    if algo.space.kind == "rnn":
        child: torch.nn.Module = _RecurrentChild(algo, cfg).to(device)
        return child, torch.optim.SGD(child.parameters(), lr=20.0, weight_decay=5e-7)
    net_cls = DenseChildNetwork if algo.space.kind == "dense" else ChildNetwork
    child = net_cls(algo.genotype(), cfg.channels, cfg.layers, cfg.num_classes, cfg.in_channels).to(device)
    if cfg.channels_last:
        child = child.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(child.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    return child, opt


def _child_step(child: torch.nn.Module, opt: torch.optim.Optimizer, batch: tuple[Any, torch.Tensor],
                amp: bool) -> None:
    x, y = batch
    ctx = torch.autocast("cuda", torch.bfloat16) if amp and y.is_cuda else torch.autocast("cpu", enabled=False)
    with ctx:
        logits = child(x)
    loss = cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(child.parameters(), 0.25 if isinstance(child, _RecurrentChild) else 5.0)
    opt.step()


def _timed_step(algo: SearchAlgorithm, train: tuple[Any, torch.Tensor], val: tuple[Any, torch.Tensor],
                device: torch.device) -> tuple[float, float]:
    """Seconds of one architecture step and one weight step."""
    _sync(device)
    t0 = time.perf_counter()
    algo.arch_step(val, train)
    _sync(device)
    t1 = time.perf_counter()
    algo.weight_step(train)
    _sync(device)
    return t1 - t0, time.perf_counter() - t1


def _timed_child_step(child: torch.nn.Module, opt: torch.optim.Optimizer, batch: tuple[Any, torch.Tensor], amp: bool,
                      device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    _child_step(child, opt, batch, amp)
    _sync(device)
    return time.perf_counter() - t0


def _medians(arch: list[float], weight: list[float]) -> dict[str, float]:
    return {"arch_s": statistics.median(arch), "weight_s": statistics.median(weight),
            "total_s": statistics.median(a + w for a, w in zip(arch, weight, strict=True))}


def _time_algorithm(algo: SearchAlgorithm, batches: list[tuple[Any, torch.Tensor]], device: torch.device,
                    warmup: int = 1) -> dict[str, float]:
    """Median seconds of the architecture step, weight step and both, after ``warmup`` steps."""
    arch, weight = [], []
    for i in range(len(batches) // 2):
        a, w = _timed_step(algo, batches[2 * i], batches[2 * i + 1], device)
        if i >= warmup:
            arch.append(a)
            weight.append(w)
    return _medians(arch, weight)


def _time_child(child: torch.nn.Module, opt: torch.optim.Optimizer, batches: list[tuple[Any, torch.Tensor]],
                amp: bool, device: torch.device, warmup: int = 1) -> float:
    times = [_timed_child_step(child, opt, batches[2 * i], amp, device) for i in range(len(batches) // 2)]
    return statistics.median(times[warmup:])


def time_steps(cfg: BenchConfig, device: torch.device) -> dict[str, dict[str, float]]:
    """Median seconds of the architecture step, weight step and both, per algorithm; and the child (the architecture
    NASP holds after its warm-up step). The algorithms and the child take their steps in turns, step i of each before
    step i + 1 of any: a load that comes and goes on a shared machine then slows them alike, and the ratios of one
    run hold up (run one after another, one algorithm could get a quiet minute and the next a busy one)."""
    batches = _batches(cfg, device)
    algos = {name: _algorithm(name, cfg, device) for name in cfg.algorithms}
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in algos}
    child_times: list[float] = []
    child: tuple[torch.nn.Module, torch.optim.Optimizer] | None = None
    for i in range(len(batches) // 2):
        train, val = batches[2 * i], batches[2 * i + 1]
        for name, algo in algos.items():
            a, w = _timed_step(algo, train, val, device)
            if i:  # the first step warms up
                times[name][0].append(a)
                times[name][1].append(w)
        if child is None:
            child = _child(algos.get("nasp") or next(iter(algos.values())), cfg, device)
        t = _timed_child_step(*child, train, cfg.amp, device)
        if i:
            child_times.append(t)
    results = {name: _medians(*t) for name, t in times.items()}
    results["child"] = {"total_s": statistics.median(child_times)}
    return results


def time_variants(cfg: BenchConfig, device: torch.device) -> list[dict[str, Any]]:
    """NASP's step and the child's training step under each speed variant the device has: CUDA graphs (NASP:
    its weight step per Ā, ``use_cuda_graphs``; the child: torch.compile's reduce-overhead mode), bf16 autocast
    and channels-last; on the CPU only channels-last applies. Three warm-up steps: capturing takes one."""
    cuda = device.type == "cuda"
    rows = []
    for graphs in (False, True) if cuda else (False,):
        for amp in (True, False) if cuda else (False,):
            for channels_last in (True, False):
                vcfg = cfg.model_copy(update={"amp": amp, "channels_last": channels_last})
                batches = _batches(vcfg, device, warmup=3)
                algo = _algorithm("nasp", vcfg, device)
                if graphs:
                    algo.use_cuda_graphs(8)
                row: dict[str, Any] = {"mode": "graphs" if graphs else "eager", "amp": amp,
                                       "channels_last": channels_last, **_time_algorithm(algo, batches, device, 3)}
                child, opt = _child(algo, vcfg, device)
                if graphs:
                    child = torch.compile(child, mode="reduce-overhead")  # type: ignore[assignment]
                row["child_s"] = _time_child(child, opt, batches, amp, device, 3)
                rows.append(row | algo.graphs.stats() | ({"graph_error": algo.graphs.error} if algo.graphs.error else {}))
    return rows


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _PeakRSS:
    """Samples the resident set size every millisecond (CPU peak memory)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.001)

    def __enter__(self) -> _PeakRSS:
        self.peak = _rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def peak_memory_mb(name: str, cfg: BenchConfig, device: torch.device) -> float:
    """Peak memory of the steps of ``name`` ('child' for the bare child) above what was held before."""
    batches = _batches(cfg, device)
    algo = _algorithm("nasp" if name == "child" else name, cfg, device)
    if name == "child":
        for i in range(2):  # give the child the architecture NASP holds after a few steps
            algo.arch_step(batches[2 * i + 1], batches[2 * i])
        child, opt = _child(algo, cfg, device)
        del algo

        def step(i: int) -> None:
            _child_step(child, opt, batches[2 * i], cfg.amp)
    else:
        def step(i: int) -> None:
            algo.arch_step(batches[2 * i + 1], batches[2 * i])
            algo.weight_step(batches[2 * i])

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for i in range(cfg.steps):
            step(i)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with _PeakRSS() as meter:
        base = meter.peak
        for i in range(cfg.steps):
            step(i)
    return meter.peak - base


def run_bench(cfg: BenchConfig, device: torch.device) -> dict[str, Any]:
    results = time_steps(cfg, device)
    if cfg.memory:
        for name in list(results):
            results[name]["peak_mb"] = _memory_in_subprocess(name, cfg, device)
    report = {"space": cfg.space, "device": _device_name(device),
              "settings": {**cfg.model_dump(exclude={"memory"}), "recurrent": _recurrent(cfg)}, "results": results}
    if cfg.variants and not _recurrent(cfg):
        report["variants"] = time_variants(cfg, device)
    if cfg.eval_throughput and not _recurrent(cfg):
        from nasp.evaluation.task import SPEED_MODES
        from nasp.evaluation.throughput import eval_throughput

        def throughput(mode: str) -> dict[str, Any]:
            return eval_throughput(device, "DARTS_V2", cfg.channels, cfg.layers, cfg.batch_size, cfg.image_size,
                                   cfg.in_channels, cfg.num_classes, cfg.steps, cfg.amp, cfg.channels_last, cfg.seed,
                                   mode, warmup=1 if mode == "eager" else 3)

        report["eval_throughput"] = throughput("eager")
        if cfg.variants and device.type == "cuda":  # compile and graphs apply on CUDA only (``switch_on``)
            report["eval_modes"] = [report["eval_throughput"], *(throughput(m) for m in SPEED_MODES[1:])]
    return report


def _memory_in_subprocess(name: str, cfg: BenchConfig, device: torch.device) -> float:
    payload = json.dumps({"name": name, "cfg": cfg.model_dump(), "device": str(device)})
    proc = subprocess.run([sys.executable, "-m", "nasp.bench", payload], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe for {name} failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"])


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


if __name__ == "__main__":  # the memory probe: python -m nasp.bench '{"name": ..., "cfg": ..., "device": ...}'
    args = json.loads(sys.argv[1])
    print(json.dumps({"peak_mb": peak_memory_mb(args["name"], BenchConfig(**args["cfg"]), torch.device(args["device"]))}))
