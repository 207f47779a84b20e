"""TransNAS-Bench-101 micro and macro: encodings, reference tables, functional keys, models."""

from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import torch

from zcproxies import InvalidArchitecture
from zcproxies.measure import count_params
from zcproxies.spaces.transnas import TransNasMacro, TransNasMicro

MICRO = TransNasMicro()
MACRO = TransNasMacro()
pytestmark = pytest.mark.usefixtures("one_thread")


def table(shared_dir, space: str) -> pd.DataFrame:
    return pd.read_csv(shared_dir / "full_tables" / f"transbench101_{space}_val_accuracy.csv")


def n_params(space, arch, task) -> int:
    """Parameter count of a model built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        return count_params(space.build(arch, task))


# ---- membership and encodings ------------------------------------------------------------------
def test_sizes_and_enumeration() -> None:
    micro = list(MICRO.enumerate())
    assert len(micro) == len(set(micro)) == MICRO.size == 4096
    assert micro[0] == (0,) * 6 and micro[-1] == (3,) * 6 and micro == sorted(micro)
    macro = list(MACRO.enumerate())
    assert len(macro) == len(set(macro)) == MACRO.size == 3256
    assert macro == sorted(macro) and all(MACRO.validate(a) == a for a in macro)
    assert {len(a) for a in macro} == {4, 5, 6}


@pytest.mark.shared
def test_enumeration_matches_reference_tables(shared_dir) -> None:
    for space, name in ((MICRO, "micro"), (MACRO, "macro")):
        keys = list(table(shared_dir, name)["arch"])
        assert [space.encode(a) for a in space.enumerate()] == keys
        assert [space.decode(k) for k in keys] == list(space.enumerate())


def test_benchmark_string_examples() -> None:
    # TNB README: 64-41414-1_02_333 = node1: skip(node0); node2: none(node0) + conv1x1(node1);
    # node3: conv3x3 of nodes 0, 1, 2. NASLib's key lists the string's digits in order.
    arch = MICRO.from_string("64-41414-1_02_333")
    assert arch == (1, 0, 2, 3, 3, 3)
    text = MICRO.describe(arch)
    assert "node1 = skip_connect(node0)" in text
    assert "node2 = none(node0) + nor_conv_1x1(node1)" in text
    assert "node3 = nor_conv_3x3(node0) + nor_conv_3x3(node1) + nor_conv_3x3(node2)" in text
    assert MACRO.from_string("64-1234-basic") == (1, 2, 3, 4)
    assert MACRO.to_string((4, 1, 1, 3, 0, 0)) == "64-4113-basic"
    assert "module4 (code 4, channels x2 + resolution /2)" in MACRO.describe((1, 2, 3, 4))


@pytest.mark.parametrize(
    ("space", "arch"),
    [
        (MICRO, (0, 1, 2, 3, 0, 1)),
        (MICRO, (3,) * 6),
        (MACRO, (1, 2, 3, 4)),
        (MACRO, (4, 4, 4, 3, 1, 1)),
        (MACRO, (2, 1, 3, 3, 1)),
    ],
)
def test_round_trips(space, arch: tuple[int, ...]) -> None:
    assert space.decode(space.encode(arch)) == arch
    assert space.from_string(space.to_string(arch)) == arch
    assert space.parse(space.to_string(arch)) == arch
    assert space.parse(list(arch)) == arch
    assert space.parse(np.array(arch)) == arch


def test_macro_accepts_naslib_zero_padding() -> None:
    assert MACRO.parse((1, 1, 1, 4, 0, 0)) == (1, 1, 1, 4)
    assert MACRO.decode("(2, 1, 3, 3, 1, 0)") == (2, 1, 3, 3, 1)
    assert MACRO.encode((1, 1, 1, 4, 0, 0)) == "(1, 1, 1, 4)"


@pytest.mark.parametrize(
    "bad",
    [
        (0, 1, 2),
        (0, 1, 2, 3, 0, 4),
        (0, 1, 2, 3, 0, -1),
        ("1",) * 6,
        (True,) * 6,
        "64-41414-1_02_334",
        "64-41414-102333",
        "|skip_connect~0|",
    ],
)
def test_micro_invalid(bad: object) -> None:
    with pytest.raises(InvalidArchitecture):
        MICRO.parse(bad)


@pytest.mark.parametrize(
    "bad",
    [
        (1, 1, 4),
        (1, 1, 1, 1, 1, 1),
        (4, 4, 4, 4),
        (1, 1, 1, 2),
        (1, 1, 1, 3),
        (3, 3, 3, 3, 3, 4),
        (0, 1, 1, 4),
        (1, 1, 1, 4, 0, 0, 0),
        (1, 1, 1, 5),
        (1, 2, 3, 4, 1, 1, 1),
        "64-123-basic",
        "64-1234-3_33_333",
        "32-1234-basic",
    ],
)
def test_macro_invalid(bad: object) -> None:
    with pytest.raises(InvalidArchitecture):
        MACRO.parse(bad)


def test_macro_limits_message() -> None:
    with pytest.raises(InvalidArchitecture, match=r"4 downsamplings .* and 4 channel doublings"):
        MACRO.validate((4, 4, 4, 4))


def test_sampling_is_seeded() -> None:
    for space in (MICRO, MACRO):
        assert space.sample(np.random.default_rng(7)) == space.sample(7)
        gen = np.random.default_rng(0)
        samples = {space.sample(gen) for _ in range(300)}
        assert len(samples) > 250 and all(space.validate(s) == s for s in samples)


# ---- functional keys ---------------------------------------------------------------------------
def test_micro_functional_key() -> None:
    key = MICRO.canonical_key
    # no input -> output path (or only convs of zero maps, i.e. constants): one class
    for arch in [(0,) * 6, (1, 1, 0, 0, 0, 0), (0, 0, 3, 0, 1, 1), (3, 3, 3, 0, 0, 0)]:
        assert MICRO.is_disconnected(arch) and key(arch) == "constant"
    assert "output depends on input: no" in MICRO.describe((0,) * 6)
    # a dead-end skip and none edges do not change the function
    assert key((1, 0, 0, 1, 0, 0)) == key((0, 1, 0, 1, 0, 0)) == key((0, 0, 0, 1, 0, 0))
    assert key((0, 0, 0, 1, 0, 0)) == key((0, 0, 0, 1, 1, 1))  # skips of zero maps
    assert key((0, 0, 0, 1, 0, 2)) != key((0, 0, 0, 1, 0, 0))  # conv of a zero map: BN bias
    # equal in normal cells, different in reduction cells (skip from the input is FactorizedReduce)
    a, b = (1, 3, 0, 0, 0, 1), (1, 0, 3, 0, 0, 1)
    assert key(a).split("|")[0] == key(b).split("|")[0] and key(a) != key(b)
    assert not MICRO.is_disconnected((0, 0, 0, 1, 0, 0))


@pytest.mark.shared
def test_functional_key_against_reference_table(shared_dir) -> None:
    ref = table(shared_dir, "micro")
    keys = [MICRO.canonical_key(ast.literal_eval(a)) for a in ref["arch"]]
    columns = ref[["class_object", "class_scene", "jigsaw"]]
    metrics = [tuple(r) for r in columns.itertuples(index=False)]
    constant = [m for k, m in zip(keys, metrics, strict=True) if k == "constant"]
    assert len(constant) == 169 and len(set(constant)) == 1  # all trained to the same numbers
    assert len(set(keys)) == 1310
    classes_of_result = defaultdict(set)
    for k, m in zip(keys, metrics, strict=True):
        classes_of_result[m].add(k)
    assert max(len(ks) for ks in classes_of_result.values()) == 1  # identical results, same key
    assert len({MACRO.canonical_key(a) for a in MACRO.enumerate()}) == 3256


# ---- models ------------------------------------------------------------------------------------
TASK_SHAPES = {
    "class_object": ((2, 3, 64, 64), (2, 75)),
    "class_scene": ((2, 3, 64, 64), (2, 47)),
    "room_layout": ((2, 3, 64, 64), (2, 9)),
    "jigsaw": ((2, 3, 96, 96), (2, 1000)),
    "segmentsemantic": ((2, 3, 64, 64), (2, 17, 64, 64)),
    "normal": ((2, 3, 64, 64), (2, 3, 64, 64)),
    "autoencoder": ((2, 3, 64, 64), (2, 3, 64, 64)),
}


@pytest.mark.parametrize("task", list(TASK_SHAPES))
@pytest.mark.parametrize(("space", "arch"), [(MICRO, (1, 0, 2, 1, 2, 1)), (MACRO, (4, 3, 1, 3))])
def test_build_forward_shapes(space, arch, task: str) -> None:
    in_shape, out_shape = TASK_SHAPES[task]
    model = space.build(arch, task)
    with torch.no_grad():
        assert model(torch.randn(*in_shape)).shape == out_shape
    linear = space.tasks[task].kind in ("classification", "regression", "jigsaw")
    assert hasattr(model, "classifier") == hasattr(model, "global_pool") == linear
    if task == "autoencoder":
        out = model.eval()(torch.randn(*in_shape))
        assert out.abs().max() <= 1.0  # tanh image


@pytest.mark.parametrize("arch", [(4, 1, 1, 1), (4, 3, 1, 1), (4, 3, 3, 1), (4, 3, 3, 3)])
def test_dense_decoders_restore_resolution(arch: tuple[int, ...]) -> None:
    model = MACRO.build(arch, "segmentsemantic")
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 17, 64, 64)


def test_gradients_flow() -> None:
    model = MICRO.build((1, 2, 1, 2, 0, 1), "class_scene")  # every edge on a path, FR included
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and all(g.abs().sum() > 0 for g in grads)
    dense = MACRO.build((2, 3, 1, 3), "normal")
    dense(torch.randn(2, 3, 64, 64)).square().mean().backward()
    assert all(p.grad is not None for p in dense.parameters())
    # (decoder conv biases feed BatchNorm, so their gradients vanish up to rounding)
    assert all(p.grad.abs().sum() > 0 for p in dense.encoder.parameters())
    assert dense.decoder[-1][0].weight.grad.abs().sum() > 0


def test_jigsaw_tiles_raster_order() -> None:
    model = MICRO.build((1, 2, 1, 2, 0, 1), "jigsaw").eval()
    image = torch.randn(2, 3, 96, 96)
    tiles = torch.stack(
        [
            image[:, :, 32 * r : 32 * r + 32, 32 * c : 32 * c + 32]
            for r in range(3)
            for c in range(3)
        ],
        dim=1,
    )
    assert torch.equal(model.tiles(image), tiles)
    with torch.no_grad():
        assert torch.allclose(model(image), model(tiles))
    with pytest.raises(ValueError, match="3x3 grid"):
        model(torch.randn(1, 3, 64, 64))


def test_build_seeded_and_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a, b, c = (MACRO.build((1, 2, 3, 4), "room_layout", seed=s) for s in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_encoder_init_and_tnb_shortcut_quirk() -> None:
    model = MACRO.build((1, 2, 3, 4), "class_object")
    shortcut_bns = [
        m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d) and m.eps == 1.0
    ]
    assert len(shortcut_bns) == 3 and all(m.momentum == 1.0 for m in shortcut_bns)
    stem = model.encoder.stem[0].weight
    # Kaiming normal, fan_out, ReLU gain: std = sqrt(2 / (32 * 3 * 3))
    assert abs(stem.std().item() - (2 / 288) ** 0.5) < 0.02


# Parameter counts of the official TNB code (lib/models, as built by NASLib's
# tnb101/model_builder with TNB's 75/47-class heads): these models were checked tensor by tensor
# against a transcription of that code (see docs/transnas.md).
REFERENCE_PARAMS = [
    (MICRO, (3,) * 6, "class_object", 41_450_091),
    (MICRO, (3,) * 6, "class_scene", 41_435_727),
    (MICRO, (3,) * 6, "room_layout", 41_416_233),
    (MICRO, (3,) * 6, "jigsaw", 46_020_616),
    (MICRO, (3,) * 6, "segmentsemantic", 52_435_793),
    (MICRO, (3,) * 6, "normal", 64_283_475),
    (MICRO, (3,) * 6, "autoencoder", 64_283_475),
    (MICRO, (0,) * 6, "class_object", 57_963),
    (MICRO, (1,) * 6, "class_object", 579_435),
    (MICRO, (1, 0, 2, 3, 3, 3), "class_object", 22_559_083),
    (MACRO, (1, 2, 3, 4), "class_object", 3_419_499),
    (MACRO, (1, 2, 3, 4), "jigsaw", 5_705_224),
    (MACRO, (4, 4, 4, 3), "segmentsemantic", 31_767_121),
    (MACRO, (4, 4, 4, 3), "autoencoder", 43_614_803),
    (MACRO, (1, 1, 1, 1, 2, 3), "autoencoder", 21_077_331),
    (MACRO, (2, 1, 3, 3, 1), "segmentsemantic", 10_426_961),
]


@pytest.mark.parametrize(("space", "arch", "task", "expected"), REFERENCE_PARAMS)
def test_reference_parameter_counts(space, arch, task: str, expected: int) -> None:
    assert n_params(space, arch, task) == expected


def test_naslib_head_sizes_via_custom_task() -> None:
    # NASLib's builder uses 100 object / 63 scene classes; a custom Task gives that head.
    task = dataclasses.replace(MICRO.tasks["class_object"], num_classes=100)
    assert n_params(MICRO, (3,) * 6, task) == 41_450_091 + 25 * 513
    with torch.no_grad():
        assert MICRO.build((1, 1, 1, 1, 1, 1), task)(torch.randn(2, 3, 64, 64)).shape == (2, 100)


# ---- opt-in: bit-for-bit against the official code (needs automl/NASLib importable) -------------
OFFICIAL_CASES = [
    (MICRO, (1, 0, 2, 3, 3, 3)),
    (MICRO, (0, 1, 1, 0, 2, 0)),
    (MACRO, (2, 1, 3, 3, 1)),
    (MACRO, (4, 4, 4, 3)),
]


@pytest.mark.slow
@pytest.mark.parametrize("task", list(TASK_SHAPES))
@pytest.mark.parametrize(("space", "arch"), OFFICIAL_CASES)
def test_matches_official_implementation(space, arch, task: str) -> None:
    """Same seed, same weights, running statistics and outputs as TNB's own model code, in the
    copy NASLib ships (tnb101/model_builder.create_model; its heads are 100/63 classes)."""
    builder = pytest.importorskip("naslib.search_spaces.transbench101.tnb101.model_builder")
    spec = space.tasks[task]
    spec = dataclasses.replace(
        spec, num_classes={"class_object": 100, "class_scene": 63}.get(task, spec.num_classes)
    )
    ours = space.build(arch, spec, seed=11)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        ref = builder.create_model(space.to_string(arch), task)
    ref_modules = (ref.encoder, ref.decoder)  # a GAN's discriminator is training-only
    for kind in ("parameters", "buffers"):
        mine = list(getattr(ours, kind)())
        theirs = [t for m in ref_modules for t in getattr(m, kind)()]
        assert [t.shape for t in mine] == [t.shape for t in theirs]
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))
    in_shape = TASK_SHAPES[task][0]
    x = torch.randn(2, 9, 3, 32, 32) if task == "jigsaw" else torch.randn(*in_shape)
    for train in (True, False):
        ours.train(train)
        ref.train(train)
        with torch.no_grad():
            assert torch.equal(ours(x), ref(x))
        theirs = [t for m in ref_modules for t in m.buffers()]
        assert all(torch.equal(a, b) for a, b in zip(ours.buffers(), theirs, strict=True))
