"""Networks: the search network (all candidate ops) and the child network of a genotype."""

from nasp.model.child import ChildNetwork
from nasp.model.search import ArchGradProbe, SearchNetwork, selection_of

__all__ = ["ArchGradProbe", "ChildNetwork", "SearchNetwork", "selection_of"]
