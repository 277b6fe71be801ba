"""What the live screen shows, folded from trainer events (in-process or tailed from events.jsonl).

Events arrive as the dicts of ``Event.to_dict()``, so a run in this process and a run followed
through its run folder feed the same state. ``apply`` is cheap: it stores numbers, no rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (imported where used: the app imports this module before torch, see startup.py)
    from nasp.spaces import SearchSpace

Matrix = list[list[float]]


def selected_ops(discrete: Matrix | None, arch: Matrix | None = None) -> list[int]:
    """Each edge's selected op: the non-zero entry of Ā, else (an edge DARTS drops) the argmax of A."""
    rows = discrete or arch or []
    out = []
    for i, row in enumerate(rows):
        if discrete is not None and any(v != 0 for v in row):
            out.append(max(range(len(row)), key=lambda k: abs(row[k])))
        elif arch is not None and i < len(arch):
            a = arch[i]
            out.append(max(range(len(a)), key=lambda k: a[k]))
        else:
            out.append(-1)
    return out


def kept_rows(space: SearchSpace, cell_type: str, genotype: dict[str, Any] | None) -> set[int]:
    """Rows of A (edges) that the genotype keeps, to mark them in the grids."""
    if not genotype or cell_type not in genotype.get("cells", {}):
        return set()
    cell = space.cells[cell_type]
    rows = set()
    for j, node in enumerate(genotype["cells"][cell_type]):
        for e in node:
            rows.add(cell.node_edges(j).start + int(e["input"]))
    return rows


@dataclass
class EpochRecord:
    """One finished epoch: its metrics, A, Ā, each edge's selected op and the genotype."""

    epoch: int
    metrics: dict[str, Any]
    A: dict[str, Matrix]
    discrete: dict[str, Matrix]
    selected: dict[str, list[int]]
    genotype: dict[str, Any]


@dataclass
class LiveState:
    """The run as the app knows it; ``version`` changes whenever something new arrived."""

    run_dir: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    space: SearchSpace | None = None
    epochs: int = 0
    steps_per_epoch: int = 0
    device: str = ""
    status: str = "idle"  # idle | starting | running | paused | stopping | finished | stopped | failed
    message: str = ""
    epoch: int = 0  # epochs done
    step: int = 0  # steps done in the current epoch
    discrete: dict[str, Matrix] = field(default_factory=dict)
    changed: dict[str, set[tuple[int, int]]] = field(default_factory=dict)  # Ā entries the last update changed
    changes: int = 0  # Ā entries changed since the run started here
    updates: int = 0  # step events received
    A: dict[str, Matrix] = field(default_factory=dict)
    genotype: dict[str, Any] | None = None
    step_train_loss: list[float] = field(default_factory=list)
    step_train_acc: list[float] = field(default_factory=list)
    step_arch_loss: list[float] = field(default_factory=list)
    last_arch_s: float = 0.0
    last_weight_s: float = 0.0
    history: list[EpochRecord] = field(default_factory=list)
    version: int = 0
    _rate_t0: tuple[float, int] | None = None
    _rate_t1: tuple[float, int] | None = None

    @property
    def algorithm(self) -> str:
        return str(self.config.get("algorithm", {}).get("name", ""))

    @property
    def softmax_A(self) -> bool:
        """DARTS keeps raw alphas in A; plots show their softmax."""
        return self.algorithm.startswith("darts")

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "paused", "stopping")

    def apply(self, event: dict[str, Any], now: float) -> None:
        """Fold one event (a dict with ``event``) into the state; ``now`` is a monotonic time for the ETA."""
        kind = event.get("event")
        if kind == "run_start":
            self._run_start(event)
        elif kind == "step":
            self._step(event, now)
        elif kind == "epoch_end":
            self._epoch_end(event)
        elif kind in ("paused", "resumed"):
            if self.status in ("running", "paused"):
                self.status = "paused" if kind == "paused" else "running"
            self._rate_t0 = self._rate_t1 = None  # the ETA's rate counts running time only
        elif kind == "run_end":
            self.status = str(event.get("status", "finished"))
            if "epoch" in event:  # events count from 1 (nasp.trainer.events); the state holds epochs done
                from nasp.trainer.events import run_position

                self.epoch, self.step = run_position(int(event["epoch"]), int(event.get("step", 0)), self.steps_per_epoch)
            if self.status == "finished":
                self.step = 0
        self.version += 1

    def _run_start(self, ev: dict[str, Any]) -> None:
        self.run_dir = ev.get("run_dir")
        self.config = ev.get("config", {})
        from nasp.spaces import SearchSpace

        self.space = SearchSpace.model_validate(ev["space"]) if ev.get("space") else None
        self.epochs = int(ev.get("epochs", 0))
        self.steps_per_epoch = int(ev.get("steps_per_epoch", 0))
        self.device = str(ev.get("device", ""))
        self.epoch, self.step = int(ev.get("start_epoch", 0)), int(ev.get("start_step", 0))
        # a resumed run restarts from its checkpoint: forget what came after it
        self.history = [h for h in self.history if h.epoch <= self.epoch]
        keep = self.global_step
        del self.step_train_loss[keep:], self.step_train_acc[keep:], self.step_arch_loss[keep:]
        self.status = "running"
        self._rate_t0 = self._rate_t1 = None

    def _step(self, ev: dict[str, Any], now: float) -> None:
        self.epoch, self.step = int(ev["epoch"]) - 1, int(ev["step"])  # the event's epoch counts from 1
        self.steps_per_epoch = int(ev.get("steps_per_epoch", self.steps_per_epoch))
        new = ev.get("discrete") or {}
        self.changed = {}
        for ct, mat in new.items():
            old = self.discrete.get(ct)
            diff = set()
            if old is not None and len(old) == len(mat):
                diff = {(r, c) for r, (ro, rn) in enumerate(zip(old, mat, strict=True))
                        for c, (a, b) in enumerate(zip(ro, rn, strict=False)) if a != b}
            self.changed[ct] = diff
            self.changes += len(diff)
        self.discrete.update(new)
        self.updates += 1
        # per-step curves: one point a step (a followed run's throttled events give fewer points)
        g = self.global_step
        for series, key in ((self.step_train_loss, "train_loss"), (self.step_train_acc, "train_acc"),
                            (self.step_arch_loss, "arch_loss")):
            if len(series) >= g:
                del series[g - 1:]
            value = float(ev.get(key, 0.0))
            # steps a followed run's throttled events skipped: their points repeat the next one, so point i is step i
            series.extend([value] * (g - len(series)))
        self.last_arch_s, self.last_weight_s = float(ev.get("arch_s", 0.0)), float(ev.get("weight_s", 0.0))
        if self.status in ("starting", "idle"):
            self.status = "running"
        if self._rate_t0 is None:
            self._rate_t0 = (now, g)
        self._rate_t1 = (now, g)

    def _epoch_end(self, ev: dict[str, Any]) -> None:
        e = int(ev["epoch"])
        metrics = {k: v for k, v in ev.items() if k not in ("event", "A", "discrete", "genotype")}
        A, disc = ev.get("A") or {}, ev.get("discrete") or {}
        selected = {ct: selected_ops(disc.get(ct), A.get(ct)) for ct in disc}
        self.history = [h for h in self.history if h.epoch < e]
        self.history.append(EpochRecord(e, metrics, A, disc, selected, ev.get("genotype") or {}))
        self.A, self.genotype = A, ev.get("genotype")
        self.discrete.update(disc)
        self.epoch, self.step = e, 0
        self.epochs = int(ev.get("epochs", self.epochs))

    # --- derived numbers -----------------------------------------------------------------------
    def eta_s(self) -> float | None:
        """Seconds left: steps left at the rate seen since this app started watching, plus evaluations."""
        if self._rate_t0 is None or self._rate_t1 is None or self.status not in ("running", "stopping"):
            return None
        (t0, g0), (t1, g1) = self._rate_t0, self._rate_t1
        if g1 <= g0 or t1 <= t0:
            return None
        rate = (g1 - g0) / (t1 - t0)
        left = max(self.epochs * self.steps_per_epoch - g1, 0)
        evals = (self.epochs - self.epoch) * float(self.history[-1].metrics.get("eval_s", 0.0)) if self.history else 0.0
        return left / rate + evals

    def epoch_series(self, key: str) -> list[float]:
        return [float(h.metrics.get(key, 0.0)) for h in self.history]


def format_seconds(s: float | None) -> str:
    if s is None:
        return "--"
    s = round(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
