"""A measure registered in NASLib's measures registry, as zero-cost-nas measures are."""

import torch
from naslib.predictors.pruners.measures import measure
from naslib.predictors.pruners.p_utils import get_layer_metric_array


@measure("abs_weight_grad", bn=False, mode="param")
def compute_abs_weight_grad(net, inputs, targets, mode, loss_fn, split_data=1):
    net.zero_grad()
    outputs = net.forward(inputs)
    loss = loss_fn(outputs, targets)
    loss.backward()

    def metric(layer):
        if layer.weight.grad is None:
            return torch.zeros_like(layer.weight)
        return (layer.weight * layer.weight.grad).abs()

    return get_layer_metric_array(net, metric, mode)
