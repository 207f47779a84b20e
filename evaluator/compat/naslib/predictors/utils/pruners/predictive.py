"""``naslib.predictors.utils.pruners.predictive``: ``naslib.predictors.pruners.predictive``."""

from naslib.predictors.pruners.predictive import find_measures, find_measures_arrays

__all__ = ["find_measures", "find_measures_arrays"]
