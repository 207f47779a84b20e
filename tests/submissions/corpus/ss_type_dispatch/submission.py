"""Picks a proxy per search space from self.ss_type, set by the evaluator before pre_process."""

from naslib.predictors import ZeroCost
from naslib.predictors.predictor import Predictor

PER_SPACE = {
    "nasbench201": "synflow",
    "nasbench301": "jacov",
    "transbench101": "params",
    "nasbench101": "synflow",
}


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "per_space"

    def pre_process(self):
        self.inner = ZeroCost(method_type=PER_SPACE[self.ss_type])

    def query(self, graph, dataloader=None):
        return self.inner.query(graph, dataloader=dataloader)
