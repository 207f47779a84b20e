"""Submissions: a directory, a ``.zip`` or a built-in proxy, checked and copied to a private dir.

Forms (``docs/evaluator.md``):

``native``       ``proxy.py`` with ``score(model, batch) -> float`` and optional ``setup(task)``.
``competition``  the AutoML-Conf 2022 zero-cost competition's ``submission.py`` (or
                 ``predictor.py``) with class ``ZeroCostPredictor`` (+ an empty ``metadata``).
``builtin``      ``proxy:<name>``: a proxy of ``zcproxies.proxies``, through the same worker.

Files are never used in place: a directory is copied and a zip extracted into a private
directory, refusing symlinks, special files, path traversal, zip bombs and empty archives.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from zcproxies.errors import UnknownName

BUILTIN_PREFIX = "proxy:"
NATIVE_ENTRY = "proxy.py"
COMPETITION_ENTRIES = ("submission.py", "predictor.py")  # the first present is used
SKIPPED_DIRS = ("__pycache__", ".git", "__MACOSX")  # never copied, extracted or packed
MAX_FILES = 1000
MAX_TOTAL_BYTES = 50 << 20  # uncompressed size of all files together
MAX_RATIO = 100  # uncompressed / compressed bytes of a zip, checked above RATIO_FLOOR
RATIO_FLOOR = 1 << 20
CHUNK = 1 << 16


class SubmissionRejected(ValueError):
    """A submission that cannot be accepted (its form, files or archive); the message says why."""


@dataclass(frozen=True)
class Submission:
    """A checked submission ready for the worker."""

    form: str  # "native" | "competition" | "builtin"
    entry: str  # entry file name, or the proxy name of a built-in
    root: Path | None  # private copy of the files (None for built-ins)
    source: str  # what the user gave (path or proxy:<name>)
    sha256: str  # digest of the files (relative paths and contents), or of the proxy name
    notes: tuple[str, ...] = ()  # non-fatal remarks (e.g. a missing metadata file)

    def to_dict(self) -> dict[str, object]:
        """For results.json."""
        return {
            "form": self.form,
            "entry": self.entry,
            "source": self.source,
            "sha256": self.sha256,
            "notes": list(self.notes),
        }


def open_submission(spec: str | os.PathLike[str], workdir: Path) -> Submission:
    """Check ``spec`` (directory, .zip or ``proxy:<name>``) and copy its files under ``workdir``.

    ``workdir`` must be a private, empty-or-absent directory; raises ``SubmissionRejected``.
    """
    text = os.fspath(spec)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_submission(text[len(BUILTIN_PREFIX) :])
    path = Path(text).expanduser()
    if path.is_symlink():
        raise SubmissionRejected(f"{path}: is a symlink; give the directory or zip itself")
    if path.is_dir():
        copy_tree(path, workdir)
    elif path.is_file() and zipfile.is_zipfile(path):
        safe_extract(path, workdir)
    elif path.is_file():
        raise SubmissionRejected(f"{path}: not a zip file (give a directory or a .zip)")
    else:
        raise SubmissionRejected(f"{path}: no such file or directory")
    root = _unwrap(workdir)
    form, entry = detect_form(root)
    notes = ()
    if form == "competition" and not (root / "metadata").is_file():
        notes = (
            "no 'metadata' file: the 2022 competition required an empty one (zcp pack adds it)",
        )
    return Submission(form, entry, root, str(path), tree_digest(root), notes)


def builtin_submission(name: str) -> Submission:
    """A built-in proxy of ``zcproxies.proxies`` as a submission (unknown names are rejected)."""
    from zcproxies.proxies import get_proxy

    try:
        info = get_proxy(name)
    except UnknownName as exc:
        raise SubmissionRejected(str(exc)) from None
    digest = hashlib.sha256(f"{BUILTIN_PREFIX}{info.name}".encode()).hexdigest()
    return Submission("builtin", info.name, None, BUILTIN_PREFIX + info.name, digest)


def detect_form(root: Path) -> tuple[str, str]:
    """(form, entry file) of the files in ``root``: proxy.py wins, then submission/predictor.py."""
    if (root / NATIVE_ENTRY).is_file():
        return "native", NATIVE_ENTRY
    for entry in COMPETITION_ENTRIES:
        if (root / entry).is_file():
            return "competition", entry
    names = ", ".join(sorted(p.name for p in root.iterdir())[:10]) or "nothing"
    raise SubmissionRejected(
        f"no {NATIVE_ENTRY} (native form) and no {' or '.join(COMPETITION_ENTRIES)} "
        f"(2022 competition form) at the top level; found: {names}"
    )


def _unwrap(root: Path) -> Path:
    """The directory holding the entry: ``root``, or its only subdirectory (``zip -r a.zip a/``)."""
    children = [p for p in root.iterdir() if p.name not in SKIPPED_DIRS]
    entries = (NATIVE_ENTRY, *COMPETITION_ENTRIES)
    if (
        not any((root / e).is_file() for e in entries)
        and len(children) == 1
        and children[0].is_dir()
    ):
        return children[0]
    return root


def tree_digest(root: Path) -> str:
    """sha256 over the sorted relative paths and contents of the files under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _Budget:
    """Running totals of files and bytes against the limits."""

    def __init__(self, what: str) -> None:
        self.what, self.files, self.bytes = what, 0, 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise SubmissionRejected(f"{self.what}: more than {MAX_FILES} files")

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        if self.bytes > MAX_TOTAL_BYTES:
            raise SubmissionRejected(
                f"{self.what}: more than {MAX_TOTAL_BYTES >> 20} MiB uncompressed"
            )


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a submission directory, refusing symlinks and special files, within the limits."""
    budget = _Budget(str(src))
    dest.mkdir(mode=0o755, parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        here = Path(dirpath)
        out = dest / here.relative_to(src)
        for name in dirnames + filenames:  # undecodable bytes come as lone surrogates
            if any("\udc80" <= c <= "\udcff" for c in name):
                shown = os.fsencode(name).decode("utf-8", "backslashreplace")
                raise SubmissionRejected(f"{here / shown}: file names must be valid UTF-8")
        for name in dirnames:
            if (here / name).is_symlink():
                raise SubmissionRejected(f"{here / name}: symlinks are not allowed")
            (out / name).mkdir(mode=0o755)
        for name in sorted(filenames):
            path = here / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise SubmissionRejected(f"{path}: symlinks are not allowed")
            if not stat.S_ISREG(mode):
                raise SubmissionRejected(f"{path}: not a regular file")
            budget.add_file()
            budget.add_bytes(path.stat().st_size)
            shutil.copyfile(path, out / name)
            (out / name).chmod(0o644)


def _member_path(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath | None:
    """The safe relative path of a zip member, None for skipped ones; rejects unsafe members."""
    name = info.filename
    where = f"{archive}: member {name!r}"
    if "\\" in name or "\0" in name:
        raise SubmissionRejected(f"{where}: backslashes and NUL are not allowed in names")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise SubmissionRejected(f"{where}: absolute paths are not allowed")
    if ".." in path.parts:
        raise SubmissionRejected(f"{where}: path traversal ('..') is not allowed")
    if info.flag_bits & 0x1:
        raise SubmissionRejected(f"{where}: encrypted members are not supported")
    kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
    if kind == stat.S_IFLNK:
        raise SubmissionRejected(f"{where}: symlinks are not allowed")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no file type recorded
        raise SubmissionRejected(f"{where}: not a regular file or directory")
    if any(part in SKIPPED_DIRS for part in path.parts):
        return None
    return path


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest`` after checking every member (see module doc).

    Sizes are checked from the headers first and again while decompressing, so a member that
    lies about its size cannot exceed the limits.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            members = [(info, _member_path(info, archive)) for info in infos]
            files = [(i, p) for i, p in members if p is not None and not i.is_dir()]
            if not files:
                raise SubmissionRejected(f"{archive}: the zip holds no files")
            names = [p for _, p in files]
            if len(set(names)) != len(names):
                raise SubmissionRejected(f"{archive}: a file name appears twice")
            declared = sum(i.file_size for i, _ in files)
            packed = sum(i.compress_size for i, _ in files)
            budget = _Budget(str(archive))
            budget.add_bytes(declared)
            if declared > RATIO_FLOOR and declared > MAX_RATIO * max(packed, 1):
                raise SubmissionRejected(
                    f"{archive}: compression ratio "
                    f"{declared / max(packed, 1):.0f}:1 exceeds "
                    f"{MAX_RATIO}:1 (zip bomb?)"
                )
            dest.mkdir(mode=0o755, parents=True, exist_ok=True)
            written = _Budget(str(archive))
            for info, rel in files:
                written.add_file()
                target = dest.joinpath(*rel.parts)
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(CHUNK):
                        written.add_bytes(len(chunk))
                        out.write(chunk)
                target.chmod(0o644)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise SubmissionRejected(f"{archive}: unreadable zip: {exc}") from None
    except FileExistsError as exc:
        raise SubmissionRejected(
            f"{archive}: a file and a directory share a name: {exc.filename}"
        ) from None


def pack(submission: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Zip a submission directory (files at the top level) after checking it; the zip's path.

    The 2022 competition form gets its empty ``metadata`` file if missing. The zip is checked
    again by extracting it like the evaluator does. ``out`` defaults to ``<directory>.zip``.
    """
    src = Path(submission).expanduser()
    if not src.is_dir():
        raise SubmissionRejected(f"{src}: pack takes a submission directory")
    with tempfile.TemporaryDirectory(prefix="zcp-pack-") as tmp:
        copy = Path(tmp) / "files"
        copy_tree(src, copy)
        root = _unwrap(copy)
        form, _ = detect_form(root)
        if form == "competition" and not (root / "metadata").exists():
            (root / "metadata").touch()
        target = Path(out) if out is not None else src.resolve().with_suffix(".zip")
        target.write_bytes(zip_tree(root))
        safe_extract(target, Path(tmp) / "check")
        detect_form(_unwrap(Path(tmp) / "check"))
    return target


def zip_tree(root: Path) -> bytes:
    """The files under ``root`` as an in-memory zip (sorted, fixed dates): what `pack`
    writes and how an upload travels to a remote worker; extracting it gives the same digest."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), (1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
