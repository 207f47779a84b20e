"""``naslib.search_spaces``: the graph classes a competition ``query`` receives.

They are built by the evaluator for one architecture each (``zcproxies.spaces.naslib_graph``);
an empty search space to sample from (``get_search_space``) is not offered: the evaluator, not
the submission, chooses the architectures.
"""

from zcproxies.spaces.naslib_graph import (
    NasBench101SearchSpace,
    NasBench201SearchSpace,
    NasBench301SearchSpace,
    TransBench101SearchSpaceMacro,
    TransBench101SearchSpaceMicro,
)

__all__ = [
    "NasBench101SearchSpace",
    "NasBench201SearchSpace",
    "NasBench301SearchSpace",
    "TransBench101SearchSpaceMacro",
    "TransBench101SearchSpaceMicro",
]
