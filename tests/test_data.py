"""Minibatch providers: original file formats, determinism, normalisation, substitution, errors."""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from data_fixtures import (
    write_cifar10,
    write_cifar100,
    write_image_folder,
    write_imagenet16,
    write_npz,
    write_svhn,
)

from zcproxies import DataError, UnknownName, get_space
from zcproxies.data import (
    DATASETS,
    Batch,
    DataNotFound,
    FallbackWarning,
    SubstitutionWarning,
    batch_for_task,
    get_batch,
)
from zcproxies.data import download as dl
from zcproxies.spaces.base import Task

# NAS-Bench-201's constants (get_dataset_with_transform.py), on the 0..255 scale.
NB201 = {
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "ImageNet16-120": ((122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
}

# Fingerprints of reference batches, recorded once (torch 2.13 CPU, numpy 2, scikit-learn 1.9).
DIGITS_8_SEED0 = "a5723fbbcd17f30bafa1ad1eee85a34cf64442997a8717ed25c9a5f398c43346"
CIFAR10_TEST_64_SEED0 = "52ce55d571a5739caa71a6f71efaab9f01ca60ea5523778e56654c9f40324bbb"


@pytest.fixture
def no_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty shared-data directory and no $ZCP_DATA_ROOT: only what a test writes exists."""
    empty = tmp_path / "no_shared"
    empty.mkdir()
    monkeypatch.setenv("ZCP_SHARED_DATA", str(empty))
    monkeypatch.delenv("ZCP_DATA_ROOT", raising=False)
    return empty


def expected_x(images: np.ndarray, dataset: str) -> torch.Tensor:
    """The reference normalisation, written out independently of the library."""
    mean, std = (np.asarray(v).reshape(1, 3, 1, 1) / 255 for v in NB201[dataset])
    return torch.from_numpy(((images / 255.0 - mean) / std).astype(np.float32))


def drawn(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n, size=size, replace=False)


# ---- providers on files in their original formats ------------------------------------------
def test_cifar10_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = write_cifar10(tmp_path)
    train = [files[f"data_batch_{k}"] for k in range(1, 6)]
    images = np.concatenate([t[0] for t in train])
    labels = np.concatenate([t[1] for t in train])
    batch = get_batch("cifar10", size=16, seed=3, root=tmp_path)
    idx = drawn(60, 16, 3)
    assert torch.equal(batch.y, torch.from_numpy(labels[idx]))
    torch.testing.assert_close(batch.x, expected_x(images[idx], "cifar10"), atol=1e-6, rtol=0)
    assert batch.x.dtype == torch.float32 and batch.y.dtype == torch.int64
    assert (batch.dataset, batch.split, batch.seed) == ("cifar10", "train", 3)
    assert batch.num_classes == 10
    assert "cifar-10-batches-py" in batch.source and batch.substitute_for is None
    test = get_batch("cifar10", size=12, seed=0, split="test", root=tmp_path)
    assert sorted(test.x[:, 0, 0, 0].tolist()) == sorted(
        expected_x(files["test_batch"][0], "cifar10")[:, 0, 0, 0].tolist()
    )
    # The same files through $ZCP_DATA_ROOT, and with root = the batches folder itself.
    monkeypatch.setenv("ZCP_DATA_ROOT", str(tmp_path))
    assert get_batch("cifar10", size=16, seed=3) == batch
    direct = get_batch("cifar10", size=16, seed=3, root=tmp_path / "cifar-10-batches-py")
    assert direct.fingerprint == batch.fingerprint


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    files = write_cifar100(tmp_path)
    batch = get_batch("cifar100", size=30, seed=1, split="test", root=tmp_path)
    images, fine = files["test"]
    idx = drawn(30, 30, 1)
    assert torch.equal(batch.y, torch.from_numpy(fine[idx])) and batch.num_classes == 100
    torch.testing.assert_close(batch.x, expected_x(images[idx], "cifar100"), atol=1e-6, rtol=0)


def test_imagenet16_keeps_first_120_classes_zero_based(tmp_path: Path) -> None:
    labels = [1, 121, 120, 1000, 60, 500, 2]  # rows 0, 2, 4, 6 are kept per file
    files = write_imagenet16(tmp_path, labels)
    val = get_batch("ImageNet16-120", size=4, seed=0, split="test", root=tmp_path)
    kept_rows = val.x[:, 0, 0, 0]
    expected = expected_x(files["val_data"][0][[0, 2, 4, 6]], "ImageNet16-120")
    order = [expected[:, 0, 0, 0].tolist().index(v) for v in kept_rows.tolist()]
    assert torch.equal(val.y, torch.tensor([0, 119, 59, 1])[order])
    torch.testing.assert_close(val.x, expected[order], atol=1e-6, rtol=0)
    assert val.x.shape == (4, 3, 16, 16) and val.num_classes == 120
    train = get_batch("ImageNet16-120", size=40, seed=0, root=tmp_path)
    assert set(train.y.tolist()) == {0, 119, 59, 1}
    with pytest.raises(DataError, match="has 4 examples, fewer than 5 asked"):
        get_batch("ImageNet16-120", size=5, split="test", root=tmp_path)


def test_svhn_mat(tmp_path: Path) -> None:
    images, labels = write_svhn(tmp_path, "test")
    batch = get_batch("svhn", size=20, seed=2, split="test", root=tmp_path)
    idx = drawn(20, 20, 2)
    assert torch.equal(batch.y, torch.from_numpy(labels[idx] % 10).long())
    assert 0 in batch.y.tolist() and 10 not in batch.y.tolist()  # label 10 is digit 0
    mean = np.array([0.4377, 0.4438, 0.4728]).reshape(1, 3, 1, 1)
    std = np.array([0.1980, 0.2010, 0.1970]).reshape(1, 3, 1, 1)
    reference = torch.from_numpy(((images[idx] / 255 - mean) / std).astype(np.float32))
    torch.testing.assert_close(batch.x, reference, atol=1e-6, rtol=0)


def test_image_folder(tmp_path: Path) -> None:
    colours = {"zebra": (255, 0, 0), "apple": (0, 255, 0), "mango": (0, 0, 255)}
    write_image_folder(tmp_path / "train", colours)
    batch = get_batch("imagefolder", size=9, seed=0, root=tmp_path)  # root/train is used
    assert batch.x.shape == (9, 3, 12, 10) and batch.num_classes == 3
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    for x, y in zip(batch.x, batch.y, strict=True):
        rgb = (x * std + mean)[:, 0, 0]
        name = ("apple", "mango", "zebra")[int(y)]  # classes sorted by name
        torch.testing.assert_close(rgb, torch.tensor(colours[name]) / 255.0, atol=1e-5, rtol=0)
    write_image_folder(tmp_path / "mixed", {"a": (1, 2, 3)}, size=(8, 8))
    write_image_folder(tmp_path / "mixed", {"b": (4, 5, 6)}, size=(16, 4))
    with pytest.raises(DataError, match="pass input_size"):
        get_batch("imagefolder", size=6, root=tmp_path / "mixed")
    resized = get_batch("imagefolder", size=6, root=tmp_path / "mixed", input_size=(8, 8))
    assert resized.x.shape == (6, 3, 8, 8)


def test_npz_layouts_and_statistics(tmp_path: Path) -> None:
    images = write_npz(tmp_path / "nhwc.npz")
    write_npz(tmp_path / "nchw.npz", nchw=True)
    a = get_batch("npz", size=16, root=tmp_path / "nhwc.npz")
    b = get_batch("npz", size=16, root=tmp_path / "nchw.npz")
    assert a.fingerprint == b.fingerprint and a.num_classes == 4
    # Statistics come from the whole file, so the whole file normalises to mean 0, std 1.
    assert a.x.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    torch.testing.assert_close(a.x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3))
    # Stored mean/std win; root/<split>.npz when root is a directory.
    write_npz(tmp_path / "test.npz", mean=np.full(3, 0.5), std=np.full(3, 0.25))
    c = get_batch("npz", size=16, seed=4, split="test", root=tmp_path)
    idx = drawn(16, 16, 4)
    reference = ((images[idx] / 255 - 0.5) / 0.25).astype(np.float32)
    torch.testing.assert_close(c.x, torch.from_numpy(reference), atol=1e-6, rtol=0)


def test_digits() -> None:
    train = get_batch("digits", size=1442, seed=0)
    test = get_batch("digits", size=355, seed=0, split="test")
    assert np.bincount(test.y.numpy()).min() >= 34  # every 5th of each class: balanced
    assert train.x.shape == (1442, 1, 8, 8)
    pixels = (train.x * 0.3762 + 0.3051).double()
    assert abs(pixels.mean().item() - 0.3051) < 1e-4 and abs(pixels.std().item() - 0.3762) < 1e-3
    assert torch.equal(pixels * 16, torch.round(pixels * 16))  # 17 grey levels 0..16
    # Train and test are disjoint sets of images.
    keys = {x.numpy().tobytes() + bytes([int(y)]) for x, y in zip(train.x, train.y, strict=True)}
    overlap = sum(
        x.numpy().tobytes() + bytes([int(y)]) in keys for x, y in zip(test.x, test.y, strict=True)
    )
    assert overlap == 0
    rgb = get_batch("digits", size=8, input_size=(32, 32), channels=3)
    assert rgb.x.shape == (8, 3, 32, 32) and "replicated to 3" in rgb.note
    assert torch.equal(rgb.x[:, 0], rgb.x[:, 1]) and torch.equal(rgb.x[:, 0], rgb.x[:, 2])
    mini = batch_for_task(Task("digits", 10, (1, 8, 8), "digits"), size=8)  # nb201_mini's task
    assert mini.x.shape == (8, 1, 8, 8) and mini.substitute_for is None
    # Golden value: the draw, scaling, normalisation and cast must not drift between versions.
    assert get_batch("digits", size=8, seed=0).fingerprint == DIGITS_8_SEED0


def test_gaussian() -> None:
    batch = get_batch("gaussian", size=256, seed=7, input_size=(16, 16), num_classes=120)
    assert batch.x.shape == (256, 3, 16, 16) and batch.num_classes == 120
    assert abs(batch.x.mean().item()) < 0.02 and abs(batch.x.std().item() - 1) < 0.02
    assert batch.y.min() >= 0 and batch.y.max() < 120 and len(set(batch.y.tolist())) > 80
    rng = np.random.default_rng(7)
    assert torch.equal(
        batch.x, torch.from_numpy(rng.standard_normal((256, 3, 16, 16)).astype(np.float32))
    )


# ---- determinism, fingerprint, resizing, labels -----------------------------------------------
def test_determinism_and_fingerprint(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    a = get_batch("cifar10", size=8, seed=5, root=tmp_path)
    b = get_batch("cifar10", size=8, seed=5, root=tmp_path)
    c = get_batch("cifar10", size=8, seed=6, root=tmp_path)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a == b
    assert a.fingerprint == b.fingerprint != c.fingerprint and a != c
    digest = hashlib.sha256(repr((8, 3, 32, 32)).encode())
    digest.update(a.x.numpy().tobytes())
    digest.update(a.y.numpy().tobytes())
    assert a.fingerprint == digest.hexdigest() and len(a.fingerprint) == 64
    text = a.describe()
    assert "cifar10/train: 8 examples of 3x32x32" in text and a.fingerprint[:16] in text
    for name in ("digits", "gaussian"):
        assert get_batch(name, seed=1) == get_batch(name, seed=1) != get_batch(name, seed=2)


def test_normalisation_constants() -> None:
    for name, (mean, std) in NB201.items():
        provider = DATASETS[name]
        assert provider.mean == pytest.approx([v / 255 for v in mean], abs=1e-15)
        assert provider.std == pytest.approx([v / 255 for v in std], abs=1e-15)
    assert DATASETS["cifar10"].mean == pytest.approx((0.49137, 0.48235, 0.44667), abs=1e-5)
    assert DATASETS["ImageNet16-120"].std == pytest.approx((0.24792, 0.24024, 0.25525), abs=1e-5)


def test_resizing(tmp_path: Path) -> None:
    files = write_cifar10(tmp_path)
    native = get_batch("cifar10", size=4, seed=0, split="test", root=tmp_path)
    small = get_batch("cifar10", size=4, seed=0, split="test", root=tmp_path, input_size=(16, 16))
    big = get_batch("cifar10", size=4, seed=0, split="test", root=tmp_path, input_size=(40, 24))
    assert small.x.shape == (4, 3, 16, 16) and big.x.shape == (4, 3, 40, 24)
    assert torch.equal(small.y, native.y)
    images = files["test_batch"][0][drawn(12, 4, 0)] / 255.0
    scaled = F.interpolate(
        torch.from_numpy(images),
        size=(16, 16),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    ).numpy()
    mean, std = (np.asarray(v).reshape(1, 3, 1, 1) / 255 for v in NB201["cifar10"])
    reference = torch.from_numpy(((scaled - mean) / std).astype(np.float32))
    torch.testing.assert_close(small.x, reference)


def test_num_classes_folds_labels(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    full = get_batch("cifar10", size=32, seed=0, root=tmp_path)
    folded = get_batch("cifar10", size=32, seed=0, root=tmp_path, num_classes=3)
    assert torch.equal(folded.y, full.y % 3) and folded.num_classes == 3
    assert "y mod 3" in folded.note and torch.equal(folded.x, full.x)
    wider = get_batch("cifar10", size=32, seed=0, root=tmp_path, num_classes=100)
    assert torch.equal(wider.y, full.y) and wider.num_classes == 100 and not wider.note


# ---- substitution ---------------------------------------------------------------------------
def test_substitution_is_recorded_and_warned(tmp_path: Path, no_shared: Path) -> None:
    write_cifar10(tmp_path)
    task = get_space("nb201").task("ImageNet16-120")
    with pytest.warns(SubstitutionWarning, match="cifar10/train stands in for ImageNet16-120"):
        batch = batch_for_task(task, size=8, root=tmp_path)
    assert batch.substitute_for == "ImageNet16-120" and batch.dataset == "cifar10"
    assert batch.x.shape == (8, 3, 16, 16) and batch.num_classes == 120
    assert "SUBSTITUTE for ImageNet16-120" in batch.describe()
    with pytest.raises(DataNotFound, match="train_data_batch_1"):
        batch_for_task(task, size=8, root=tmp_path, allow_substitute=False)
    taskonomy = Task("class_object", 75, (3, 64, 64), "taskonomy")
    with pytest.warns(SubstitutionWarning, match="Taskonomy"):
        sub = batch_for_task(taskonomy, size=4, root=tmp_path)
    assert sub.x.shape == (4, 3, 64, 64) and sub.substitute_for == "taskonomy"


def test_own_data_is_not_substituted(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch = batch_for_task(get_space("nb201").task("cifar10"), size=8, root=tmp_path)
    assert batch.substitute_for is None and batch == get_batch("cifar10", 8, root=tmp_path)


def test_digits_when_nothing_else_exists(tmp_path: Path, no_shared: Path) -> None:
    with pytest.warns(SubstitutionWarning, match="digits/train stands in for cifar100"):
        batch = batch_for_task(get_space("nb201").task("cifar100"), size=8, root=tmp_path)
    assert batch.dataset == "digits" and batch.substitute_for == "cifar100"
    assert batch.x.shape == (8, 3, 32, 32) and "1 channel replicated to 3" in batch.note
    two_class = Task("binary", 2, (3, 8, 8), "cifar10")
    with pytest.warns(SubstitutionWarning):
        folded = batch_for_task(two_class, size=64, root=tmp_path)
    assert folded.y.max() <= 1 and "y mod 2" in folded.note


def test_corrupt_data_is_not_substituted(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"\x80\x02}q\x00(")
    with pytest.raises(DataError, match="truncated or corrupt pickle"):
        batch_for_task(get_space("nb201").task("cifar100"), root=tmp_path)


def test_channels(tmp_path: Path, no_shared: Path) -> None:
    gray = Task("gray", 10, (1, 32, 32), "cifar10")
    # Missing CIFAR-10 for a 1-channel task: CIFAR-10 substitutes cannot serve, digits can.
    with pytest.warns(SubstitutionWarning, match="digits/train stands in for cifar10"):
        assert batch_for_task(gray, size=4, root=tmp_path).x.shape == (4, 1, 32, 32)
    write_cifar10(tmp_path)
    with pytest.raises(DataError, match="cifar10 has 3 channels; cannot make 1"):
        batch_for_task(gray, size=4, root=tmp_path)
    assert get_batch("gaussian", 2, channels=5).x.shape == (2, 5, 32, 32)


# ---- errors ---------------------------------------------------------------------------------
def test_missing_and_incomplete(tmp_path: Path, no_shared: Path) -> None:
    with pytest.raises(DataNotFound, match=r"data_batch_1.*not found in .*cifar-10-batches-py"):
        get_batch("cifar10", root=tmp_path)
    with pytest.raises(DataNotFound, match=r"cifar10_test_1000\.npz"):
        get_batch("cifar10", split="test", root=tmp_path)
    with pytest.raises(DataNotFound, match="svhn"):
        get_batch("svhn", root=tmp_path)
    with pytest.raises(DataNotFound, match="image folder not found"):
        get_batch("imagefolder", root=tmp_path / "nowhere")
    with pytest.raises(DataNotFound, match=r"\.npz file not found"):
        get_batch("npz", root=tmp_path)
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"incomplete data in .* missing data_batch_3") as info:
        get_batch("cifar10", root=tmp_path)
    assert not isinstance(info.value, DataNotFound)


def _pickle(path: Path, entry: object) -> None:
    path.write_bytes(pickle.dumps(entry, protocol=2))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({b"data": np.zeros((4, 3072), np.uint8)}, "missing key 'labels'"),
        (
            {b"data": np.zeros((4, 3000), np.uint8), b"labels": [0] * 4},
            r"must be uint8 \(N, 3072\)",
        ),
        ({b"data": np.zeros((4, 3072), np.int32), b"labels": [0] * 4}, "'data' must be uint8"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, "expected 4 integer labels"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}, "labels out of range"),
        ([1, 2, 3], "expected a pickled dict"),
    ],
)
def test_bad_cifar_pickles(tmp_path: Path, entry: object, message: str) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    _pickle(path, entry)
    with pytest.raises(DataError, match=message) as info:
        get_batch("cifar10", 4, split="test", root=tmp_path)
    assert str(path) in str(info.value)


def test_truncated_pickle_and_bad_imagenet16_labels(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"data_batch_2: truncated or corrupt pickle"):
        get_batch("cifar10", root=tmp_path, size=4)
    write_imagenet16(tmp_path, [0, 5])  # labels are 1-based: 0 is invalid
    with pytest.raises(DataError, match=r"val_data: labels out of range: \[0, 5\] not within"):
        get_batch("ImageNet16-120", 1, split="test", root=tmp_path)


def test_bad_svhn_npz_and_images(tmp_path: Path) -> None:
    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    savemat(tmp_path / "svhn" / "train_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    with pytest.raises(DataError, match="missing key 'y'"):
        get_batch("svhn", 1, root=tmp_path)
    savemat(
        tmp_path / "svhn" / "train_32x32.mat",
        {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))},
    )
    with pytest.raises(DataError, match=r"'X' must be uint8 \(32, 32, 3, N\)"):
        get_batch("svhn", 1, root=tmp_path)
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match=r"test_32x32\.mat: unreadable \.mat file"):
        get_batch("svhn", 1, split="test", root=tmp_path)
    np.savez(tmp_path / "a.npz", images=np.zeros((2, 8, 8, 3), np.uint8), y=[0, 1])
    with pytest.raises(DataError, match=r"a\.npz: missing key 'x'"):
        get_batch("npz", 1, root=tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 8, 8, 5), np.uint8), y=[0, 1])
    with pytest.raises(DataError, match="neither 1 nor 3 channels"):
        get_batch("npz", 1, root=tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", x=np.zeros((2, 8, 8, 3), np.float32), y=[0, 1])
    with pytest.raises(DataError, match="'x' must be uint8"):
        get_batch("npz", 1, root=tmp_path / "c.npz")
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"d\.npz: unreadable \.npz"):
        get_batch("npz", 1, root=tmp_path / "d.npz")
    write_image_folder(tmp_path / "imgs", {"a": (0, 0, 0)}, per_class=1)
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"broken\.png: unreadable image"):
        get_batch("imagefolder", 2, root=tmp_path / "imgs")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        get_batch("imagefolder", 1, root=tmp_path / "empty")


def test_bad_requests(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(UnknownName, match="unknown dataset 'mnist'"):
        get_batch("mnist")
    with pytest.raises(UnknownName, match="no split 'valid'"):
        get_batch("cifar10", split="valid", root=tmp_path)
    with pytest.raises(DataError, match="has 60 examples, fewer than 61 asked"):
        get_batch("cifar10", 61, root=tmp_path)
    for kwargs in (
        {"size": 0},
        {"seed": -1},
        {"num_classes": 0},
        {"channels": 0},
        {"input_size": (0, 4)},
        {"input_size": (3, 32, 32)},
    ):
        with pytest.raises(DataError):
            get_batch("cifar10", root=tmp_path, **kwargs)
    assert get_batch("CIFAR10", 4, root=tmp_path).dataset == "cifar10"  # case-insensitive
    with pytest.raises(DataError, match=r"Batch.y must lie in \[0, 5\)"):
        Batch(torch.zeros(2, 3, 4, 4), torch.tensor([0, 5]), "x", "train", 0, "", 5)


# ---- checksums and download -----------------------------------------------------------------
def test_verify_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"zero-cost proxies")
    md5 = hashlib.md5(b"zero-cost proxies").hexdigest()
    assert dl.verify_file(path, md5) == path
    with pytest.raises(DataError, match=f"md5 mismatch: expected {'0' * 32}, got {md5}"):
        dl.verify_file(path, "0" * 32)
    with pytest.raises(DataError, match="file not found"):
        dl.verify_file(tmp_path / "absent", md5)
    write_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"data_batch_1: md5 mismatch: expected c99cafc1"):
        dl.verify_dataset("cifar10", tmp_path)
    with pytest.raises(UnknownName):
        dl.verify_dataset("mnist", tmp_path)


# ---- the shared reference images ------------------------------------------------------------
@pytest.mark.shared
def test_shared_cifar10_fallback(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZCP_DATA_ROOT", raising=False)
    with np.load(shared_dir / "images" / "cifar10_test_1000.npz") as npz:
        images, labels = npz["x"].transpose(0, 3, 1, 2), npz["y"]
    with pytest.warns(FallbackWarning, match=r"cifar10_test_1000\.npz"):
        batch = get_batch("cifar10", size=64, seed=0, split="test", root=tmp_path)
    idx = drawn(1000, 64, 0)
    assert torch.equal(batch.y, torch.from_numpy(labels[idx]))
    torch.testing.assert_close(batch.x, expected_x(images[idx], "cifar10"), atol=1e-6, rtol=0)
    assert batch.source.endswith("images/cifar10_test_1000.npz") and "fallback" in batch.note
    with pytest.warns(FallbackWarning):
        assert get_batch("cifar10", size=64, seed=0, split="test") == batch  # default root
    assert batch.fingerprint == CIFAR10_TEST_64_SEED0


@pytest.mark.shared
def test_shared_cifar100_fallback(shared_dir: Path, tmp_path: Path) -> None:
    with np.load(shared_dir / "images" / "cifar100_test_20.npz") as npz:
        images, labels = npz["x"].transpose(0, 3, 1, 2), npz["y"]
    with pytest.warns(FallbackWarning):
        batch = get_batch("cifar100", size=20, seed=1, split="test", root=tmp_path)
    idx = drawn(20, 20, 1)
    assert torch.equal(batch.y, torch.from_numpy(labels[idx])) and batch.num_classes == 100
    torch.testing.assert_close(batch.x, expected_x(images[idx], "cifar100"), atol=1e-6, rtol=0)
    with pytest.warns(FallbackWarning), pytest.raises(DataNotFound, match="has 20 examples"):
        get_batch("cifar100", size=64, split="test", root=tmp_path)


@pytest.mark.shared
@pytest.mark.filterwarnings("ignore::zcproxies.data.FallbackWarning")
def test_shared_nb201_tasks_get_cifar10_images(shared_dir: Path, tmp_path: Path) -> None:
    for task in get_space("nb201").tasks.values():
        with pytest.warns(SubstitutionWarning):
            batch = batch_for_task(task, size=64, root=tmp_path)
        assert batch.dataset == "cifar10" and batch.split == "test"
        assert batch.x.shape == (64, *task.input_shape) and batch.num_classes == task.num_classes
