"""grad_norm written by hand: one batch, the graph's own loss, a 0-d tensor as the score."""

import torch
from naslib.predictors.predictor import Predictor
from torch import nn


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "my_grad_norm"

    def query(self, graph, dataloader=None):
        data, labels = next(iter(dataloader))
        graph.zero_grad()
        loss = graph.get_loss_fn()(graph(data), labels)
        loss.backward()
        norms = [
            m.weight.grad.norm()
            for m in graph.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None
        ]
        return torch.stack(norms).sum()
