"""``naslib.search_spaces.core.graph``: NASLib's ``Graph`` (a ``torch.nn.Module`` and a
``networkx.DiGraph``), the base of every graph a competition ``query`` receives."""

from zcproxies.spaces.naslib_graph import EdgeData, Graph

__all__ = ["EdgeData", "Graph"]
