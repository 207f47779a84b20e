"""Where the original datasets come from, their file layout under a data root, and md5 checks.

The checksums are the md5 values the dataset pages and torchvision publish (CIFAR, SVHN) and
those in NAS-Bench-201's ``ImageNet16`` loader; no sha256 is published for these files, so
none is given. ImageNet16 has no public direct URL (the NB201 authors share it on Google
Drive): place its files by hand and run ``verify_dataset("ImageNet16-120", root)``.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from zcproxies.errors import DataError, UnknownName


@dataclass(frozen=True)
class Download:
    """One public file: its URL, md5, and whether it is a tarball to unpack into the root."""

    url: str
    md5: str
    extract: bool = False


@dataclass(frozen=True)
class Resource:
    """A dataset's files under the data root (``root/subdir/<file>``) with their md5s."""

    subdir: str
    files: dict[str, str]  # file name -> md5
    downloads: tuple[Download, ...] = field(default=())


_TORONTO = "https://www.cs.toronto.edu/~kriz/"
_SVHN = "http://ufldl.stanford.edu/housenumbers/"

RESOURCES: dict[str, Resource] = {
    "cifar10": Resource(
        "cifar-10-batches-py",
        {
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
        },
        (Download(_TORONTO + "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", True),),
    ),
    "cifar100": Resource(
        "cifar-100-python",
        {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
        (Download(_TORONTO + "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85", True),),
    ),
    "ImageNet16-120": Resource(
        "ImageNet16",
        {
            "train_data_batch_1": "27846dcaa50de8e21a7d1a35f30f0e91",
            "train_data_batch_2": "c7254a054e0e795c69120a5727050e3f",
            "train_data_batch_3": "4333d3df2e5ffb114b05d2ffc19b1e87",
            "train_data_batch_4": "1620cdf193304f4a92677b695d70d10f",
            "train_data_batch_5": "348b3c2fdbb3940c4e9e834affd3b18d",
            "train_data_batch_6": "6e765307c242a1b3d7d5ef9139b48945",
            "train_data_batch_7": "564926d8cbf8fc4818ba23d2faac7564",
            "train_data_batch_8": "f4755871f718ccb653440b9dd0ebac66",
            "train_data_batch_9": "bb6dd660c38c58552125b1a92f86b5d4",
            "train_data_batch_10": "8f03f34ac4b42271a294f91bf480f29b",
            "val_data": "3410e3017fdaefba8d5073aaa65e4bd6",
        },
    ),
    "svhn": Resource(
        "svhn",
        {
            "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
        },
        (
            Download(_SVHN + "train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
            Download(_SVHN + "test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
        ),
    ),
}


def resource(name: str) -> Resource:
    """The registered resource ``name`` or ``UnknownName``."""
    if name not in RESOURCES:
        raise UnknownName(f"no download information for {name!r}; known: {', '.join(RESOURCES)}")
    return RESOURCES[name]


def file_md5(path: Path) -> str:
    """md5 (hex) of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, md5: str) -> Path:
    """``path`` if it exists with the expected md5, else ``DataError`` naming both digests."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected md5 {md5})")
    actual = file_md5(path)
    if actual != md5:
        raise DataError(
            f"{path}: md5 mismatch: expected {md5}, got {actual} "
            "(corrupt or a different version of the file)"
        )
    return path


def verify_dataset(name: str, root: Path) -> list[Path]:
    """Check every file of dataset ``name`` under ``root/subdir`` against its md5."""
    spec = resource(name)
    return [verify_file(Path(root) / spec.subdir / file, md5) for file, md5 in spec.files.items()]


def download(name: str, root: Path) -> list[Path]:
    """Fetch dataset ``name`` into ``root`` (tarballs are unpacked there), verifying every md5.

    Uses the network; files already present and intact are not fetched again.
    """
    spec = resource(name)
    root = Path(root)
    target = root / spec.subdir
    target.mkdir(parents=True, exist_ok=True)
    for item in spec.downloads:
        dest = (root if item.extract else target) / item.url.rsplit("/", 1)[-1]
        if not (dest.is_file() and file_md5(dest) == item.md5):
            partial = dest.with_name(dest.name + ".part")
            with urllib.request.urlopen(item.url) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
            verify_file(partial, item.md5).replace(dest)
        if item.extract:
            with tarfile.open(dest) as archive:
                archive.extractall(root, filter="data")
    return verify_dataset(name, root)
