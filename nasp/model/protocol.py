"""What every searchable network offers an algorithm, whatever its space kind (cnn now, rnn next), and
the factory that builds one for a space.

Algorithms see only this protocol: the shapes of the architecture matrices, and one forward that runs
densely (``weights`` scale every op: DARTS, the naive gradient), sparsely (``selection``: only the chosen
ops, NASP's weight step) or sparsely with a probe (NASP's architecture gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

from nasp.registry import Registry

if TYPE_CHECKING:
    from nasp.model.probe import ArchGradProbe, Selection
    from nasp.spaces import SearchSpace


@runtime_checkable
class SearchableNetwork(Protocol):
    space: SearchSpace
    channels: int  # the width the model-size regulariser weighs ops at
    # optional: ``penalty``, a tensor or None, a regulariser of the last training forward that the weight step adds
    # to the weights' loss (the recurrent network's activation regularisers)

    @property
    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        """(edges, ops) of A for each cell type."""
        ...

    def __call__(self, x: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                 selection: dict[str, Selection] | None = None, probe: ArchGradProbe | None = None) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def train(self, mode: bool = True) -> nn.Module: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Any, strict: bool = True) -> Any: ...

    def eval(self) -> nn.Module: ...


NetworkFactory = Callable[..., nn.Module]
NETWORKS: Registry[NetworkFactory] = Registry("network kind")


def register_network(kind: str) -> Callable[[NetworkFactory], NetworkFactory]:
    """Register the search network of a space kind: ``factory(space, channels, layers, **shape) -> network``."""
    return NETWORKS.register(kind)


def create_search_network(space: SearchSpace, channels: int, layers: int, **shape: Any) -> nn.Module:
    """The search network of ``space`` (by its kind), sized by the problem's ``shape`` (e.g. classes and
    image channels for images)."""
    return NETWORKS.get(space.kind)(space, channels, layers, **shape)
