"""Issue 13 on the CPU: a search step reads nothing back to the host but the selection, the batched probe equals
the unbatched one, and the CUDA-graph cache keeps, finds and evicts what it should."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from nasp.algorithms import ALGORITHMS
from nasp.config import AlgorithmConfig, OptimConfig
from nasp.model import SearchNetwork
from nasp.spaces import get_space

# Tensor methods that make the host wait for a GPU (they read a value back) when the tensor lives there
READS = {"item", "tolist", "numpy", "cpu", "__bool__", "__int__", "__float__", "__index__", "__format__", "__repr__",
         "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive", "equal", "allclose"}


class HostReads(TorchFunctionMode):
    """Records every call that reads a tensor's value on the host: the methods above, ``.to`` a CPU device,
    and indexing with a boolean tensor (a hidden nonzero). ``.to`` counts only when called outside torch
    (torch's own, e.g. in clip_grad_norm_, moves to the gradients' device: a no-op on a GPU). ``ignore``:
    tensors on the host by design (Adam's step counters: torch keeps them on the CPU unless capturable)."""

    def __init__(self, ignore: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.ignore = ignore
        self.reads: list[tuple[str, torch.Tensor]] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        subject = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if subject is not None and id(subject) not in self.ignore and _reads(name, args, kwargs):
            self.reads.append((name, subject))
        return func(*args, **kwargs)


def _reads(name: str, args: tuple, kwargs: dict) -> bool:
    if name in READS:
        return True
    if name == "to":
        return any(str(a) == "cpu" for a in [*args[1:], kwargs.get("device")]) and _outside_torch()
    if name in ("__getitem__", "__setitem__"):
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
    return False


def _outside_torch() -> bool:
    frame = sys._getframe(3)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return frame is None or f"{os.sep}torch{os.sep}" not in frame.f_code.co_filename


def _algo(name: str, **options: Any) -> tuple[Any, list[tuple[torch.Tensor, torch.Tensor]]]:
    torch.manual_seed(0)
    space = get_space("cnn12")
    net = SearchNetwork(space, channels=4, layers=3)
    algo = ALGORITHMS.get(name)(space, net, AlgorithmConfig(name=name, **options), OptimConfig(), 2,
                                torch.device("cpu"), amp=False)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, 3, 8, 8, generator=gen), torch.randint(10, (4,), generator=gen)) for _ in range(6)]
    return algo, batches


def _step_reads(algo: Any, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """The host reads of the third step (after warm-up steps that create the optimisers' state)."""
    for i in range(2):
        algo.arch_step(batches[2 * i + 1], batches[2 * i])
        algo.weight_step(batches[2 * i])
    counters = {id(s["step"]) for s in algo.arch_opt.state.values() if "step" in s}
    with HostReads(counters) as reads:
        f = algo.arch_step(batches[5], batches[4])
        loss, correct = algo.weight_step(batches[4])
    assert all(isinstance(t, torch.Tensor) and t.dim() == 0 for t in (f, loss, correct))
    return reads.reads


def test_the_detector_catches_host_reads():
    t, mask = torch.ones(3), torch.tensor([True, False, True])
    with HostReads() as reads:
        t.sum().item()
        float(t[0])
        t[mask] = 0.0
        t.to("cpu")
        t.add(1.0)  # a device op: not a read
    assert [name for name, _ in reads.reads] == ["item", "__float__", "__setitem__", "to"]


@pytest.mark.parametrize("name,options", [("nasp", {}), ("nasp", {"eta": 0.1}), ("pa-lazy", {})])
def test_a_proximal_step_reads_only_the_selection(name, options):
    """arch_step + weight_step: the selection of the new Ā read once (all cell types in one transfer), nothing
    else; the architecture step reuses the previous weight step's selection."""
    algo, batches = _algo(name, **options)
    reads = _step_reads(algo, batches)
    n_entries = sum(a.numel() for a in algo.A.values())
    assert [(n, t.dtype, t.numel()) for n, t in reads] == [("tolist", torch.bool, n_entries)]


def test_darts_steps_read_nothing():
    algo, batches = _algo("darts-1st")
    assert _step_reads(algo, batches) == []


def test_an_item_in_the_step_is_caught():
    """The check can fail: a weight step that reads its loss is reported."""
    algo, batches = _algo("nasp")
    step = algo.weight_step

    def reading_step(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        loss, correct = step(batch)
        loss.item()
        return loss, correct

    algo.weight_step = reading_step
    assert ("item", torch.float32) in [(n, t.dtype) for n, t in _step_reads(algo, batches)]


@pytest.mark.parametrize("space_name,channels_last", [("cnn12", False), ("cnn7", True)])
def test_the_stacked_probe_equals_the_op_by_op_one(space_name, channels_last):
    """float64: the same gradient to rounding, and the same running statistics left in every batch norm."""
    from nasp.algorithms.gradients import fast_arch_grad
    from nasp.algorithms.prox import discretize
    from nasp.model.probe import selections_of

    space = get_space(space_name)
    torch.manual_seed(0)
    net = SearchNetwork(space, channels=4, layers=3, num_classes=5).double()
    x = torch.randn(6, 3, 12, 12, dtype=torch.float64)
    y = torch.randint(0, 5, (6,))
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    A = {ct: torch.rand(shape, dtype=torch.float64) for ct, shape in net.arch_shapes.items()}
    masks = {ct: discretize(a, space.cells[ct])[1] for ct, a in A.items()}
    selection = selections_of(masks, space.cells)
    assert any(len(group) > 1 for cell in net.cells for node in cell.stack_groups for group in node)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    out = {}
    for stacked in (False, True):
        net.load_state_dict(start)
        loss, grads = fast_arch_grad(net, x, y, None, selection, stacked=stacked)
        out[stacked] = loss, grads, {k: v.clone() for k, v in net.state_dict().items()}
    assert torch.equal(out[True][0], out[False][0])
    for ct, g in out[False][1].items():
        assert g.abs().sum() > 0
        assert float((out[True][1][ct] - g).norm() / g.norm()) < 1e-10, ct
    moved = [k for k, v in out[False][2].items() if "running" in k and not torch.equal(v, start[k])]
    assert moved  # the probe's ops ran in training mode and moved their statistics
    for k, v in out[False][2].items():
        torch.testing.assert_close(out[True][2][k], v, rtol=1e-12, atol=1e-14)


def test_the_graph_cache_counts_hits_and_evicts_the_least_recently_used():
    from nasp.algorithms.graphs import GraphCache

    built: list[str] = []
    cache: GraphCache[torch.Tensor] = GraphCache(2)

    def get(key: str) -> bool:
        return cache.get(key, lambda: built.append(key) or torch.full((1,), float(len(built))))[1]

    assert [get(k) for k in ["a", "a", "b", "a", "c", "b", "a"]] == [False, True, False, True, False, False, False]
    # c evicted b (a was used later); b evicted a; a evicted c
    assert built == ["a", "b", "c", "b", "a"] and list(cache.entries) == ["b", "a"]
    assert cache.stats() == {"graph_hits": 2, "graph_misses": 5, "graph_evictions": 3, "graph_hit_rate": 2 / 7,
                             "graphs": 2}
    assert cache.get("a", lambda: torch.zeros(1))[0].item() == 5.0  # the stored entry, not a new one
    with pytest.raises(ValueError, match="at least one"):
        GraphCache(0)


def test_off_cuda_graphs_fall_back_to_the_eager_step_and_keys_follow_the_selection():
    """cuda_graphs asked for on the CPU: the same numbers as without; NASP's key changes exactly when Ā does."""
    from nasp.algorithms.graphs import GraphCache
    from nasp.algorithms.nasp import selection_key
    from nasp.config import switch_on

    assert not switch_on("cuda_graphs", "on", "cpu") and not switch_on("cuda_graphs", "auto", "mps")
    assert switch_on("cuda_graphs", "on", "cuda") and not switch_on("cuda_graphs", "off", "cuda")
    runs = []
    for graphs in (False, True):
        algo, batches = _algo("nasp", lr=0.3)
        if graphs:
            assert not algo.use_cuda_graphs(4)
        cache: GraphCache[None] = GraphCache(4)
        keys, hits, out, masks = [], [], [], []
        for i in range(3):
            out.append(algo.arch_step(batches[2 * i + 1], batches[2 * i]))
            out.extend(algo.weight_step(batches[2 * i]))
            keys.append(selection_key(algo.selected()[2]))
            masks.append(torch.cat([m.flatten() for m in algo.selected()[1].values()]))
            hits.append(cache.get(keys[-1], lambda: None)[1])
        runs.append((torch.stack([t.double() for t in out]), keys, hits, masks))
    assert torch.equal(runs[0][0], runs[1][0])
    _, keys, hits, masks = runs[0]
    assert all((keys[i] == keys[j]) == torch.equal(masks[i], masks[j]) for i in range(3) for j in range(3))
    assert hits == [keys[i] in keys[:i] for i in range(len(keys))]
    assert len(set(keys)) > 1  # lr 0.3 moves A enough to change Ā: the key follows



def test_speed_switches_read_yaml_booleans_and_refuse_other_words():
    from nasp.config import build_config, parse_overrides
    from nasp.errors import ConfigError
    from nasp.evaluation.config import EvalConfig
    from nasp.evaluation.task import speed_mode

    assert [build_config(parse_overrides([f"cuda_graphs={v}"])).cuda_graphs for v in ("on", "off", "auto", "true")] \
        == ["on", "off", "auto", "on"]
    with pytest.raises(ConfigError, match=r"cuda_graphs.*'maybe'.*'auto', 'on' or 'off'"):
        build_config(parse_overrides(["cuda_graphs=maybe"]))
    cfg = build_config(parse_overrides(["compile=on", "cuda_graphs=off"], EvalConfig), EvalConfig)
    assert speed_mode(cfg, torch.device("cpu")) == "eager" and speed_mode(cfg, torch.device("cuda")) == "compile"
    assert speed_mode(cfg.model_copy(update={"cuda_graphs": "on"}), torch.device("cuda")) == "graphs"


def test_bench_times_the_variants_the_cpu_has():
    from nasp.bench import BenchConfig, run_bench

    cfg = BenchConfig(algorithms=["nasp"], channels=2, layers=1, batch_size=2, image_size=8, steps=1, memory=False,
                      eval_throughput=False, device="cpu")
    rows = run_bench(cfg, torch.device("cpu"))["variants"]
    assert [(r["mode"], r["amp"], r["channels_last"]) for r in rows] == [("eager", False, True), ("eager", False, False)]
    assert all(r["total_s"] > 0 and r["child_s"] > 0 and "graph_hit_rate" not in r for r in rows)
    assert "variants" not in run_bench(cfg.model_copy(update={"variants": False}), torch.device("cpu"))
