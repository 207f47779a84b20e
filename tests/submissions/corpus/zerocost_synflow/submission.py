"""NASLib's own ZeroCost predictor, wrapped as the competition asked."""

from naslib.predictors import ZeroCost
from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "synflow"
        self.zc = ZeroCost(method_type="synflow")

    def pre_process(self):
        pass

    def query(self, graph, dataloader=None):
        return self.zc.query(graph, dataloader=dataloader)
