"""Competition form whose pre_process raises."""

from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "broken_pre_process"

    def pre_process(self):
        raise KeyError("missing resource")

    def query(self, graph, dataloader=None):
        return 1.0
