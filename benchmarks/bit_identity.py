"""Bit-identity check of a search's first steps, for changes meant to be numerically neutral.

Runs the first ``--steps`` steps of the search the overrides describe (in-process, on the CPU by default) with
pinned threads, ``torch.use_deterministic_algorithms`` (warn-only where an op has no deterministic kernel) and the
config's seed, and takes a SHA-256 digest of A, Ā and every weight and buffer of the search network after each step.
``--write`` saves them as the reference; without it they are compared with the saved reference, and the first step
and part (A, Ā, weights) that differ are named.

    python benchmarks/bit_identity.py --write ref.json                  # before the change (the quick search)
    python benchmarks/bit_identity.py ref.json                          # after it: exit 0 identical, 1 not
    python benchmarks/bit_identity.py --steps 20 ref.json space=rnn     # any `nasp run` overrides

A reference holds for one machine, torch version and thread count (all recorded in it, and a mismatch is
reported): float results depend on them. Exit codes: 0 identical (or written), 1 different, 2 bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from nasp.config import build_config, parse_overrides
from nasp.errors import NaspError
from nasp.search_run import SearchTask, build_task

PARTS = ("A", "Abar", "weights")


def _digest(tensors: list[tuple[str, torch.Tensor]]) -> str:
    h = hashlib.sha256()
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def digests(task: SearchTask) -> dict[str, str]:
    """One digest each of A, Ā and the network's state (weights and buffers) as they are now."""
    algo = task.algorithm
    return {"A": _digest(sorted(algo.A.items())), "Abar": _digest(sorted(algo.discrete().items())),
            "weights": _digest(sorted(algo.net.state_dict().items()))}


def trail(overrides: list[str], steps: int, threads: int) -> list[dict[str, str]]:
    """The digests after each of the first ``steps`` steps of the search ``overrides`` describe."""
    cfg = build_config(parse_overrides([*overrides, f"threads={threads}"]))
    if cfg.device == "auto":
        cfg = cfg.model_copy(update={"device": "cpu"})
    was = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        task = build_task(cfg)
        out: list[dict[str, str]] = []
        epoch = 0
        while len(out) < steps and epoch < task.epochs:
            task.start_epoch(epoch)
            for i, batch in enumerate(task.batches(epoch, 0)):
                task.step(batch, epoch, i)
                out.append(digests(task))
                if len(out) == steps:
                    break
            else:
                task.end_epoch(epoch)
            epoch += 1
        return out
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def environment(threads: int) -> dict[str, Any]:
    return {"torch": torch.__version__, "threads": threads, "machine": __import__("platform").machine()}


def compare(reference: dict[str, Any], got: list[dict[str, str]]) -> str | None:
    """None when ``got`` equals the reference's trail, else where they first differ."""
    want = reference["trail"]
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        parts = [p for p in PARTS if w[p] != g[p]]
        if parts:
            return f"step {i + 1}: {', '.join(parts)} differ"
    if len(want) != len(got):
        return f"{len(got)} steps ran, the reference has {len(want)}"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", help="the reference JSON file (written with --write, else read)")
    ap.add_argument("overrides", nargs="*", help="`nasp run` key=value overrides (default: the quick search)")
    ap.add_argument("--steps", type=int, default=None, help="steps to run and digest (default: the reference's, "
                    "or 10 with --write)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, pinned (default 1)")
    ap.add_argument("--write", action="store_true", help="save this run's digests as the reference")
    args = ap.parse_args(argv)
    path = Path(args.reference)
    if args.steps is not None and args.steps < 1:
        print("bit_identity: --steps must be at least 1", file=sys.stderr)
        return 2
    reference = None
    if not args.write:
        try:
            reference = json.loads(path.read_text())
            if not isinstance(reference, dict) or not isinstance(reference.get("trail"), list):
                raise ValueError("it holds no trail of digests")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"bit_identity: cannot read the reference {path}: {exc} (write one with --write)", file=sys.stderr)
            return 2
    # a comparison reruns the reference's search; overrides given then come after its own
    overrides = list(args.overrides) if reference is None else [*reference["overrides"], *args.overrides]
    steps = args.steps or (10 if reference is None else int(reference["steps"]))
    try:
        got = trail(overrides, steps, args.threads)
    except NaspError as exc:
        print(f"bit_identity: {exc}", file=sys.stderr)
        return 2
    env = environment(args.threads)
    if reference is None:
        path.write_text(json.dumps({"overrides": list(args.overrides), "steps": len(got), **env, "trail": got},
                                   indent=1) + "\n")
        print(f"bit_identity: wrote {len(got)} steps' digests to {path}")
        return 0
    where = compare(reference, got)
    changed = [f"{k} {reference.get(k)} -> {v}" for k, v in env.items() if reference.get(k) != v]
    note = f" (the environment changed: {'; '.join(changed)})" if changed else ""
    if where is None:
        print(f"bit_identity: identical: A, Ā and the weights after each of {len(got)} steps{note}")
        return 0
    print(f"bit_identity: NOT identical: {where}{note}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
