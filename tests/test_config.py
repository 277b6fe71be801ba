"""The run config's checks, the algorithms' own options, and the memory estimate against real measurements."""

import math

import pytest
import torch

from nasp.algorithms import ALGORITHMS, algorithm_options, with_algorithm_options
from nasp.config import RunConfig, build_config, parse_overrides
from nasp.errors import ConfigError
from nasp.genotype import Genotype
from nasp.model import SearchNetwork
from nasp.model.budget import (
    MemoryEstimate,
    available_memory,
    check_memory,
    estimate_eval_memory,
    estimate_search_memory,
)
from nasp.model.child import ChildNetwork
from nasp.spaces import get_space


def config(*overrides: str) -> RunConfig:
    return build_config(parse_overrides(list(overrides)))


@pytest.mark.parametrize("name", ["nasp", "pa-standard", "pa-lazy", "darts-1st", "darts-2nd", "random"])
def test_every_algorithm_declares_its_options_and_round_trips(name):
    cfg = with_algorithm_options(config(f"algorithm={name}"))
    assert set(cfg.algorithm.given) == set(ALGORITHMS.get(name).Options.model_fields)
    assert RunConfig.model_validate_json(cfg.model_dump_json()) == cfg
    assert algorithm_options(cfg) == algorithm_options(config(f"algorithm={name}"))


def test_defaults_are_the_old_ones():
    assert algorithm_options(config("algorithm=nasp")).init == 0.5
    assert algorithm_options(config("algorithm=darts-2nd")).init == 1e-3
    assert algorithm_options(config("algorithm=nasp")).selected_value == "one"
    assert algorithm_options(config("algorithm=pa-lazy")).selected_value == "keep"


def test_older_config_json_with_every_key_still_reads():
    """config.json of earlier versions listed every algorithm's keys, at their defaults (or null)."""
    old = {"algorithm": {"name": "darts-1st", "eta": 0.0, "lr": 3e-4, "betas": [0.5, 0.999], "weight_decay": 1e-3,
                         "init": None, "selected_value": None, "epsilon": 0.0, "second_order": False}}
    options = algorithm_options(build_config(old))
    assert options.init == 1e-3 and options.betas == (0.5, 0.999)


@pytest.mark.parametrize("override", ["optim.lr=.inf", "optim.lr=.nan", "algorithm.init=.nan", "algorithm.lr=-.inf",
                                      "data.train_portion=.nan", "optim.grad_clip=.inf"])
def test_non_finite_numbers_are_refused(override):
    with pytest.raises(ConfigError, match="finite"):
        config(override)


def test_betas_and_seed_ranges():
    assert algorithm_options(config("algorithm.betas=0.9,0.99")).betas == (0.9, 0.99)
    with pytest.raises(ConfigError, match=r"algorithm.betas' \(item 2\).*less than 1"):
        config("algorithm.betas=[0.9, 1.0]")
    with pytest.raises(ConfigError, match="greater than or equal to 0"):
        config("algorithm.betas=[-0.1, 0.9]")
    assert config(f"seed={2**63 - 1}").seed == 2**63 - 1
    with pytest.raises(ConfigError, match="seed"):
        config(f"seed={2**63}")


@pytest.mark.parametrize("override", ["space.normal=", "epochs=", "algorithm=", "algorithm.eta=", "data.limit= "])
def test_empty_value_is_an_error(override):
    with pytest.raises(ConfigError, match="empty value"):
        config(override)


def test_errors_are_one_line():
    for tree in ({"algorithm": {"betas": [1, "x", 3]}}, {"space": {"normal": [1, {"a": 2}]}},
                 {"model": 3}, {"algorithm": {"selected_value": "half\nmore"}}, {"unknown": 1}):
        with pytest.raises(ConfigError) as exc:
            build_config(tree)
        assert "\n" not in str(exc.value)


# --- memory estimate -------------------------------------------------------------------------------------

def _kept_bytes(net: torch.nn.Module, *args: object) -> int:
    """Bytes of every leaf module's output in one forward pass: what autograd keeps for backward."""
    total = [0]

    def hook(module, inputs, out):
        if isinstance(out, torch.Tensor):
            total[0] += out.numel() * out.element_size()

    hooks = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    net(*args)
    for h in hooks:
        h.remove()
    return total[0]


@pytest.mark.parametrize(("space", "C", "layers", "batch", "size"), [("cnn12", 4, 3, 4, 16), ("cnn7", 8, 5, 2, 32)])
def test_search_estimate_matches_a_real_network(space, C, layers, batch, size):
    sp = get_space(space)
    est = estimate_search_memory(sp, C, layers, batch, size, in_channels=1)
    net = SearchNetwork(sp, C, layers, 10, 1)
    assert est.params == sum(p.numel() for p in net.parameters())
    weights = {ct: torch.full(shape, 0.1) for ct, shape in net.arch_shapes.items()}
    real = _kept_bytes(net, torch.randn(batch, 1, size, size), weights)
    assert real / 2 <= est.activation_bytes <= real * 2, (est.activation_bytes, real)
    assert est.state_bytes == 3 * 4 * est.params


def test_eval_estimate_matches_a_real_network():
    normal = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("conv_3x3", 1),
              ("sep_conv_5x5", 0), ("skip_connect", 2), ("dil_conv_3x3", 1), ("conv_1x1", 3)]
    reduce = [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("avg_pool_3x3", 0),
              ("max_pool_5x5", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_7x7", 1)]
    geno = Genotype.from_pairs("cnn12", normal=normal, reduce=reduce)
    est = estimate_eval_memory(geno, 8, 5, 4, 16, in_channels=3)
    net = ChildNetwork(geno, 8, 5, 10, 3)
    assert abs(est.params - sum(p.numel() for p in net.parameters())) <= 0.05 * est.params
    real = _kept_bytes(net, torch.randn(4, 3, 16, 16))
    assert real / 2 <= est.activation_bytes <= real * 2, (est.activation_bytes, real)


def test_estimate_grows_with_the_keys_it_names():
    sp = get_space("cnn12")
    base = estimate_search_memory(sp, 8, 3, 32, 32)
    assert estimate_search_memory(sp, 8, 3, 64, 32).activation_bytes == pytest.approx(2 * base.activation_bytes,
                                                                                      rel=0.01)
    assert estimate_search_memory(sp, 16, 3, 32, 32).total_bytes > 1.9 * base.total_bytes
    assert estimate_search_memory(sp, 8, 6, 32, 32).total_bytes > base.total_bytes


def test_estimate_leaves_the_random_stream_alone():
    torch.manual_seed(0)
    estimate_search_memory(get_space("cnn7"), 4, 3, 2, 8)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_check_memory_refuses_with_the_numbers_and_keys():
    est = MemoryEstimate(params=10**6, activation_bytes=3 * 2**30, state_bytes=12 * 10**6)
    check_memory(est, 4 * 2**30)
    check_memory(est, None)
    with pytest.raises(ConfigError) as exc:
        check_memory(est, 2**30, where="cpu")
    msg = str(exc.value)
    assert "3.0 GiB" in msg and "1.0 GiB available" in msg and "cpu" in msg
    assert all(k in msg for k in ("batch_size", "model.channels", "model.layers"))


def test_paper_search_network_does_not_fit_in_a_tiny_limit_but_fits_the_machine():
    est = estimate_search_memory(get_space("cnn12"), 16, 8, 64, 32)
    assert 0.5 < est.gib < 64  # DARTS-sized: gigabytes, not bytes or terabytes
    free = available_memory("cpu")
    assert free is None or free > 0
    with pytest.raises(ConfigError):
        check_memory(est, int(0.1 * 2**30))
    assert math.isfinite(est.gib)
