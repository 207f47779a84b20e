"""``naslib.predictors.ZeroCost``: NASLib's zero-cost predictor, computed by zcp's proxies.

``ZeroCost(method_type=name).query(graph, dataloader)`` scores ``graph`` on the loader's first
batch with the zcp proxy ``name`` (every NAS-Bench-Suite-Zero name and every other proxy that
``zcp proxies`` lists), with NASLib's conventions: the graph's own loss (``get_loss_fn``) and
class count, higher is better, NaN becomes -1e8.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from naslib.predictors.predictor import Predictor
from naslib.predictors.pruners import predictive


class ZeroCost(Predictor):
    """A built-in zero-cost proxy as a NASLib predictor."""

    def __init__(self, method_type: str = "jacov") -> None:
        super().__init__()
        self.method_type = method_type
        self.dataload = "random"
        self.num_imgs_or_batches = 1
        self.device = torch.device("cpu")  # the evaluator's workers have no GPU

    def query(self, graph: Any, dataloader: Any = None, info: Any = None) -> float:
        """The proxy's value for ``graph`` on the first batch of ``dataloader``."""
        score = predictive.find_measures(
            net_orig=graph,
            dataloader=dataloader,
            dataload_info=(self.dataload, self.num_imgs_or_batches, graph.num_classes),
            device=self.device,
            loss_fn=graph.get_loss_fn(),
            measure_names=[self.method_type],
        )
        return -1e8 if math.isnan(score) else score
