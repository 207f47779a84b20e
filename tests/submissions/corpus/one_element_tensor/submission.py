"""The l2 norm of the weights, returned as a one-element tensor (shape (1,)) as NASLib allowed."""

import torch
from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "l2_norm_tensor"

    @torch.no_grad()
    def query(self, graph, dataloader=None):
        total = torch.zeros(1, dtype=torch.float64)
        for m in graph.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                total += m.weight.norm().double()
        return total
