"""``naslib.search_spaces.core``: ``Graph``."""

from naslib.search_spaces.core.graph import Graph

__all__ = ["Graph"]
