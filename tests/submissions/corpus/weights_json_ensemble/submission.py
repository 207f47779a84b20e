"""An ensemble whose weights ship in weights.json next to this file (opened by relative path)."""

import json

from ensemble import Ensemble
from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "weighted_ensemble"

    def pre_process(self):
        with open("weights.json") as f:
            self.ensemble = Ensemble(json.load(f))

    def query(self, graph, dataloader=None):
        return self.ensemble.score(graph, dataloader)
