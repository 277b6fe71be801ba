"""Random search, the baseline of DARTS and of the NASP paper: architectures drawn uniformly from the space,
each trained from the same initial weights for a budget, the best by validation accuracy kept."""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field

from nasp.algorithms.base import Batch, SearchAlgorithm, step_numbers
from nasp.algorithms.registry import register_algorithm
from nasp.config import AlgorithmConfig, AlgorithmOptions, OptimConfig
from nasp.genotype import Genotype
from nasp.model import SearchableNetwork
from nasp.model.probe import selections_of
from nasp.spaces import SearchSpace


class RandomOptions(AlgorithmOptions):
    """Options of random search: how long each sampled architecture trains (A's optimiser keys are unused)."""

    epochs_per_trial: int = Field(1, ge=1, description="search epochs each sampled architecture trains for (a "
                                  "trial); the run's epochs are split into trials, the last one may be shorter")


@register_algorithm("random")
class RandomSearch(SearchAlgorithm):
    """Random search: per trial one architecture drawn uniformly (per edge a uniform op other than 'none', per
    node ``inputs_per_node`` uniform edges; a dense cell: every edge, any op, 'none' included), its weights trained
    from the run's initial weights with a fresh cosine schedule, scored by the epoch-end validation accuracy; the
    genotype is the best trial's."""

    Options = RandomOptions
    cfg: RandomOptions
    tied_start = False  # A is each trial's draw

    def __init__(self, space: SearchSpace, net: SearchableNetwork, options: AlgorithmOptions | AlgorithmConfig,
                 optim: OptimConfig, epochs: int, device: torch.device, amp: bool = True, seed: int = 0) -> None:
        super().__init__(space, net, options, optim, epochs, device, amp, seed)
        self.total_epochs = epochs
        self.done = 0  # epochs finished
        self.initial_weights = copy.deepcopy(self.net.state_dict())  # every trial starts from these
        self.epoch_in_trial = 0
        self.trial_due = False  # the next step starts a new trial (draw, initial weights, fresh schedule)
        self.trial_acc: float | None = None
        self.best_acc: float | None = None
        self.best = {ct: torch.zeros_like(a.detach()) for ct, a in self.A.items()}
        self._sample()
        self._new_trial_optimiser()

    def init_arch(self, shape: tuple[int, int]) -> torch.Tensor:
        return torch.zeros(shape)

    def _sample(self) -> None:
        """A new uniform architecture into A (0/1), drawn from the run's seeded generator."""
        with torch.no_grad():
            for ct, a in self.A.items():
                cell = self.space.cells[ct]
                usable = [k for k, op in enumerate(cell.ops) if op != "none" or cell.all_inputs] or list(range(cell.n_ops))
                m = torch.zeros(a.shape)
                for j in range(cell.n_nodes):
                    edges = list(cell.node_edges(j))
                    picked = torch.randperm(len(edges), generator=self.generator)[: cell.kept_inputs(j)]
                    for i in picked.tolist():
                        k = usable[int(torch.randint(len(usable), (1,), generator=self.generator))]
                        m[edges[i], k] = 1.0
                a.copy_(m.to(a.device))

    def _new_trial_optimiser(self) -> None:
        o = self.optim_cfg
        length = min(self.cfg.epochs_per_trial - self.epoch_in_trial, max(self.total_epochs - self.done, 1))
        self.w_opt = torch.optim.SGD(self.net.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, length, eta_min=o.lr_min)

    # --- the steps ------------------------------------------------------------------------------------
    def masks(self) -> dict[str, torch.Tensor]:
        return {ct: a.detach() > 0.5 for ct, a in self.A.items()}

    def _selection(self) -> dict[str, Any]:
        return selections_of(self.masks(), self.space.cells)

    def arch_step(self, val: Batch, train: Batch) -> torch.Tensor | float:
        """Starts the next trial when one is due; otherwise nothing: random search has no architecture objective
        (its arch_loss is 0)."""
        self._start_trial_if_due()
        return 0.0

    def weight_step(self, train: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = train
        with self.autocast():
            logits = self.net(x, None, self._selection())
        loss = self.loss(logits, y)
        self.sgd_step(loss)
        return step_numbers(loss, logits, y)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.net(x, None, self._selection())

    def validated(self, acc: float) -> None:
        self.trial_acc = acc

    def end_epoch(self) -> None:
        """Ends the trial after its epochs: keeps its architecture if it beat the best, then draws the next one
        and restores the initial weights."""
        self.sched.step()
        self.done += 1
        self.epoch_in_trial += 1
        if self.epoch_in_trial < self.cfg.epochs_per_trial and self.done < self.total_epochs:
            return
        if self.trial_acc is not None and (self.best_acc is None or self.trial_acc > self.best_acc):
            self.best_acc = self.trial_acc
            self.best = {ct: a.detach().clone() for ct, a in self.A.items()}
        self.epoch_in_trial, self.trial_acc = 0, None
        self.trial_due = self.done < self.total_epochs  # drawn at the next step: history shows the trial trained

    def _start_trial_if_due(self) -> None:
        if self.trial_due:
            self._sample()
            self.net.load_state_dict(self.initial_weights)
            self._new_trial_optimiser()
            self.trial_due = False

    # --- results --------------------------------------------------------------------------------------
    def discrete(self) -> dict[str, torch.Tensor]:
        """The architecture being trained now (this trial's)."""
        return {ct: a.detach().clone() for ct, a in self.A.items()}

    def genotype(self) -> Genotype:
        """The best trial's architecture (the current one before any trial has ended)."""
        masks = self.masks() if self.best_acc is None else {ct: b > 0.5 for ct, b in self.best.items()}
        return self.genotype_from_mask(masks)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "random": {
            "best": {ct: b.detach().cpu() for ct, b in self.best.items()}, "best_acc": self.best_acc,
            "trial_acc": self.trial_acc, "epoch_in_trial": self.epoch_in_trial, "done": self.done,
            "trial_due": self.trial_due}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        r = state["random"]
        self.done, self.epoch_in_trial = int(r["done"]), int(r["epoch_in_trial"])
        super().load_state_dict(state)
        self.best = {ct: b.to(self.device) for ct, b in r["best"].items()}
        self.best_acc, self.trial_acc, self.trial_due = r["best_acc"], r["trial_acc"], bool(r["trial_due"])
