"""The quick search's defaults (a bare `nasp run`): A's start jittered by the seed, the first steps training only the
weights; the paper presets keep the authors' start and schedule, rnn spaces their own defaults."""

from pathlib import Path

import pytest
import torch
import yaml

from nasp.algorithms import ALGORITHMS, algorithm_options
from nasp.config import AlgorithmConfig, OptimConfig, build_config, load_yaml, merge, parse_overrides
from nasp.model import SearchNetwork
from nasp.search_run import CNN_QUICK_DEFAULTS, build_task, prepare
from nasp.spaces import get_space
from nasp.study.config import search_config, study_config


def _options(overrides=(), preset=None):
    tree = load_yaml(preset) if preset else {}
    cfg, _ = prepare(build_config(merge(tree, parse_overrides(list(overrides)))))
    return algorithm_options(cfg)


def test_a_bare_cnn_run_takes_the_quick_defaults_and_given_keys_win():
    o = _options()
    assert (o.init_jitter, o.warmup, o.lr_schedule) == tuple(CNN_QUICK_DEFAULTS[f"algorithm.{k}"]
                                                             for k in ("init_jitter", "warmup", "lr_schedule"))
    o = _options(["algorithm.init_jitter=0", "algorithm.warmup=0.1", "algorithm.lr_schedule=constant"])
    assert (o.init_jitter, o.warmup, o.lr_schedule) == (0.0, 0.1, "constant")
    rnn = _options(["space=rnn"])
    assert (rnn.init_jitter, rnn.warmup, rnn.lr_schedule) == (0.0, 0.0, "constant")


@pytest.mark.parametrize("algorithm", ["nasp", "darts-1st"])
def test_the_paper_presets_keep_the_authors_start_and_schedule(algorithm):
    o = _options([f"algorithm={algorithm}"], "paper-cifar10")
    assert (o.init_jitter, o.warmup, o.lr_schedule) == (0.0, 0.0, "constant")
    for preset in ("study-cifar10", "study-cpu"):
        study = study_config([], preset)
        for arm in study.arms:
            cfg, _ = prepare(search_config(study, arm, 0, Path("unused")))
            o = algorithm_options(cfg)
            assert (o.init_jitter, o.warmup, o.lr_schedule) == (0.0, 0.0, "constant"), (preset, arm.label)


def _algo(name, seed, jitter):
    space = get_space("cnn12")
    torch.manual_seed(0)
    net = SearchNetwork(space, 2, 3, num_classes=2, in_channels=1)
    return ALGORITHMS.get(name)(space, net, AlgorithmConfig(name=name, init_jitter=jitter), OptimConfig(), 1,
                                torch.device("cpu"), False, seed)


def test_the_jitter_is_seeded_bounded_and_breaks_every_tie():
    a, b, c = (_algo("nasp", s, 0.01).A["normal"] for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - 0.5).abs().max() <= 0.01 and len(set(a.flatten().tolist())) == a.numel()
    plain = _algo("nasp", 0, 0.0)
    assert torch.equal(plain.A["normal"], torch.full_like(a, 0.5))  # no jitter: the authors' start, exactly
    assert torch.equal(plain.generator.get_state(), torch.Generator().manual_seed(7919).get_state())  # not drawn from
    assert torch.equal(_algo("darts-1st", 0, 0.01).A["normal"], _algo("darts-1st", 0, 0.0).A["normal"])  # no tie


def test_the_warmup_steps_leave_a_unchanged(tmp_path):
    cfg = build_config(parse_overrides(["data.limit=128", "batch_size=16", "model.channels=4", "model.layers=3",
                                        "epochs=2", "algorithm.warmup=0.375", f"out={tmp_path}", "threads=1"]))
    task = build_task(cfg)
    assert task.steps_per_epoch == 4 and task.warmup_steps == 3  # int(0.375 * 8)
    start = {ct: a.detach().clone() for ct, a in task.algorithm.A.items()}
    moved = []
    for epoch in range(2):
        task.start_epoch(epoch)
        for i, batch in enumerate(task.batches(epoch, 0)):
            task.step(batch, epoch, i)
            moved.append(any(not torch.equal(a, start[ct]) for ct, a in task.algorithm.A.items()))
    assert moved[:4] == [False, False, False, True]


def test_a_cosine_schedule_anneals_a_learning_rate_each_epoch_and_resumes_with_it():
    import math

    space = get_space("cnn12")
    torch.manual_seed(0)
    net = SearchNetwork(space, 2, 3, num_classes=2, in_channels=1)
    epochs, lr = 4, 3e-4
    algo = ALGORITHMS.get("nasp")(space, net, AlgorithmConfig(name="nasp", lr_schedule="cosine"), OptimConfig(),
                                  epochs, torch.device("cpu"), False, 0)
    seen = [algo.arch_opt.param_groups[0]["lr"]]
    for _ in range(epochs):
        algo.end_epoch()
        seen.append(algo.arch_opt.param_groups[0]["lr"])
    assert seen == pytest.approx([lr * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs + 1)], abs=1e-12)
    state = algo.state_dict()
    again = ALGORITHMS.get("nasp")(space, net, AlgorithmConfig(name="nasp", lr_schedule="cosine"), OptimConfig(),
                                   epochs, torch.device("cpu"), False, 0)
    again.load_state_dict(state)
    assert again.arch_opt.param_groups[0]["lr"] == seen[-1] and again.arch_sched.last_epoch == epochs
    constant = ALGORITHMS.get("nasp")(space, net, AlgorithmConfig(name="nasp"), OptimConfig(), epochs,
                                      torch.device("cpu"), False, 0)
    constant.end_epoch()
    assert constant.arch_opt.param_groups[0]["lr"] == lr  # the papers' constant rate


def _config_values(capsys, *args):
    """`nasp config ARGS --format yaml` as the config it describes."""
    from nasp.cli.main import main

    assert main(["config", "--format", "yaml", *args]) == 0
    return build_config(yaml.safe_load(capsys.readouterr().out))


def test_nasp_config_shows_the_values_a_run_on_that_space_uses(capsys):
    from nasp.cli.main import main

    for args in ([], ["space=rnn"], ["space=cnn7", "algorithm.warmup=0.5"]):
        cfg, _ = prepare(build_config(parse_overrides(list(args))))
        shown = _config_values(capsys, *args)
        assert shown.model_dump(exclude={"algorithm"}) == cfg.model_dump(exclude={"algorithm"}), args
        assert algorithm_options(shown) == algorithm_options(cfg), args
    assert main(["config"]) == 0
    table = capsys.readouterr().out
    assert any(line.split()[:2] == ["algorithm.lr_schedule", "'cosine'"] for line in table.splitlines())
    assert main(["config", "space=rnn"]) == 0
    table = capsys.readouterr().out
    assert any(line.split()[:2] == ["optim.lr", "5.0"] for line in table.splitlines())
