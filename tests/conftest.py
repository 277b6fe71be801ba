import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_run(tmp_path):
    """Overrides for a search that takes seconds on the real embedded data."""
    return ["data.limit=128", "batch_size=16", "model.channels=4", "model.layers=3", "epochs=1",
            f"out={tmp_path / 'runs'}"]
