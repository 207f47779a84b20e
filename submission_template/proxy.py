"""A zcp native submission: ``score(model, batch) -> float``, higher = predicted better.

This example is a real, fast zero-cost proxy: NASWOT (Mellor et al., "Neural Architecture Search
without Training", ICML 2021). One forward pass, no labels, no backward: every ReLU splits each
image's features into a binary code (which units are active). A network whose codes tell the
images of the minibatch apart is likely to train well. The score is log|det K|, where K counts,
for each pair of images, the ReLU units on the same side of zero in both (summed over all ReLUs).
It ranks positively both on the embedded default and on NAS-Bench-201 CIFAR-10, and equals the
built-in ``zcp evaluate --proxy nwot``. Replace the body of ``score`` with your own idea; keep
the signature.
"""

import torch
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
    n = batch.x.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def count_agreements(module, inputs, output):
        codes = (inputs[0].detach().flatten(1) > 0).double()  # (N, units): 1 where active
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    hooks = [
        m.register_forward_hook(count_agreements) for m in model.modules() if isinstance(m, nn.ReLU)
    ]
    try:
        with torch.no_grad():
            model(batch.x)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.linalg.slogdet(kernel).logabsdet.item()
