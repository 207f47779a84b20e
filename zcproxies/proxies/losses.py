"""Each task's training loss and the targets it is fed, for the label-needing proxies.

NAS-Bench-101/201/301 tasks are classification: cross-entropy on class ids (NASLib's default).
TransNAS-Bench-101 trains each task with its own loss (``yawen-d/TransNASBench``,
``configs/train_from_scratch/<task>/config.py`` and ``lib/losses/all.py``): class_object and
class_scene soft-label cross-entropy against the teacher's distribution
(``SoftmaxCrossEntropyWithLogits``), room_layout MSE, jigsaw cross-entropy over the 1000
permutations, segmentsemantic per-pixel cross-entropy, normal and autoencoder L1 (the generator's
0.99 L1 + 0.01 GAN loss without the training-only discriminator). No Taskonomy labels are
available, so the targets are substitutes built from the batch (``targets_for_task``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zcproxies.proxies.context import LossFn
from zcproxies.spaces import SearchSpace, Task, get_space

TNB_SPACES = ("transbench101_micro", "transbench101_macro")
SOFTMAX_EPS = 1e-5  # TNB's log(softmax + 1e-5)
TARGET_SEED = 0  # random substitute targets: the same for every architecture and batch


def soft_label_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """TNB's ``SoftmaxCrossEntropyWithLogits``: mean of -sum t log(softmax(z) + 1e-5).

    ``target`` is a distribution (N, K) or class ids (N,), read as one-hot distributions.
    """
    if target.dim() == 1:
        target = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    return -(target * (F.softmax(logits, dim=-1) + SOFTMAX_EPS).log()).sum(dim=-1).mean()


TNB_LOSSES: dict[str, LossFn] = {
    "class_object": soft_label_cross_entropy,
    "class_scene": soft_label_cross_entropy,
    "room_layout": F.mse_loss,
    "jigsaw": F.cross_entropy,
    "segmentsemantic": F.cross_entropy,  # (N, 17, H, W) logits vs (N, H, W) class ids
    "normal": F.l1_loss,
    "autoencoder": F.l1_loss,
}


def resolve(space: str | SearchSpace, task: str | Task) -> tuple[SearchSpace, Task]:
    """The registered space and its task (a ``Task`` object is taken as it is)."""
    spec = get_space(space)
    return spec, task if isinstance(task, Task) else spec.task(task)


def loss_for_task(space: str | SearchSpace, task: str | Task) -> LossFn:
    """``loss(output, target)`` the task was trained with; cross-entropy outside TNB."""
    spec, task = resolve(space, task)
    if spec.name in TNB_SPACES:
        return TNB_LOSSES[task.name]
    return F.cross_entropy


def targets_for_task(task: Task, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Targets of the shape ``task``'s loss expects, from the batch's images ``x`` and labels ``y``.

    Classification and jigsaw: ``y``. The substitutes where no real targets exist: segmentation,
    the image's class at every pixel (N, H, W); autoencoder, the input itself (TNB's target is the
    input image under the same normalisation); room_layout (N, 9) N(0, 1) and normal (N, 3, H, W)
    U(-1, 1) draws from a generator seeded with ``TARGET_SEED`` (the same for every model).
    """
    n, (height, width) = x.shape[0], x.shape[-2:]
    draw = torch.Generator(device=x.device).manual_seed(TARGET_SEED)
    if task.kind == "segmentation":
        return y[:, None, None].expand(n, height, width).contiguous()
    if task.kind == "autoencoder":
        return x.detach().clone()
    if task.kind == "regression":
        return torch.randn((n, task.num_classes), generator=draw, device=x.device)
    if task.kind == "dense_regression":
        shape = (n, task.num_classes, height, width)
        return torch.rand(shape, generator=draw, device=x.device).mul(2).sub(1)
    return y


def task_objective(
    space: str | SearchSpace, task: str | Task, x: torch.Tensor, y: torch.Tensor
) -> tuple[LossFn, torch.Tensor]:
    """(loss, targets) of ``space``/``task`` for a batch: what a proxy context should use."""
    spec, task = resolve(space, task)
    return loss_for_task(spec, task), targets_for_task(task, x, y)
