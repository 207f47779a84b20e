"""FLOP and parameter counting: hand-computed rules per convention and the reference tables."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from zcproxies import UnknownName, build, get_space
from zcproxies.measure import CONVENTIONS, count_flops, count_params

BOTH = tuple(CONVENTIONS)
pytestmark = pytest.mark.usefixtures("one_thread")  # batch-1 forwards


def flops(module: nn.Module, shape: tuple[int, ...], convention: str) -> int:
    return count_flops(module, shape, convention=convention)


@pytest.mark.parametrize("convention", BOTH)
def test_conv_groups_bias_stride(convention: str) -> None:
    conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, bias=True)
    # output 8 x 4 x 4 = 16 positions; 3*3*4*8/2 = 144 MACs per position; +8 bias adds each
    assert flops(conv, (4, 8, 8), convention) == 144 * 16 + 8 * 16
    plain = nn.Conv2d(3, 5, 1, bias=False)
    assert flops(plain, (3, 6, 6), convention) == 3 * 5 * 36


def test_conv1d_counted_by_nb201_only() -> None:
    conv = nn.Conv1d(2, 4, 3, bias=False)  # output length 8
    assert flops(conv, (2, 10), "nb201") == 3 * 2 * 4 * 8
    assert flops(conv, (2, 10), "naslib") == 0  # tensorwatch has no Conv1d rule


def test_linear_bias() -> None:
    fc = nn.Linear(10, 5)
    assert flops(fc, (10,), "naslib") == 50  # tensorwatch: in*out
    assert flops(fc, (10,), "nb201") == 55  # get_model_infos adds one per output for the bias
    assert flops(nn.Linear(10, 5, bias=False), (10,), "nb201") == 50


def test_batchnorm_and_relu() -> None:
    assert flops(nn.BatchNorm2d(3), (3, 4, 4), "naslib") == 2 * 48
    assert flops(nn.BatchNorm2d(3, affine=False), (3, 4, 4), "naslib") == 48
    assert flops(nn.ReLU(), (3, 4, 4), "naslib") == 48
    assert flops(nn.ReLU6(), (3, 4, 4), "naslib") == 48
    for module in (nn.BatchNorm2d(3), nn.ReLU()):
        assert flops(module, (3, 4, 4), "nb201") == 0


def test_pools() -> None:
    assert flops(nn.AvgPool2d(3, 1, 1, count_include_pad=False), (2, 5, 5), "naslib") == 450
    assert flops(nn.MaxPool2d(2, 2), (2, 5, 5), "naslib") == 2 * 2 * 2 * 4
    # tensorwatch ignores ceil_mode: torch gives a 3x3 output, the count stays 2x2 windows
    assert flops(nn.MaxPool2d(2, 2, ceil_mode=True), (2, 5, 5), "naslib") == 2 * 2 * 2 * 4
    # adaptive pools: (rows + 1) * (cols + 1) per window: 8x8 -> 1x1 counts 81 per channel
    assert flops(nn.AdaptiveAvgPool2d(1), (64, 8, 8), "naslib") == 64 * 81
    # 5 -> 2: windows [0, 3) and [2, 5), each counted 3 + 1 = 4, so (4 + 4) ** 2 per channel
    assert flops(nn.AdaptiveMaxPool2d(2), (1, 5, 5), "naslib") == 64
    assert flops(nn.Upsample(scale_factor=2), (3, 4, 4), "naslib") == 3 * 64
    for pool in (nn.AvgPool2d(2), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1)):
        assert flops(pool, (2, 4, 4), "nb201") == 0  # get_model_infos does not sum pools


class Twice(nn.Module):
    """Applies one convolution twice (a shared module)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


def test_repeated_calls() -> None:
    once = 2 * 2 * 9
    assert flops(Twice(), (2, 3, 3), "nb201") == 2 * once  # every call adds up
    assert flops(Twice(), (2, 3, 3), "naslib") == once  # tensorwatch keeps the last call only


class ConvWithChild(nn.Conv2d):
    """A Conv2d that owns a submodule: not a leaf, so tensorwatch never counts it."""

    def __init__(self) -> None:
        super().__init__(2, 2, 1, bias=False)
        self.post = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(super().forward(x))


def test_leaves_only() -> None:
    assert flops(ConvWithChild(), (2, 3, 3), "naslib") == 2 * 9  # only its ReLU child, a leaf
    assert flops(ConvWithChild(), (2, 3, 3), "nb201") == 2 * 2 * 9


def test_modes_restored_and_hooks_removed() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(), nn.ReLU())
    model.train()
    model[2].eval()
    before = [m.training for m in model.modules()]
    count_flops(model, (3, 8, 8))
    assert [m.training for m in model.modules()] == before
    assert all(not m._forward_hooks for m in model.modules())
    model.eval()
    count_flops(model, (3, 8, 8))
    assert not any(m.training for m in model.modules())


def test_unknown_convention() -> None:
    with pytest.raises(ValueError, match="unknown FLOP convention"):
        count_flops(nn.ReLU(), (1,), convention="thop")


def test_params() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    assert count_params(model) == (3 * 4 * 9 + 4) + 8 + (8 + 2)


# NATS-Bench get_cost_info values (MFLOPs) quoted in D-X-Y/NATS-Bench issues #24 and #36.
NATS_FLOPS = [
    (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|",
        {"cifar10": 15.64737, "cifar100": 15.65322, "ImageNet16-120": 3.91948},
    ),
    (
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        {"cifar10": 113.95137},
    ),
]


@pytest.mark.parametrize(("arch", "expected"), NATS_FLOPS)
def test_nb201_convention_matches_nats_bench(arch: str, expected: dict[str, float]) -> None:
    space = get_space("nb201")
    for task, mflops in expected.items():
        ours = count_flops(build(space, arch, task), space.task(task).input_shape, "nb201")
        assert round(ours / 1e6, 5) == mflops, task


@pytest.mark.shared
@pytest.mark.parametrize(
    ("filename", "every"),
    [("zc_nasbench201.json", 8), ("zc_nasbench101.json", 25), ("zc_nasbench301.json", 25)],
)
def test_naslib_convention_matches_nas_bench_suite_zero(
    shared_dir, filename: str, every: int
) -> None:
    """Params and FLOPs exact to NSZ's printed digits on every k-th arch (the script checks all).

    A space not registered yet is skipped.
    """
    data = json.loads((shared_dir / "nas_bench_suite_zero" / filename).read_text())
    ((space_name, tasks),) = data.items()
    try:
        space = get_space(space_name)
    except UnknownName:
        pytest.skip(f"space {space_name!r} is not registered")
    for task, archs in tasks.items():
        shape = space.task(task).input_shape
        for key, row in list(archs.items())[::every]:
            model = build(space, key, task)
            params, ours = count_params(model) / 1e6, count_flops(model, shape) / 1e6
            assert round(params, 6) == round(row["params"], 6), (task, key, params)
            assert round(ours, 6) == round(row["flops"], 6), (task, key, ours, row["flops"])
