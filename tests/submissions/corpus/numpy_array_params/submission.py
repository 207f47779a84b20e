"""Parameters in millions, as a one-element numpy array."""

import numpy as np
from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        self.method_type = "params_np"

    def pre_process(self):
        pass

    def query(self, graph, dataloader=None):
        return np.array([sum(p.numel() for p in graph.parameters()) / 1e6])
