"""CUDA graphs of the weight step, one per discrete architecture Ā (and learning rate and batch shape).

A search's weight step is launch-bound on a GPU: the child network's few small kernels cost more to launch
than to run. Replaying a captured graph launches the whole step (forward, backward, clip, SGD) at once. Ā
changes rarely late in a search, so a small LRU of graphs keyed by the selection serves most steps; a miss
runs the step eagerly on the capture stream (the warm-up capture needs, and the real step of that batch),
then captures it for the next time. Following the torch.cuda.graphs docs: warm-up and capture on one side
stream, gradients set to None before capture so backward allocates them in the graph's pool, static input
buffers the batch is copied into before each replay, outputs cloned after it.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import torch

V = TypeVar("V")
Step = Callable[..., tuple[torch.Tensor, ...]]


class GraphCache(Generic[V]):
    """An LRU of at most ``size`` entries that counts hits, misses and evictions (the hit rate is what
    decides whether capturing pays)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a graph cache holds at least one graph, not {size}")
        self.size = size
        self.entries: OrderedDict[Hashable, V] = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable, build: Callable[[], V]) -> tuple[V, bool]:
        """(the entry of ``key``, whether it was there); a missing entry is built, stored, and the least
        recently used one evicted when the cache is full."""
        if key in self.entries:
            self.hits += 1
            self.entries.move_to_end(key)
            return self.entries[key], True
        self.misses += 1
        value = build()
        self.entries[key] = value
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)
            self.evictions += 1
        return value, False

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def stats(self) -> dict[str, float | int]:
        return {"graph_hits": self.hits, "graph_misses": self.misses, "graph_evictions": self.evictions,
                "graph_hit_rate": self.hit_rate, "graphs": len(self.entries)}


class CapturedStep:
    """One step function captured on static copies of its inputs. Building it runs the step once eagerly
    on ``stream`` (the warm-up, and the real step of those inputs: ``first``), then captures it."""

    def __init__(self, fn: Step, inputs: tuple[torch.Tensor, ...], stream: torch.cuda.Stream,
                 clear_grads: Callable[[], None]) -> None:
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            first = fn(*inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.first = tuple(t.clone() for t in first)  # on the caller's stream, which uses them
        self.inputs = tuple(t.clone() for t in inputs)
        self.graph: torch.cuda.CUDAGraph | None = torch.cuda.CUDAGraph()
        self.error = ""
        clear_grads()  # backward allocates the gradients in the graph's pool
        try:  # a capture only records kernels: if it fails, the weights are as the warm-up left them
            with torch.cuda.graph(self.graph, stream=stream):
                self.outputs = fn(*self.inputs)
        except RuntimeError as exc:
            self.graph, self.error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            clear_grads()

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        assert self.graph is not None
        for static, t in zip(self.inputs, inputs, strict=True):
            static.copy_(t)
        self.graph.replay()
        return tuple(t.clone() for t in self.outputs)


class GraphedSteps:
    """Runs a step through the cache of captured graphs on CUDA, eagerly elsewhere (``enabled`` False)."""

    def __init__(self, size: int, enabled: bool, clear_grads: Callable[[], None]) -> None:
        self.cache: GraphCache[CapturedStep] = GraphCache(size)
        self.enabled = enabled
        self.clear_grads = clear_grads
        self.error = ""
        self._stream: torch.cuda.Stream | None = None

    def __call__(self, key: Hashable, fn: Step, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.enabled:
            return fn(*inputs)
        if self._stream is None:
            self._stream = torch.cuda.Stream()
        stream = self._stream
        key = (key, *((tuple(t.shape), t.dtype, t.stride()) for t in inputs))
        step, hit = self.cache.get(key, lambda: CapturedStep(fn, inputs, stream, self.clear_grads))
        if hit:
            return step(*inputs)
        first = step.first
        del step.first
        if step.graph is None:  # this step cannot be captured: eager from now on, said once
            self.enabled, self.error = False, step.error
            self.forget()
            warnings.warn(f"CUDA graphs are off for this run: the weight step could not be captured ({step.error})",
                          RuntimeWarning, stacklevel=2)
        return first

    def stats(self) -> dict[str, Any]:
        """The cache's counters while graphs are on, or were until a capture failed (``error`` says why)."""
        return self.cache.stats() if self.enabled or self.error else {}

    def forget(self) -> None:
        """Drop every graph (they hold the addresses of the optimiser's state, which loading a checkpoint
        replaces); the counters stay."""
        self.cache.entries.clear()
