"""Per-task losses and targets (``zcproxies.proxies.losses``) and their use by ``make_context``."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from zcproxies import build, get_space
from zcproxies.proxies import NONFINITE_SCORE, make_context, score, score_many
from zcproxies.proxies.losses import (
    loss_for_task,
    soft_label_cross_entropy,
    targets_for_task,
    task_objective,
)

# The proxies that read labels or the loss (tenas_ntk: per-example output gradients).
LABELLED = ("grad_norm", "snip", "plain", "grasp", "fisher", "epe_nas", "zico", "gradsign")
TNB = ("transbench101_micro", "transbench101_macro")
TNB_TASKS = tuple(get_space(TNB[0]).tasks)
DENSE = {"segmentsemantic", "normal", "autoencoder"}  # targets without a per-sample class
pytestmark = pytest.mark.usefixtures("one_thread")


def small_batch(space: str, task: str, n: int = 4) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A seeded Gaussian batch at a reduced size (64 px; jigsaw: 3x3 tiles of 64 as in TNB)."""
    spec = get_space(space).task(task)
    side = 192 if task == "jigsaw" else 64
    gen = torch.Generator().manual_seed(1)
    x = torch.randn((n, spec.input_shape[0], side, side), generator=gen)
    return x, torch.arange(n) % spec.num_classes, spec.num_classes


def test_loss_table_follows_tnb_configs() -> None:
    expected = {
        "class_object": soft_label_cross_entropy,
        "class_scene": soft_label_cross_entropy,
        "room_layout": F.mse_loss,
        "jigsaw": F.cross_entropy,
        "segmentsemantic": F.cross_entropy,
        "normal": F.l1_loss,
        "autoencoder": F.l1_loss,
    }
    for space in TNB:
        assert {t: loss_for_task(space, t) for t in TNB_TASKS} == expected
    for space, task in (("nb201", "cifar100"), ("nb101", "cifar10"), ("nb301", "cifar10")):
        assert loss_for_task(space, task) is F.cross_entropy


def test_soft_label_cross_entropy_by_hand() -> None:
    logits = torch.zeros(2, 4)  # uniform softmax: -log(1/4 + 1e-5) whatever the target
    assert soft_label_cross_entropy(logits, torch.tensor([0, 3])).item() == pytest.approx(
        -math.log(0.25 + 1e-5)
    )
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = torch.softmax(logits, -1)[0]
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    want = -(0.5 * math.log(p[0] + 1e-5) + 0.5 * math.log(p[1] + 1e-5))
    assert soft_label_cross_entropy(logits, soft).item() == pytest.approx(want, rel=1e-6)
    assert soft_label_cross_entropy(logits, torch.tensor([1])).item() == pytest.approx(
        -math.log(p[1] + 1e-5), rel=1e-6
    )


def test_targets_have_the_loss_shapes_and_do_not_depend_on_the_context_seed() -> None:
    space = get_space(TNB[0])
    x, y, _ = small_batch(TNB[0], "class_object")
    seg = targets_for_task(space.task("segmentsemantic"), x, y)
    assert seg.shape == (4, 64, 64) and seg.dtype == torch.int64
    assert torch.equal(seg[:, 17, 5], y) and torch.equal(seg[:, 0, 63], y)
    assert torch.equal(targets_for_task(space.task("autoencoder"), x, y), x)
    room = targets_for_task(space.task("room_layout"), x, y)
    assert room.shape == (4, 9) and room.dtype == torch.float32
    normal = targets_for_task(space.task("normal"), x, y)
    assert normal.shape == (4, 3, 64, 64) and -1 <= normal.min() < normal.max() <= 1
    assert torch.equal(targets_for_task(space.task("room_layout"), x, y), room)  # deterministic
    assert torch.equal(targets_for_task(space.task("jigsaw"), x, y), y)
    a = make_context(nn_linear(), x, y, 9, seed=0, space=TNB[0], task="room_layout")
    b = make_context(nn_linear(), x, y, 9, seed=7, space=TNB[0], task="room_layout")
    assert torch.equal(a.y, room) and torch.equal(b.y, room) and a.loss_fn is F.mse_loss


def nn_linear() -> torch.nn.Module:
    """A stand-in model for contexts that are never run."""
    return torch.nn.Linear(1, 1)


def test_classification_spaces_keep_cross_entropy_bitwise() -> None:
    model = build("nasbench201_mini", (2, 3, 4, 0, 2, 3), "digits", seed=0)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn((8, 1, 8, 8), generator=gen), torch.arange(8) % 10
    plain = score_many(["grad_norm", "grasp"], model, x, y, 10)
    named = score_many(["grad_norm", "grasp"], model, x, y, 10, space="nb201", task="cifar10")
    assert plain == named


@pytest.mark.parametrize("task", ["room_layout", "segmentsemantic"])
def test_context_uses_the_task_loss_and_targets(task: str) -> None:
    """score(space=, task=) equals the explicit loss on the explicit targets, and differs from
    cross-entropy where that is defined (room layout: 9 logits vs class ids)."""
    space = TNB[1]
    model = build(space, (1, 1, 3, 4), task, seed=0)
    x, y, k = small_batch(space, task)
    loss_fn, target = task_objective(space, task, x, y)
    got = score("grad_norm", model, x, y, k, space=space, task=task)
    assert got == score("grad_norm", model, x, target, k, loss_fn=loss_fn)
    assert got > 0
    if task == "room_layout":
        assert got != score("grad_norm", model, x, y, k)
    else:  # a dense head: cross-entropy against class ids is not even defined
        with pytest.raises(RuntimeError):
            score("grad_norm", model, x, y, k)


@pytest.mark.slow
@pytest.mark.parametrize("task", TNB_TASKS)
def test_every_labelled_proxy_is_finite_on_every_tnb_task(task: str) -> None:
    """Micro space (its heads and losses are the macro space's), skip-only cells: the decoders
    dominate the cost (~30 s CPU for the 7 tasks, normal and autoencoder 10 s each)."""
    space = TNB[0]
    x, y, k = small_batch(space, task)
    model = build(space, (1, 1, 1, 1, 1, 1), task, seed=0)
    got = score_many((*LABELLED, "tenas_ntk"), model, x, y, k, space=space, task=task)
    assert all(math.isfinite(v) for v in got.values()), (task, got)
    undefined = {name for name, v in got.items() if v == NONFINITE_SCORE}
    # epe_nas needs a class per example (dense targets have none); tenas_ntk's NTK is exactly
    # singular for heads that pool before the classifier (docs/proxies_modern.md).
    allowed = ({"epe_nas"} if task in DENSE else set()) | {"tenas_ntk"}
    assert undefined <= allowed, (task, got)
    assert got["grad_norm"] > 0 and got["snip"] > 0, (task, got)


def test_a_task_object_with_other_classes_is_used_as_given() -> None:
    spec = get_space(TNB[0])
    task = dataclasses.replace(spec.task("class_object"), num_classes=100)  # NASLib's head
    x, y, _ = small_batch(TNB[0], "class_object")
    loss_fn, target = task_objective(spec, task, x, y)
    assert loss_fn is soft_label_cross_entropy and torch.equal(target, y)
