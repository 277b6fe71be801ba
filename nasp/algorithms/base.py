"""One interface for every search algorithm (NASLib style); the trainer knows only this."""

from __future__ import annotations

import contextlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from nasp import distributed
from nasp.algorithms.graphs import GraphedSteps
from nasp.algorithms.registry import validate_options
from nasp.config import AlgorithmConfig, AlgorithmOptions, OptimConfig
from nasp.genotype import Edge, Genotype
from nasp.model import SearchableNetwork
from nasp.model.loss import cross_entropy
from nasp.spaces import SPACES, SearchSpace, get_space

Batch = tuple[torch.Tensor, torch.Tensor]


def step_numbers(loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight step's (loss, correct predictions) as 0-dim tensors on the device: reading them here would
    make the host wait for the GPU at every step."""
    return loss.detach(), (logits.detach().argmax(1) == y).sum()


class SearchAlgorithm(ABC):
    """Owns the architecture A, the search network's weights w and their optimisers.

    Subclasses implement one architecture step (on a validation batch) and one weight step (on a
    training batch); the trainer alternates them. ``Options`` is the algorithm's own pydantic model
    of its ``algorithm.*`` keys (a subclass of AlgorithmOptions, which has lr, betas, weight_decay
    and init); ``options`` is the set of those keys' names, derived from it."""

    name: ClassVar[str]
    Options: ClassVar[type[AlgorithmOptions]] = AlgorithmOptions
    options: ClassVar[frozenset[str]] = frozenset(AlgorithmOptions.model_fields)
    cfg: AlgorithmOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.Options, type) and issubclass(cls.Options, AlgorithmOptions):
            cls.options = frozenset(cls.Options.model_fields)  # (else register_algorithm refuses the class)

    def __init__(self, space: SearchSpace, net: SearchableNetwork, options: AlgorithmOptions | AlgorithmConfig,
                 optim: OptimConfig, epochs: int, device: torch.device, amp: bool = True, seed: int = 0) -> None:
        self.space = space
        self.net = net
        self.cfg = self.coerce_options(options)
        self.optim_cfg = optim
        self.device = device
        self.amp = amp and device.type == "cuda"
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.A = {ct: self.start_arch(shape).to(device).requires_grad_(True) for ct, shape in net.arch_shapes.items()}
        self.grad_norm: torch.Tensor | None = None  # of the last weight step, before clipping
        self.graphs = GraphedSteps(1, False, lambda: self.w_opt.zero_grad(set_to_none=True))  # eager until enabled
        self.arch_opt = torch.optim.Adam(list(self.A.values()), lr=self.cfg.lr, betas=self.cfg.betas,
                                         weight_decay=self.cfg.weight_decay)
        self.arch_sched: torch.optim.lr_scheduler.LRScheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.arch_opt, epochs, eta_min=0.0)
            if self.cfg.lr_schedule == "cosine"
            else torch.optim.lr_scheduler.ConstantLR(self.arch_opt, factor=1.0, total_iters=0))
        self.w_opt = torch.optim.SGD(net.parameters(), lr=optim.lr, momentum=optim.momentum,
                                     weight_decay=optim.weight_decay)
        self.sched: torch.optim.lr_scheduler.LRScheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, epochs, eta_min=optim.lr_min)
            if optim.schedule == "cosine" else torch.optim.lr_scheduler.ConstantLR(self.w_opt, factor=1.0, total_iters=0))

    @classmethod
    def coerce_options(cls, options: AlgorithmOptions | AlgorithmConfig) -> AlgorithmOptions:
        """``options`` as this algorithm's ``Options``: an instance of it as is; the ``algorithm`` section
        of a RunConfig, or other options, checked against it (ConfigError when they do not fit)."""
        if isinstance(options, cls.Options):
            return options
        if isinstance(options, AlgorithmConfig):
            return validate_options(cls, options.given)
        if isinstance(options, AlgorithmOptions):
            return validate_options(cls, {k: getattr(options, k) for k in options.model_fields_set})
        raise TypeError(f"{cls.__name__} takes its options as {cls.Options.__name__}, not {type(options).__name__}")

    # --- what each algorithm defines ------------------------------------------------------
    tied_start: ClassVar[bool] = True  # init_arch gives every entry one value: ``init_jitter`` applies

    def init_arch(self, shape: tuple[int, int]) -> torch.Tensor:
        """A's starting value for one cell type (rows: edges, columns: ops): ``init`` everywhere."""
        return torch.full(shape, self.cfg.init)

    def start_arch(self, shape: tuple[int, int]) -> torch.Tensor:
        """A's start: ``init_arch``, plus ``init_jitter`` * U(-1, 1) from the run's generator where the start is a tie
        (``tied_start``); without jitter the generator is not drawn from, so its later draws stay as they were."""
        a = self.init_arch(shape)
        if self.tied_start and self.cfg.init_jitter > 0:
            a = a + self.cfg.init_jitter * (2 * torch.rand(shape, generator=self.generator, dtype=a.dtype) - 1)
        return a

    @abstractmethod
    def arch_step(self, val: Batch, train: Batch) -> torch.Tensor | float:
        """Update A from a validation batch (``train`` is there for second-order methods); returns F, best as a
        0-dim tensor on the device (the task reads the step's numbers in one transfer, see ``step_numbers``)."""

    @abstractmethod
    def weight_step(self, train: Batch) -> tuple[torch.Tensor | float, torch.Tensor | int]:
        """Update w on a training batch; returns (loss, correct predictions), best as 0-dim device tensors."""

    @abstractmethod
    def discrete(self) -> dict[str, torch.Tensor]:
        """Ā per cell type: the architecture the weights are (or would be) trained with."""

    @abstractmethod
    def genotype(self) -> Genotype:
        """The architecture this search returns now."""

    @abstractmethod
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Forward pass of the network as it is searched (for validation accuracy)."""

    # --- shared machinery -----------------------------------------------------------------
    def use_cuda_graphs(self, size: int) -> bool:
        """Replay weight steps from CUDA graphs (``graph_step``) with a cache of ``size``; only on CUDA and in
        one process (the all-reduce of torchrun's ranks is not captured). Returns whether it is on."""
        on = self.device.type == "cuda" and distributed.size() == 1
        self.graphs = GraphedSteps(size, on, self.graphs.clear_grads)
        return on

    def graph_step(self, key: Hashable, fn: Callable[..., tuple[torch.Tensor, ...]], *inputs: torch.Tensor
                   ) -> tuple[torch.Tensor, ...]:
        """``fn(*inputs)``, a weight step returning (loss, correct, grad_norm): replayed from the graph of
        ``key`` (with the learning rate, baked into a capture) when graphs are on. Sets ``grad_norm``."""
        loss, correct, self.grad_norm = self.graphs((key, self.weight_lr), fn, *inputs)
        return loss, correct

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast on CUDA when ``amp`` is on, else a no-op context."""
        if self.amp:  # a graph's capture needs the cast cache off (torch.cuda.graphs docs)
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16, cache_enabled=not self.graphs.enabled)
        return contextlib.nullcontext()

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of both steps: cross-entropy."""
        return cross_entropy(logits, y)

    def sgd_step(self, loss: torch.Tensor, fill_unused: bool = False) -> None:
        """Backward, clip and SGD step on the weights that took part in ``loss``; the gradient norm before
        clipping is kept in ``grad_norm`` (the run loop stops a run whose norm is not finite). ``fill_unused``
        gives the other weights a zero gradient, so weight decay and momentum move them too. A network's
        ``penalty`` from the forward that gave ``loss`` (the recurrent network's activation regularisers) is added
        here, to the weights' loss only, as DARTS does; the loss a step reports stays the plain one."""
        penalty = getattr(self.net, "penalty", None)
        self.w_opt.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        if fill_unused:
            for p in self.net.parameters():
                if p.grad is None and p.requires_grad:
                    p.grad = torch.zeros_like(p)
        distributed.average_gradients(self.net.parameters())  # under torchrun: every rank the same step
        self.grad_norm = nn.utils.clip_grad_norm_([p for p in self.net.parameters() if p.grad is not None],
                                                  self.optim_cfg.grad_clip)
        self.w_opt.step()

    def arch_update(self, grads: dict[str, torch.Tensor]) -> None:
        """One Adam step on A with the given gradients (averaged over the ranks under torchrun, so every rank
        holds the same A: this hook serves every algorithm, plugins included)."""
        grads = distributed.average(grads)
        self.arch_opt.zero_grad(set_to_none=True)
        for ct, g in grads.items():
            self.A[ct].grad = g.to(self.A[ct].dtype)
        self.arch_opt.step()

    @property
    def weight_lr(self) -> float:
        """The weights' current learning rate."""
        return float(self.w_opt.param_groups[0]["lr"])

    def validated(self, acc: float) -> None:
        """The searched network's validation score at the end of an epoch, higher is better: accuracy, or minus the
        loss for a language model (random search keeps its best trial)."""
        return None

    def end_epoch(self) -> None:
        """Called after each epoch: steps the learning-rate schedules of the weights and of A."""
        with warnings.catch_warnings():  # (an epoch of the warm-up ends before A's first step: torch warns of it)
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            self.sched.step()
            self.arch_sched.step()

    def arch_values(self) -> dict[str, list[list[float]]]:
        """A of each cell type as nested lists (rows: edges, columns: ops)."""
        return {ct: a.detach().cpu().tolist() for ct, a in self.A.items()}

    def discrete_values(self) -> dict[str, list[list[float]]]:
        """Ā of each cell type as nested lists (rows: edges, columns: ops)."""
        return {ct: a.detach().cpu().tolist() for ct, a in self.discrete().items()}

    def genotype_from_mask(self, masks: dict[str, torch.Tensor]) -> Genotype:
        """The genotype that keeps, for each cell type, the (edge, op) entries where ``masks`` is nonzero."""
        cells: dict[str, list[list[Edge]]] = {}
        for ct, mask in masks.items():
            cell = self.space.cells[ct]
            rows = mask.nonzero().tolist()
            nodes: list[list[Edge]] = []
            for j in range(cell.n_nodes):
                edges = cell.node_edges(j)
                kept = sorted((cell.edges[e][0], cell.ops[k]) for e, k in rows if e in edges)
                nodes.append([Edge(op=op, input=src) for src, op in kept])
            cells[ct] = nodes
        return Genotype(space=self.space.name, cells=cells, space_def=self.space_def)

    @property
    def space_def(self) -> SearchSpace | None:
        """The space, stored in genotypes only when the registry cannot rebuild it by name."""
        if self.space.name in SPACES and get_space(self.space.name) == self.space:
            return None
        return self.space

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint needs: the network, A, both optimisers, the schedule."""
        return {
            "net": self.net.state_dict(),
            "A": {ct: a.detach().cpu() for ct, a in self.A.items()},
            "arch_opt": self.arch_opt.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "sched": self.sched.state_dict(),
            "arch_sched": self.arch_sched.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` gave."""
        self.net.load_state_dict(state["net"])
        with torch.no_grad():
            for ct, a in state["A"].items():
                self.A[ct].copy_(a)
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.graphs.forget()  # captured steps point at the momentum buffers just replaced
        self.sched.load_state_dict(state["sched"])
        if "arch_sched" in state:  # (checkpoints before A had a schedule: constant)
            self.arch_sched.load_state_dict(state["arch_sched"])
        self.generator.set_state(state["generator"])

    def parameters_of_ops(self) -> Iterator[nn.Parameter]:
        """The weights the weight optimiser trains."""
        return self.net.parameters()
