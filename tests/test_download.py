"""``zcp data download``: resumable, checksummed downloads from a local HTTP server, conversion
into named benchmarks, and the failure modes (truncated, wrong checksum, dropped, 404).

Everything is served from 127.0.0.1 by ``http.server`` in a thread: no test needs the internet.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from data_fixtures import write_cifar10

from zcproxies.benchdata import load_benchmark
from zcproxies.benchdata.registry import benchmark_path, resolve_benchmark
from zcproxies.cli import main
from zcproxies.data import download as dl
from zcproxies.data import get_batch
from zcproxies.errors import DataError
from zcproxies.spaces import get_space


@dataclass
class Served:
    """One file of the test server and how it misbehaves."""

    body: bytes
    mode: str = "ok"  # ok | truncate | drop_once | norange | missing
    requests: list[str | None] = field(default_factory=list)  # Range header of each request


class Server:
    """A threaded HTTP server on 127.0.0.1 with Range support and failure modes."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                served = files.get(self.path)
                if served is None or served.mode == "missing":
                    self.send_error(404, "Not Found")
                    return
                rng = self.headers.get("Range")
                served.requests.append(rng)
                body, start = served.body, 0
                match = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if match and served.mode != "norange":
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                rest = body[start:]
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                dropping = served.mode == "truncate" or (
                    served.mode == "drop_once" and len(served.requests) == 1
                )
                self.wfile.write(rest[: len(rest) // 2] if dropping else rest)
                if dropping:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def add(self, path: str, body: bytes, mode: str = "ok") -> Served:
        self.files[path] = Served(body, mode)
        return self.files[path]


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "RETRY_WAIT", 0.0)


def payload(size: int = 300_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def remote(
    server: Server, name: str, body: bytes, mode: str = "ok", **sums: object
) -> dl.RemoteFile:
    server.add(f"/{name}", body, mode)
    return dl.RemoteFile(name, server.url(f"/{name}"), **sums)  # type: ignore[arg-type]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the transfer ----------------------------------------------------------------------------
def test_download_verifies_then_renames(server: Server, tmp_path: Path) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, sha256=sha256(body), size=len(body))
    dest = tmp_path / "d" / "blob.bin"
    assert dl.fetch(item, dest) == dest
    assert dest.read_bytes() == body
    assert not dest.with_name("blob.bin.part").exists()
    assert server.files["/blob.bin"].requests == [None]


def test_resume_with_range(server: Server, tmp_path: Path) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, md5=hashlib.md5(body).hexdigest())
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(body[:100_000])  # an earlier, interrupted run
    dl.fetch(item, dest)
    assert dest.read_bytes() == body
    assert server.files["/blob.bin"].requests == ["bytes=100000-"]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, where tqdm draws its bar."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_starts_at_the_resumed_offset(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, sha256=sha256(body))
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(body[:100_000])
    monkeypatch.setattr(sys, "stderr", Terminal())
    dl.fetch(item, dest)
    bar = sys.stderr.getvalue()
    assert "blob.bin:  33%" in bar and "97.7k/293k" in bar  # resumed: starts at 100,000 B
    assert "blob.bin: 100%" in bar and "293k/293k" in bar


def test_no_progress_bar_off_a_terminal(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = payload()
    dl.fetch(remote(server, "blob.bin", body, sha256=sha256(body)), tmp_path / "blob.bin")
    assert capsys.readouterr().err == ""  # logs and CI output stay clean


def test_server_ignoring_range_restarts_the_file(server: Server, tmp_path: Path) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, "norange", sha256=sha256(body))
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(b"x" * 1000)  # not a prefix of the file
    dl.fetch(item, dest)
    assert dest.read_bytes() == body


def test_connection_dropped_midway_is_resumed(server: Server, tmp_path: Path) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, "drop_once", sha256=sha256(body))
    dl.fetch(item, tmp_path / "blob.bin")
    assert (tmp_path / "blob.bin").read_bytes() == body
    first, second = server.files["/blob.bin"].requests
    assert first is None and second == f"bytes={len(body) // 2}-"


def test_truncated_download_is_kept_as_part_never_used(server: Server, tmp_path: Path) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, "truncate", sha256=sha256(body))
    dest = tmp_path / "blob.bin"
    with pytest.raises(dl.DownloadInterrupted, match=r"connection dropped.*run the command again"):
        dl.fetch(item, dest, retries=1)
    assert not dest.exists()
    assert dest.with_name("blob.bin.part").is_file()  # kept for the next attempt
    server.files["/blob.bin"].mode = "ok"
    dl.fetch(item, dest)  # the next attempt resumes and completes
    assert dest.read_bytes() == body


def test_wrong_checksum_deletes_the_download(server: Server, tmp_path: Path) -> None:
    body = payload()
    item = remote(server, "blob.bin", body, sha256="0" * 64)
    dest = tmp_path / "blob.bin"
    with pytest.raises(DataError, match=r"sha256 mismatch: expected 0{64}.*deleted"):
        dl.fetch(item, dest)
    assert not dest.exists() and not dest.with_name("blob.bin.part").exists()


def test_missing_file_is_an_http_error(server: Server, tmp_path: Path) -> None:
    item = dl.RemoteFile("absent.bin", server.url("/absent.bin"), sha256="0" * 64)
    with pytest.raises(DataError, match="HTTP 404"):
        dl.fetch(item, tmp_path / "absent.bin")
    assert not list(tmp_path.iterdir())


def test_unpinned_file_is_recorded_and_checked_later(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = payload()
    item = remote(server, "table.json", body)  # nothing published
    dest = tmp_path / "table.json"
    dl.fetch(item, dest)
    assert f"recorded its sha256 {sha256(body)}" in capsys.readouterr().err
    assert dl.read_record(tmp_path)["table.json"]["sha256"] == sha256(body)
    assert dl.check_file(dest, item) == dest
    dest.write_bytes(body[:-1] + b"\x00")  # changed since it was recorded
    with pytest.raises(DataError, match="sha256 mismatch"):
        dl.check_file(dest, item)


# ---- sources, the CLI and named benchmarks ---------------------------------------------------
def nsz_table(n: int = 12) -> bytes:
    """A small NAS-Bench-Suite-Zero file: NB201 cifar10 with val accuracies and one proxy."""
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    rows = {}
    while len(rows) < n:
        arch = space.sample(rng)
        rows[space.encode(arch)] = {
            "val_accuracy": float(rng.uniform(10, 94)),
            "params": float(rng.uniform(0.1, 1.5)),
            "synflow": float(rng.normal()),
        }
    return json.dumps({"nasbench201": {"cifar10": rows}}).encode()


@pytest.fixture
def table_source(server: Server, monkeypatch: pytest.MonkeyPatch) -> dl.Source:
    body = nsz_table()
    item = remote(server, "zc_nasbench201.json", body, sha256=sha256(body), size=len(body))
    spec = dl.Source("test-nb201", "a small NSZ table", "nsz", (item,), benchmark=True)
    monkeypatch.setitem(dl.SOURCES, spec.name, spec)
    return spec


def test_cli_download_converts_into_a_named_benchmark(
    table_source: dl.Source, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    result = CliRunner().invoke(main, ["data", "download", "test-nb201", "--root", str(root)])
    assert result.exit_code == 0, result.output
    out = benchmark_path("test-nb201", root)
    assert out == root / "benchmarks" / "test-nb201.h5" and f"{out}" in result.output
    table = load_benchmark(out).task("nasbench201", "cifar10")
    assert len(table) == 12 and list(table.proxies.columns) == ["synflow"]
    assert resolve_benchmark("test-nb201", root) == out
    assert resolve_benchmark("TEST-NB201", root) == out  # names are case-insensitive
    again = CliRunner().invoke(main, ["data", "download", "test-nb201", "--root", str(root)])
    assert again.exit_code == 0 and table_source.files[0].url  # verified, not fetched again


@pytest.mark.slow
def test_evaluate_on_a_downloaded_benchmark_by_name(
    table_source: dl.Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`zcp data download NAME` then `zcp evaluate --benchmark NAME`: the real competitor path."""
    root = tmp_path / "root"
    monkeypatch.setenv("ZCP_DATA_ROOT", str(root))
    assert CliRunner().invoke(main, ["data", "download", "test-nb201"]).exit_code == 0
    out = tmp_path / "eval"
    args = ["evaluate", "--proxy", "params", "--benchmark", "test-nb201", "--n", "6"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--isolation", "none"])
    assert result.exit_code == 0, result.output
    (task,) = json.loads((out / "results.json").read_text())["tasks"]
    assert (task["space"], task["task"], task["status"]) == ("nasbench201", "cifar10", "ok")
    assert task["benchmark"]["path"] == str(benchmark_path("test-nb201", root).resolve())


def test_cli_errors_are_one_line(
    table_source: dl.Source, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path / "root")
    for args, message in (
        (["data", "download", "nope"], "error: unknown data source 'nope'"),
        (["evaluate", "--proxy", "params", "--benchmark", "test-nb201"], "is not downloaded"),
    ):
        result = CliRunner().invoke(
            main,
            [*args, "--root", root] if args[0] == "data" else args,
            env={"ZCP_DATA_ROOT": root},
        )
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    bad = dl.Source(
        "test-bad",
        "corrupt",
        "bad",
        (remote(server, "bad.json", b"{}", sha256="1" * 64),),
        benchmark=True,
    )
    monkeypatch.setitem(dl.SOURCES, bad.name, bad)
    result = CliRunner().invoke(main, ["data", "download", "test-bad", "--root", root])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "sha256 mismatch" in result.output
    assert len(result.output.splitlines()) == 1
    assert not (Path(root) / "bad" / "bad.json").exists()
    assert not benchmark_path("test-bad", root).exists()


def test_cli_partial_download_is_one_line_and_never_used(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that keeps dropping: exit 2, one line, the `.part` kept, no benchmark;
    the next run resumes it and converts."""
    body = nsz_table()
    item = remote(server, "cut.json", body, "truncate", sha256=sha256(body), size=len(body))
    monkeypatch.setitem(
        dl.SOURCES, "test-cut", dl.Source("test-cut", "t", "cut", (item,), benchmark=True)
    )
    root = tmp_path / "root"
    args = ["data", "download", "test-cut", "--root", str(root)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1, result.output
    assert result.output.startswith("error: ") and "run the command again" in result.output
    assert (root / "cut" / "cut.json.part").is_file() and not (root / "cut" / "cut.json").exists()
    assert not benchmark_path("test-cut", root).exists()
    assert len(server.files["/cut.json"].requests) == dl.RETRIES + 1
    server.files["/cut.json"].mode = "ok"
    assert CliRunner().invoke(main, args).exit_code == 0
    assert (root / "cut" / "cut.json").read_bytes() == body
    assert load_benchmark(benchmark_path("test-cut", root)).task("nasbench201", "cifar10")


def test_tarball_dataset_is_unpacked_and_verified(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = tmp_path / "staging"
    write_cifar10(staging)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    archive = buffer.getvalue()
    files = sorted((staging / "cifar-10-batches-py").iterdir())
    spec = dl.Source(
        "cifar10",
        "CIFAR-10 (test copy)",
        "cifar-10-batches-py",
        (
            remote(
                server, "c10.tar.gz", archive, md5=hashlib.md5(archive).hexdigest(), extract=True
            ),
        ),
        verify={f.name: dl.file_md5(f) for f in files},
    )
    monkeypatch.setitem(dl.SOURCES, "cifar10", spec)
    root = tmp_path / "root"
    paths = dl.download("cifar10", root)
    assert sorted(p.name for p in paths) == [f.name for f in files]
    assert get_batch("cifar10", 4, root=root).source.startswith(str(root))
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(b"corrupt")
    dl.download("cifar10", root)  # a corrupt member is unpacked again from the verified archive
    assert dl.file_md5(root / "cifar-10-batches-py" / "test_batch") == spec.verify["test_batch"]
    requests = len(server.files["/c10.tar.gz"].requests)
    (root / "c10.tar.gz").unlink()  # verified members: the archive is not needed again
    dl.download("cifar10", root)
    assert len(server.files["/c10.tar.gz"].requests) == requests == 1


def test_manual_source_is_only_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match=r"train_data_batch_1: file not found.*Place train_data"):
        dl.download("ImageNet16-120", tmp_path)
    folder = tmp_path / "ImageNet16"
    folder.mkdir()
    placed = {name: payload(1000, seed) for seed, name in enumerate(("batch_a", "val"))}
    for name, body in placed.items():
        (folder / name).write_bytes(body)
    real = dl.SOURCES["ImageNet16-120"]
    verify = {name: hashlib.md5(body).hexdigest() for name, body in placed.items()}
    monkeypatch.setitem(dl.SOURCES, real.name, dl.Source(**{**real.__dict__, "verify": verify}))
    assert dl.download("ImageNet16-120", tmp_path) == [folder / "batch_a", folder / "val"]
    (folder / "val").write_bytes(b"not the file")  # placed by hand, but the wrong file
    with pytest.raises(DataError, match=r"val: md5 mismatch.*Place train_data"):
        dl.download("ImageNet16-120", tmp_path)


def test_pin_writes_size_and_sha256(table_source: dl.Source, tmp_path: Path) -> None:
    root = tmp_path / "root"
    dl.download("test-nb201", root, dl.SOURCES)
    manifest = tmp_path / "sources.json"
    entry = {
        "description": "t",
        "subdir": "nsz",
        "benchmark": True,
        "files": [
            {
                "name": "zc_nasbench201.json",
                "url": table_source.files[0].url,
                "md5": None,
                "sha256": None,
                "size": None,
            }
        ],
    }
    manifest.write_text(
        json.dumps({"format": "zcp-sources", "version": 1, "sources": {"test-nb201": entry}})
    )
    result = CliRunner().invoke(
        main, ["data", "pin", "test-nb201", "--root", str(root), "--manifest", str(manifest)]
    )
    assert result.exit_code == 0, result.output
    pinned = json.loads(manifest.read_text())["sources"]["test-nb201"]["files"][0]
    body = (root / "nsz" / "zc_nasbench201.json").read_bytes()
    assert pinned["sha256"] == sha256(body) and pinned["size"] == len(body)


def test_manifest_is_valid_and_checksummed() -> None:
    """Every shipped source has a URL and a published/pinned checksum, or says it has none."""
    sources = dl.load_manifest()
    names = {"cifar10", "cifar100", "svhn", "ImageNet16-120", "nats-tss"}
    assert {*names, "nsz-nb101", "nsz-nb201", "nsz-nb301", "nsz-tnb101-micro"} <= set(sources)
    for spec in sources.values():
        assert spec.manual or spec.files
        for item in spec.files:
            assert item.url.startswith("https://") or item.url.startswith("http://ufldl")
    assert sources["nats-tss"].files[0].sha256 and sources["cifar10"].files[0].md5
    assert set(dl.expand(["nsz"])) == {n for n in sources if n.startswith("nsz-")}
