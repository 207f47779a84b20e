"""``naslib.predictors``: the ``Predictor`` base class."""

from naslib.predictors.predictor import Predictor

__all__ = ["Predictor"]
