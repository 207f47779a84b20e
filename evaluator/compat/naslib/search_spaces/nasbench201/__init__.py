"""``naslib.search_spaces.nasbench201``."""

from zcproxies.spaces.naslib_graph import NasBench201SearchSpace

__all__ = ["NasBench201SearchSpace"]
