"""Public sources (``sources.json``), their files under a data root, and a verified download.

A source is a dataset (CIFAR-10/100, SVHN; ImageNet16-120 is placed by hand and only
verified) or a benchmark table (NAS-Bench-Suite-Zero, NATS-Bench), with the URL and checksums of
each file. ``download(name, root)`` fetches what is missing into ``root/<subdir>/``:

* into ``<file>.part`` first, resumed with an HTTP ``Range`` request after an interruption
  (a server that ignores the range restarts the file), with a tqdm progress bar;
* then verified (size, md5 and/or sha256 from the manifest) and only then renamed to its final
  name (``os.replace``, atomic): a truncated or corrupt download is never used. A checksum
  mismatch deletes the ``.part`` file; an interrupted transfer keeps it for the next attempt;
* tarballs are unpacked into the root and their members verified against the published md5s.

Checksums: the md5s are the ones the dataset pages and torchvision publish (CIFAR, SVHN) and
those in NAS-Bench-201's ImageNet16 loader. Nobody publishes checksums for the NAS-Bench-Suite-
Zero files: until a maintainer pins them (``zcp data pin NAME`` writes size and sha256 into the
manifest), the sha256 of the first download is recorded in ``root/<subdir>/.zcp-sha256.json``
and that file is checked against it from then on; such files are announced as unpinned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from zcproxies.errors import DataError, UnknownName

MANIFEST_PATH = Path(__file__).with_name("sources.json")
MANIFEST_FORMAT = "zcp-sources"
RECORD_NAME = ".zcp-sha256.json"  # per-subdir record of the sha256 of unpinned downloads
CHUNK = 1 << 20
TIMEOUT = 60.0  # seconds without data before a connection counts as dropped
RETRIES = 3  # resumed attempts after a dropped connection
RETRY_WAIT = 1.0  # seconds before the first retry, doubled each time
USER_AGENT = "zcp-data-download/1"


class DownloadInterrupted(DataError):
    """The connection dropped mid-file; the ``.part`` file is kept and resumed next time."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a source: where it comes from and what it must hash to."""

    name: str
    url: str
    md5: str | None = None  # published
    sha256: str | None = None  # pinned (``zcp data pin``)
    size: int | None = None
    extract: bool = False  # a tarball, unpacked into the data root

    @property
    def pinned(self) -> bool:
        """Whether a published or pinned checksum exists."""
        return bool(self.md5 or self.sha256)


@dataclass(frozen=True)
class Source:
    """A dataset or table: its files under ``root/subdir`` and how they are checked."""

    name: str
    description: str
    subdir: str
    files: tuple[RemoteFile, ...] = ()
    verify: dict[str, str] = field(default_factory=dict)  # unpacked file -> md5
    manual: str = ""  # instructions where no public URL exists
    benchmark: bool = False  # its files convert into the zcp benchmark of the same name

    @property
    def checksums(self) -> str:
        """How its files are checked, in words (``zcp data list``)."""
        if self.manual:
            return "md5 published, placed by hand"
        if self.files and all(f.sha256 for f in self.files):
            return "sha256 pinned"
        if self.files and all(f.md5 for f in self.files):
            return "md5 published"
        if any(f.pinned for f in self.files):
            return "partly pinned"
        return "unpinned, recorded locally"


def _checked(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise DataError(f"{MANIFEST_PATH.name}: {what} must be {kind.__name__}, got {value!r}")
    return value


def parse_manifest(data: Any, where: str = "manifest") -> dict[str, Source]:
    """The sources of a parsed manifest, validated (``DataError`` naming the bad entry)."""
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{where}: not a {MANIFEST_FORMAT} manifest")
    sources = {}
    for name, entry in _checked(data.get("sources"), dict, "sources").items():
        files = []
        for item in _checked(entry.get("files", []), list, f"{name}.files"):
            known = {f.name for f in RemoteFile.__dataclass_fields__.values()}
            extra = set(_checked(item, dict, f"{name}.files[]")) - known
            if extra or not {"name", "url"} <= set(item):
                raise DataError(f"{where}: {name}: bad file entry {item!r}")
            files.append(RemoteFile(**item))
        sources[name] = Source(
            name,
            _checked(entry.get("description", ""), str, f"{name}.description"),
            _checked(entry.get("subdir"), str, f"{name}.subdir"),
            tuple(files),
            dict(_checked(entry.get("verify", {}), dict, f"{name}.verify")),
            _checked(entry.get("manual", ""), str, f"{name}.manual"),
            bool(entry.get("benchmark", False)),
        )
    return sources


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Source]:
    """The sources of the manifest file ``path`` (read once)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the sources manifest {path}: {exc}") from None
    return parse_manifest(data, str(path))


SOURCES = load_manifest()


def source(name: str, sources: dict[str, Source] | None = None) -> Source:
    """The source ``name`` (exact, else case-insensitive) or ``UnknownName`` listing them."""
    sources = SOURCES if sources is None else sources
    if name in sources:
        return sources[name]
    folded = {key.lower(): value for key, value in sources.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise UnknownName(f"unknown data source {name!r}; known: {', '.join(sources)}")


# ---- checksums -----------------------------------------------------------------------------
def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest (``md5`` or ``sha256``) of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    """md5 (hex) of a file."""
    return file_digest(path, "md5")


def verify_file(
    path: Path, md5: str | None = None, sha256: str | None = None, size: int | None = None
) -> Path:
    """``path`` if it exists with the given size and digests, else ``DataError`` naming both."""
    path = Path(path)
    if not path.is_file():
        expected = md5 or sha256 or (f"{size} bytes" if size is not None else "")
        raise DataError(f"{path}: file not found" + (f" (expected {expected})" if expected else ""))
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DataError(
            f"{path}: size mismatch: expected {size} bytes, got {actual_size} "
            "(truncated or a different version of the file)"
        )
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected and (actual := file_digest(path, algorithm)) != expected:
            raise DataError(
                f"{path}: {algorithm} mismatch: expected {expected}, got {actual} "
                "(corrupt or a different version of the file)"
            )
    return path


def verify_dataset(name: str, root: Path) -> list[Path]:
    """Check every unpacked file of source ``name`` under ``root/subdir`` against its md5."""
    spec = source(name)
    return [verify_file(Path(root) / spec.subdir / file, md5) for file, md5 in spec.verify.items()]


def _record_path(folder: Path) -> Path:
    return folder / RECORD_NAME


def read_record(folder: Path) -> dict[str, dict[str, Any]]:
    """The sha256 record of unpinned files in ``folder`` (empty when absent or unreadable)."""
    try:
        data = json.loads(_record_path(folder).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_record(folder: Path, name: str, entry: dict[str, Any]) -> None:
    record = read_record(folder)
    record[name] = entry
    tmp = _record_path(folder).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, _record_path(folder))


def check_file(path: Path, item: RemoteFile) -> Path:
    """Verify a present file against the manifest or, unpinned, against the local record.

    An unpinned file placed by hand (present, not recorded) is recorded as it is, with a
    warning: nothing published says what it should be.
    """
    if item.pinned or item.size is not None:
        return verify_file(path, item.md5, item.sha256, item.size)
    recorded = read_record(path.parent).get(item.name)
    if recorded is None:
        verify_file(path)  # present at all
        _record(path, item, "placed by hand, not downloaded")
        return path
    return verify_file(path, sha256=recorded.get("sha256"), size=recorded.get("size"))


def _record(path: Path, item: RemoteFile, how: str) -> None:
    """Record the sha256 of an unpinned file beside it and say so on stderr."""
    digest = file_digest(path, "sha256")
    entry = {
        "sha256": digest,
        "size": path.stat().st_size,
        "url": item.url,
        "how": how,
        "recorded": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    _write_record(path.parent, item.name, entry)
    print(
        f"warning: {item.name} has no published or pinned checksum; recorded its sha256 "
        f"{digest} ({how}); maintainers pin it for everyone with `zcp data pin`",
        file=sys.stderr,
    )


# ---- transfer ------------------------------------------------------------------------------
def _progress(total: int | None, initial: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        file=sys.stderr,
        disable=None,  # only on a terminal
    )


def _open(url: str, offset: int) -> tuple[Any, int, int | None]:
    """The response for ``url`` from byte ``offset``: (response, start offset, total size)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left beyond the partial file
            return None, offset, offset
        raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"{url}: cannot connect: {reason}") from None
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and response.status == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        return response, offset, int(total) if total.isdigit() else None
    return response, 0, length  # a full response: the server ignored the range


def _transfer(url: str, part: Path, expected_size: int | None, desc: str) -> None:
    """Append the rest of ``url`` to ``part``; ``DataError`` when the connection drops."""
    offset = part.stat().st_size if part.is_file() else 0
    response, start, total = _open(url, offset)
    total = total if total is not None else expected_size
    if response is None:
        return
    with response, open(part, "r+b" if start else "wb") as out:
        out.seek(start)
        out.truncate()
        written = start
        with _progress(total, start, desc) as bar:
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as exc:
                raise DownloadInterrupted(
                    f"{url}: connection dropped after {written} bytes ({exc.__class__.__name__})"
                ) from None
    if total is not None and written < total:
        raise DownloadInterrupted(f"{url}: connection dropped after {written} of {total} bytes")


def fetch(item: RemoteFile, dest: Path, retries: int = RETRIES) -> Path:
    """Download ``item`` to ``dest`` through ``dest.part`` (resumed), verify, rename.

    Unpinned files (no md5/sha256/size in the manifest) get their sha256 recorded beside them.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(item.url, part, item.size, dest.name)
            break
        except DownloadInterrupted as exc:
            if attempt == retries:
                raise DownloadInterrupted(
                    f"{exc} ({retries + 1} attempts); the partial file {part} is kept: "
                    "run the command again to resume"
                ) from None
            time.sleep(RETRY_WAIT * 2**attempt)
    try:
        verify_file(part, item.md5, item.sha256, item.size)
    except DataError as exc:
        part.unlink(missing_ok=True)  # corrupt: never used, never resumed
        raise DataError(f"{exc}; downloaded from {item.url} and deleted") from None
    if not item.pinned and item.size is None:
        _record(part, item, "downloaded")
    os.replace(part, dest)
    return dest


def _extract(archive: Path, root: Path) -> None:
    """Unpack a verified tarball into ``root`` (members must stay inside it)."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive}: cannot unpack: {exc}") from None


def download(name: str, root: Path, sources: dict[str, Source] | None = None) -> list[Path]:
    """Fetch source ``name`` into ``root`` where missing or failing its checks; its files.

    Manual sources (no URL) are only verified, with their placement instructions on failure.
    """
    spec = source(name, sources)
    root = Path(root)
    folder = root / spec.subdir
    if spec.manual:
        try:
            return [verify_file(folder / f, md5) for f, md5 in spec.verify.items()]
        except DataError as exc:
            raise DataError(f"{spec.name}: {exc}. {spec.manual}") from None
    paths = []
    for item in spec.files:
        dest = (root if item.extract else folder) / item.name
        if item.extract and _unpacked(spec, folder):
            continue  # the verified members are what is used; the archive may be gone
        try:
            check_file(dest, item)
        except DataError as exc:
            if dest.exists():
                print(f"warning: {exc}; downloading it again", file=sys.stderr)
            fetch(item, dest)
        if item.extract:
            _extract(dest, root)
        else:
            paths.append(dest)
    return [verify_file(folder / f, md5) for f, md5 in spec.verify.items()] + paths


def _unpacked(spec: Source, folder: Path) -> bool:
    """Whether every unpacked file of ``spec`` is present with its published md5."""
    try:
        for file, md5 in spec.verify.items():
            verify_file(folder / file, md5)
    except DataError:
        return False
    return bool(spec.verify)


def pin(names: Iterable[str], root: Path, path: Path = MANIFEST_PATH) -> dict[str, list[str]]:
    """Write size and sha256 of the downloaded files of ``names`` into the manifest at ``path``.

    For maintainers: download first (``zcp data download``), check the files, then pin them so
    that every later download is verified against these values. Returns what was pinned.
    """
    data = json.loads(Path(path).read_text())
    sources = parse_manifest(data, str(path))
    pinned: dict[str, list[str]] = {}
    for name in names:
        spec = source(name, sources)
        entries = data["sources"][spec.name]["files"]
        for entry, item in zip(entries, spec.files, strict=True):
            dest = (Path(root) if item.extract else Path(root) / spec.subdir) / item.name
            check_file(dest, item)  # the file as downloaded and verified, not any file
            entry["size"] = dest.stat().st_size
            entry["sha256"] = file_digest(dest, "sha256")
            pinned.setdefault(spec.name, []).append(f"{item.name} {entry['sha256']}")
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    load_manifest.cache_clear()
    return pinned


def groups(sources: dict[str, Source] | None = None) -> dict[str, list[str]]:
    """Names that stand for several sources: ``nsz``, ``tables``, ``datasets``."""
    sources = SOURCES if sources is None else sources
    return {
        "nsz": [n for n in sources if n.startswith("nsz-")],
        "tables": [n for n, s in sources.items() if s.benchmark],
        "datasets": [n for n, s in sources.items() if not s.benchmark and not s.manual],
    }


def expand(names: Iterable[str]) -> list[str]:
    """Source names with groups expanded, each once, in the order given."""
    found = groups()
    out: list[str] = []
    for name in names:
        members = found[name.lower()] if name.lower() in found else [source(name).name]
        for item in members:
            if item not in out:
                out.append(item)
    return out
