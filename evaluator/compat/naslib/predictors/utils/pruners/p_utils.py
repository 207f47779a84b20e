"""``naslib.predictors.utils.pruners.p_utils``: ``naslib.predictors.pruners.p_utils``."""

from naslib.predictors.pruners.p_utils import (
    count_parameters,
    get_layer_metric_array,
    get_some_data,
    get_some_data_grasp,
)

__all__ = ["count_parameters", "get_layer_metric_array", "get_some_data", "get_some_data_grasp"]
