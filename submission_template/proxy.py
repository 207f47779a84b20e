"""A zcp native submission: ``score(model, batch) -> float``, higher = predicted better.

This example is a real, fast zero-cost proxy: SNIP's connection saliency (Lee et al., ICLR 2019),
the sum over all convolution and linear weights of |W * dL/dW| after one forward and one
backward pass on the minibatch, returned as its logarithm (same ranking, readable numbers).
Replace the body of ``score`` with your own idea; keep the signature.
"""

import math

import torch.nn.functional as F
from torch import nn

TASK = {}  # what setup() learnt about the task (this example only records the class count)


def setup(task):
    """Optional. Called once per task before the first ``score``.

    ``task`` has: space, task, num_classes, input_shape (C, H, W), dataset, batch_size,
    num_archs. Use it to precompute anything task-specific.
    """
    TASK["num_classes"] = task.num_classes


def score(model: nn.Module, batch) -> float:
    """The score of one untrained network on the task's minibatch (higher is better).

    ``model``: the benchmark network, freshly initialised, in train mode (yours to modify).
    ``batch``: ``batch.x`` (N, C, H, W) float32 images, ``batch.y`` (N,) int64 labels,
    ``batch.num_classes``. Return a Python float (or a 0-d tensor); NaN/inf count as failures.
    """
    model.zero_grad()
    loss = F.cross_entropy(model(batch.x), batch.y)
    loss.backward()
    saliency = 0.0
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and layer.weight.grad is not None:
            saliency += (layer.weight * layer.weight.grad).abs().sum().item()
    return math.log(saliency + 1e-30)
