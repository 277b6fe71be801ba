import pytest
import torch

from nasp.trainer import Callback

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_run(tmp_path):
    """Overrides for a search that takes seconds on the real embedded data."""
    return ["data.limit=128", "batch_size=16", "model.channels=4", "model.layers=3", "epochs=1",
            f"out={tmp_path / 'runs'}"]


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """A run started in-process with ``threads=1`` sets torch's thread count for the whole process; later tests that
    compare an in-process run with a subprocess's, to the last bit, need the count this module set."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def isolated_registries():
    """What a test's plugins register (in this process) is gone after it: tests see only the built-ins."""
    import sys

    from nasp.registry import Registry

    snapshot = Registry.snapshot()
    modules = set(sys.modules)
    yield
    Registry.restore(snapshot)
    for name in set(sys.modules) - modules:
        if name.startswith("nasp_plugin_"):
            del sys.modules[name]



class StopAfter(Callback):
    """Asks the run loop to stop after ``steps`` steps (as Ctrl-C would), for the resume tests."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_step(self, trainer, event) -> None:
        self.steps -= 1
        if self.steps == 0:
            trainer.request_stop()
