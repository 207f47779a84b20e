"""``naslib.search_spaces.nasbench201.conversions``: NB201's three representations.

``naslib`` (a graph), ``op_indices`` (6 ints over ``EDGE_LIST``, ops ``OP_NAMES``) and the
benchmark's ``arch_str`` (``|nor_conv_3x3~0|+|...``), converted by zcp's NB201 space.
"""

from __future__ import annotations

from typing import Any

from zcproxies.spaces import get_space

OP_NAMES = ["Identity", "Zero", "ReLUConvBN3x3", "ReLUConvBN1x1", "AvgPool1x1"]
OP_NAMES_NB201 = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
EDGE_LIST = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))

_NB201 = get_space("nasbench201")


def convert_naslib_to_op_indices(naslib_object: Any) -> list[int]:
    """The graph's op indices (a list)."""
    return list(naslib_object.get_op_indices())


def convert_op_indices_to_naslib(op_indices: Any, naslib_object: Any) -> None:
    """Set a graph's op indices (a built graph accepts its own architecture only)."""
    naslib_object.set_op_indices(op_indices)


def convert_naslib_to_str(naslib_object: Any) -> str:
    """The NAS-Bench-201 string of the graph's cell."""
    return convert_op_indices_to_str(convert_naslib_to_op_indices(naslib_object))


def convert_op_indices_to_str(op_indices: Any) -> str:
    """The NAS-Bench-201 string of 6 op indices."""
    return _NB201.to_string(tuple(int(i) for i in op_indices))


def convert_str_to_op_indices(str_encoding: str) -> tuple[int, ...]:
    """The 6 op indices of a NAS-Bench-201 string (a tuple, as NASLib's)."""
    return tuple(_NB201.from_string(str_encoding))
