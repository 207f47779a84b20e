"""``naslib.search_spaces.core``: ``Graph``."""

from naslib.search_spaces.core.graph import EdgeData, Graph

__all__ = ["EdgeData", "Graph"]
