"""``naslib.predictors.utils.pruners.measures``: the one registry of
``naslib.predictors.pruners.measures`` (a measure registered through either path is in both)."""

from naslib.predictors.pruners.measures import (
    available_measures,
    calc_measure,
    copynet,
    measure,
)

__all__ = ["available_measures", "calc_measure", "copynet", "measure"]
