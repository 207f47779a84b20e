"""Weighted sum of NASLib zero-cost predictors."""

from naslib.predictors import ZeroCost


class Ensemble:
    def __init__(self, weights):
        self.members = {name: (ZeroCost(method_type=name), w) for name, w in weights.items()}

    def score(self, graph, dataloader):
        return sum(w * zc.query(graph, dataloader=dataloader) for zc, w in self.members.values())
