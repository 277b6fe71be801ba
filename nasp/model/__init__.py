"""Networks: searchable networks by space kind (the protocol algorithms see), the child network of a genotype."""

from nasp.model import dense as _dense  # noqa: F401  (registers the dense network kind)
from nasp.model.child import ChildNetwork
from nasp.model.probe import ArchGradProbe, selection_of
from nasp.model.protocol import NETWORKS, SearchableNetwork, create_search_network, register_network
from nasp.model.search import SearchNetwork

__all__ = ["NETWORKS", "ArchGradProbe", "ChildNetwork", "SearchNetwork", "SearchableNetwork", "create_search_network",
           "register_network", "selection_of"]
