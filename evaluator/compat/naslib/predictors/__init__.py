"""``naslib.predictors``: ``Predictor`` (the base of ``ZeroCostPredictor``) and ``ZeroCost``."""

from naslib.predictors.predictor import Predictor
from naslib.predictors.zerocost import ZeroCost

__all__ = ["Predictor", "ZeroCost"]
