"""Evaluator: policy, metrics, submission forms and archives, tasks, reports and end-to-end runs.

Adversarial submissions (limits and sandbox) are in ``test_evaluator_sandbox.py``, which reuses
the helpers defined here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from scipy.stats import kendalltau

from evaluator import (
    EvalTask,
    Limits,
    SandboxUnavailable,
    SubmissionRejected,
    as_tasks,
    check,
    evaluate,
    metrics,
    open_submission,
    pack,
    policy,
    resolve_isolation,
    sandbox,
    submission,
)
from evaluator.cli import cli
from evaluator.protocol import ArchResult, ExceptionInfo, JobPaths, decode_event, encode
from evaluator.report import benchmark_notes
from evaluator.runner import prepare_task, write_job
from evaluator.submission import builtin_submission
from evaluator.tasks import arch_seed, sample_rows
from evaluator.worker import COMPAT_DIR, describe_value, seed_everything
from zcproxies.benchdata import BenchmarkTask, write_benchmark
from zcproxies.data import batch_for_task
from zcproxies.measure import count_params
from zcproxies.proxies import score as proxy_score
from zcproxies.spaces import get_space

SUBMISSIONS = Path(__file__).parent / "submissions"
TEMPLATE = Path(__file__).parent.parent / "submission_template"
LIMITS = Limits(task_timeout=30, memory_mb=3072, max_processes=32, max_restarts=1)
BWRAP = resolve_isolation("auto").mode == "bwrap"
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="bubblewrap (bwrap) unavailable here")
REQUIRE_SANDBOX = "ZCP_REQUIRE_SANDBOX"  # set to 1 where bwrap must work (CI): no silent skips


# ---- helpers shared with test_evaluator_sandbox.py ----------------------------------------------
def sample_archs(space: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct seeded architectures of ``space`` as NASLib keys."""
    obj = get_space(space)
    rng = np.random.default_rng(seed)
    keys: list[str] = []
    while len(keys) < n:
        key = obj.encode(obj.sample(rng))
        keys += [] if key in keys else [key]
    return keys


def make_task(space: str = "nasbench201_mini", task: str = "digits", n: int = 8) -> EvalTask:
    """A table whose 'accuracy' is each network's parameter count: a known exact ranking."""
    keys = sample_archs(space, n)
    params = [float(count_params(get_space(space).build(k, task))) for k in keys]
    return EvalTask(space, task, pd.DataFrame({"arch": keys, "val_accuracy": params}))


def run(
    submission: str | Path,
    tasks: list[EvalTask],
    out: Path | None = None,
    n: int = 8,
    **options: object,
) -> tuple[pd.DataFrame, dict]:
    """``evaluate`` quietly with test limits; the frame and the parsed results.json."""
    options.setdefault("limits", LIMITS)
    frame = evaluate(
        str(submission), tasks, n_archs=n, seed=0, out_dir=out, progress=False, **options
    )
    results = json.loads((out / "results.json").read_text()) if out is not None else {}
    return frame, results


def arch_rows(results: dict, task: int = 0) -> list[dict]:
    """The per-architecture records of one task of results.json."""
    return results["tasks"][task]["archs"]


# ---- policy -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "status", "score"),
    [
        (1.5, "ok", 1.5),
        (7, "ok", 7.0),
        (np.float32(3.0), "ok", 3.0),
        (np.int64(-4), "ok", -4.0),
        (torch.tensor(2.5), "ok", 2.5),
        (np.array(0.25), "ok", 0.25),
        (torch.tensor(1.0, requires_grad=True) * 2, "ok", 2.0),
        (float("nan"), "invalid_score", None),
        (float("inf"), "invalid_score", None),
        (-float("inf"), "invalid_score", None),
        pytest.param(10**400, "invalid_score", None, id="huge-int"),
        (None, "invalid_score", None),
        ("0.7", "invalid_score", None),
        (True, "ok", 1.0),  # NASLib's evaluator took what float() takes (conversion recorded)
        (np.bool_(True), "ok", 1.0),
        (complex(1, 1), "invalid_score", None),
        (torch.tensor([4.0]), "ok", 4.0),
        (np.array([[0.5]]), "ok", 0.5),
        (torch.zeros(0), "invalid_score", None),
        (torch.tensor([1.0, 2.0]), "invalid_score", None),
        (torch.tensor(float("nan")), "invalid_score", None),
        (torch.tensor(1 + 1j), "invalid_score", None),
        (torch.tensor(True), "ok", 1.0),
        ([1.0], "invalid_score", None),
    ],
)
def test_score_values_policy(value: object, status: str, score: float | None) -> None:
    event = decode_event(encode(ArchResult(0, 0.1, 0.1, describe_value(value))))  # on the wire
    assert isinstance(event, ArchResult) and event.value is not None
    outcome = policy.judge_value(event.value)
    assert (outcome.status, outcome.score) == (status, score)
    assert outcome.status == "ok" or outcome.message


def test_exception_and_death_policy() -> None:
    assert policy.judge_exception(ExceptionInfo("MemoryError", "")).status == "memory"
    torch_oom = "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"
    assert policy.judge_exception(ExceptionInfo("RuntimeError", torch_oom)).status == "memory"
    assert policy.judge_exception(ExceptionInfo("KeyError", "'x'")).status == "error"
    death = policy.judge_death("Fatal Python error: Segmentation fault", 139)
    assert death.status == "crash" and "SIGSEGV" in death.message
    assert policy.judge_death("terminate called after std::bad_alloc", -6).status == "memory"
    exc = ExceptionInfo("SyntaxError", "invalid syntax")
    assert policy.load_error_status("import", exc) == "rejected"
    assert policy.load_error_status("interface", exc) == "rejected"
    assert policy.load_error_status("init", ExceptionInfo("RuntimeError", "")) == "error"
    assert policy.load_error_status("setup", ExceptionInfo("MemoryError", "")) == "memory"


def test_task_status_threshold_and_dominant_failure() -> None:
    assert policy.task_status(["ok"] * 8) == ("ok", "")
    status, message = policy.task_status(["ok"] * 6 + ["error", "invalid_score"])  # 25 %
    assert status == "ok" and "ranked last" in message
    assert policy.task_status(["ok"] * 5 + ["error"] * 2 + ["crash"])[0] == "error"
    assert policy.task_status(["ok"] * 2 + ["memory", "crash"] * 3)[0] == "crash"  # tie: crash
    assert policy.task_status(["invalid_score"] * 3)[0] == "invalid_score"
    # architectures past --arch-timeout vote too (they were ranked "crash" before they did)
    assert policy.task_status(["ok"] * 5 + ["timeout"] * 3)[0] == "timeout"
    assert policy.task_status(["ok"] * 2 + ["timeout", "error"] * 3)[0] == "error"  # tie


# ---- metrics ------------------------------------------------------------------------------------
def test_kendall_tau_is_scipy_tau_b_with_failures_ranked_last() -> None:
    rng = np.random.default_rng(1)
    acc = rng.normal(size=30).round(1)  # ties in accuracy
    scores = rng.integers(0, 8, size=30).astype(float).tolist()  # ties in scores
    assert metrics.kendall_tau(scores, acc) == pytest.approx(kendalltau(scores, acc).statistic)
    failed = [None if i % 7 == 0 else s for i, s in enumerate(scores)]
    ranked = policy.ranking_scores(failed)
    as_lowest = [-1e9 if s is None else s for s in failed]
    assert metrics.kendall_tau(ranked, acc) == pytest.approx(kendalltau(as_lowest, acc).statistic)
    assert metrics.kendall_tau([1.0] * 5, list(range(5))) == 0.0  # undefined counts 0
    huge = [1e300 * s for s in scores]
    assert metrics.kendall_tau(huge, acc) == pytest.approx(metrics.kendall_tau(scores, acc))


def test_precision_bootstrap_and_spearman() -> None:
    acc = list(range(20))
    assert metrics.precision_top(acc, acc) == 1.0  # k = 2
    assert metrics.precision_top([-a for a in acc], acc) == 0.0
    assert metrics.precision_top([0, 1] + [-1] * 18, acc) == 0.0
    assert metrics.spearman(acc, acc) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = (np.array(acc) + rng.normal(scale=5, size=20)).tolist()
    interval = metrics.bootstrap_tau(noisy, acc, seed=3)
    assert interval == metrics.bootstrap_tau(noisy, acc, seed=3)  # seeded
    assert interval.low < metrics.kendall_tau(noisy, acc) < interval.high <= 1.0
    assert math.isnan(interval.margin_low)  # no seeds, no ceiling


# ---- submissions and archives -------------------------------------------------------------------
def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


PROXY = b"def score(model, batch):\n    return 1.0\n"


@pytest.mark.parametrize(
    ("members", "symlink", "reason"),
    [
        ({"../evil.py": PROXY, "proxy.py": PROXY}, None, "path traversal"),
        ({"sub/../../evil.py": PROXY, "proxy.py": PROXY}, None, "path traversal"),
        ({"/abs/evil.py": PROXY, "proxy.py": PROXY}, None, "absolute"),
        ({"C:/evil.py": PROXY, "proxy.py": PROXY}, None, "absolute"),
        ({"a\\..\\evil.py": PROXY, "proxy.py": PROXY}, None, "backslash"),
        ({"proxy.py": PROXY}, "link.py", "symlink"),
        ({}, None, "no files"),
        ({"empty_dir/": b""}, None, "no files"),
        ({"proxy.py": PROXY, "bomb.bin": b"\0" * (20 << 20)}, None, "zip bomb"),
    ],
)
def test_unsafe_zips_are_rejected(
    tmp_path: Path, members: dict[str, bytes], symlink: str | None, reason: str
) -> None:
    archive = _zip(tmp_path / "sub.zip", members, symlink)
    with pytest.raises(SubmissionRejected, match=reason):
        open_submission(archive, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists() and not Path("/abs/evil.py").exists()


def test_oversized_submissions_are_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 1 << 20)
    big = np.random.default_rng(0).bytes((1 << 20) + 1)  # incompressible
    with pytest.raises(SubmissionRejected, match="MiB"):
        open_submission(
            _zip(tmp_path / "big.zip", {"proxy.py": PROXY, "w.bin": big}), tmp_path / "out"
        )
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "proxy.py").write_bytes(PROXY)
    (folder / "w.bin").write_bytes(big)
    with pytest.raises(SubmissionRejected, match="MiB"):
        open_submission(folder, tmp_path / "out2")


def test_directory_with_symlink_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "proxy.py").write_bytes(PROXY)
    (folder / "secret.py").symlink_to("/etc/passwd")
    with pytest.raises(SubmissionRejected, match="symlink"):
        open_submission(folder, tmp_path / "out")


def test_forms_are_detected_and_wrapped_zips_unwrapped(tmp_path: Path) -> None:
    native = open_submission(TEMPLATE, tmp_path / "a")
    assert (native.form, native.entry) == ("native", "proxy.py")
    assert native.root is not None and (native.root / "proxy.py").is_file()
    folder = SUBMISSIONS / "competition"
    archive = shutil.make_archive(str(tmp_path / "comp"), "zip", folder)
    comp = open_submission(archive, tmp_path / "b")
    assert (comp.form, comp.entry, comp.notes) == ("competition", "submission.py", ())
    assert comp.root is not None and comp.root.name == "sample_submission"
    predictor = tmp_path / "pred"
    predictor.mkdir()
    (predictor / "predictor.py").write_text("class ZeroCostPredictor: ...\n")
    found = open_submission(predictor, tmp_path / "c")
    assert found.form == "competition" and "metadata" in found.notes[0]
    assert builtin_submission("synflow").form == "builtin"
    with pytest.raises(SubmissionRejected, match="unknown proxy"):
        builtin_submission("no_such_proxy")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(SubmissionRejected, match=r"proxy\.py"):
        open_submission(tmp_path / "nothing", tmp_path / "d")


def test_pack_adds_metadata_and_is_reproducible(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    shutil.copytree(SUBMISSIONS / "competition" / "sample_submission", folder)
    (folder / "metadata").unlink()
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"junk")
    first = pack(folder, tmp_path / "one.zip")
    second = pack(folder, tmp_path / "two.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        assert sorted(zf.namelist()) == ["compute.py", "metadata", "submission.py"]
        assert zf.read("metadata") == b""
    with pytest.raises(SubmissionRejected):
        pack(tmp_path / "absent")


def test_compat_naslib_is_never_importable_by_the_evaluator() -> None:
    assert importlib.util.find_spec("naslib") is None
    assert str(COMPAT_DIR) not in sys.path
    assert (COMPAT_DIR / "naslib" / "predictors" / "predictor.py").is_file()


# ---- tasks, jobs and the sandbox command --------------------------------------------------------
def test_tasks_from_a_benchmark_file(tmp_path: Path) -> None:
    keys = sample_archs("nb201", 6)
    table = BenchmarkTask(
        "nasbench201",
        "cifar10",
        pd.DataFrame({"arch": keys, "val_accuracy": np.arange(6.0)}),
        source="test table",
        higher_is_better=False,
    )
    path = write_benchmark(tmp_path / "bench.h5", [table])
    (task,) = as_tasks(path)
    assert (task.key, task.path, task.metadata["source"]) == (
        "nasbench201/cifar10",
        path.resolve(),
        "test table",
    )
    np.testing.assert_array_equal(task.accuracy(np.arange(6)), -np.arange(6.0))  # lower better
    with pytest.raises(ValueError, match="distinct"):
        as_tasks([task, task])


def test_sampling_and_seeds_are_deterministic() -> None:
    task = make_task(n=12)
    other = make_task("nasbench201", "cifar10", n=12)
    rows = sample_rows(task, 5, seed=4)
    assert rows.tolist() == sample_rows(task, 5, seed=4).tolist()
    assert rows.tolist() != sample_rows(task, 5, seed=5).tolist()
    assert rows.tolist() != sample_rows(other, 5, seed=4).tolist()  # tasks differ
    assert len(set(rows.tolist())) == 5 and len(sample_rows(task, 50, seed=0)) == 12
    assert arch_seed(0, "(1, 2, 3, 4, 0, 1)") == arch_seed(0, "(1, 2, 3, 4, 0, 1)")
    assert arch_seed(0, "(1, 2, 3, 4, 0, 1)") != arch_seed(1, "(1, 2, 3, 4, 0, 1)")


def test_job_carries_no_accuracy(tmp_path: Path) -> None:
    task = make_task()
    accuracy = pd.DataFrame(
        {"arch": task.frame["arch"], "val_accuracy": np.linspace(12.345, 98.765, len(task.frame))}
    )
    prepared = prepare_task(EvalTask(task.space, task.task, accuracy), 8, 0, 16)
    torch.save({"x": prepared.batch.x, "y": prepared.batch.y}, tmp_path / "b.pt")
    sub = open_submission(TEMPLATE, tmp_path / "s")
    write_job(
        tmp_path,
        tmp_path / "b.pt",
        sub,
        prepared,
        prepared.records,
        LIMITS,
        None,
        JobPaths("/zcp/job", "/zcp/submission", "/tmp"),
        "benchmark",
        None,
    )
    text = (tmp_path / "job.json").read_text()
    assert "accuracy" not in text
    assert not any(repr(r.accuracy) in text for r in prepared.records)
    assert len(json.loads(text)["archs"]) == 8


def test_sandbox_command_hides_secrets_under_mounts(tmp_path: Path) -> None:
    root = sandbox._package_roots()[0]
    secret_dir, secret_file = root / "data", root / "__init__.py"  # stand-ins under a mount
    outside = tmp_path / "bench.h5"
    outside.write_bytes(b"x")
    mounts = sandbox.Mounts(tmp_path, tmp_path, None, (secret_dir, secret_file, outside))
    args = sandbox._bwrap_args("bwrap", mounts)
    joined = " ".join(args)
    assert f"--tmpfs {secret_dir}" in joined
    assert f"--ro-bind /dev/null {secret_file}" in joined
    assert str(outside) not in joined  # never mounted: nothing to hide
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in args
    read_only = [Path(args[i + 1]) for i, a in enumerate(args) if a == "--ro-bind"]
    for needed in (root, Path(sys.executable).resolve()):
        assert any(needed.is_relative_to(p) for p in read_only)
    assert args[args.index("--bind") + 2] == sandbox.SANDBOX_TMP  # the only writable mount


def test_missing_bwrap_falls_back_loudly_or_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox._probe_bwrap.cache_clear()
    try:
        found = resolve_isolation("auto")
        assert found.mode == "none" and "not found" in found.detail
        with pytest.raises(SandboxUnavailable, match="required"):
            resolve_isolation("bwrap")
    finally:
        monkeypatch.undo()
        sandbox._probe_bwrap.cache_clear()


def test_sandbox_is_available_where_required() -> None:
    if os.environ.get(REQUIRE_SANDBOX) == "1":
        assert BWRAP, f"{REQUIRE_SANDBOX}=1 but bwrap fails: {resolve_isolation('auto').detail}"
    assert resolve_isolation("none").mode == "none"


# ---- end to end ---------------------------------------------------------------------------------
def load_template() -> Any:
    """``submission_template/proxy.py`` imported as a module."""
    spec_file = importlib.util.spec_from_file_location("template_proxy", TEMPLATE / "proxy.py")
    template = importlib.util.module_from_spec(spec_file)
    spec_file.loader.exec_module(template)
    return template


@pytest.mark.parametrize(
    ("space", "task"), [("nasbench201_mini", "shapes"), ("nasbench201", "cifar10")]
)
def test_template_is_the_builtin_nwot(space: str, task: str) -> None:
    """The template's few lines compute exactly the registered (bit-packed) NASWOT score."""
    template = load_template()
    spec = get_space(space).task(task)
    batch = batch_for_task(spec, 16, 0)
    for seed, arch in enumerate(sample_archs(space, 3, seed=1)):
        model = get_space(space).build(arch, task, seed=seed)
        builtin = proxy_score("nwot", model, batch, seed=seed)
        assert template.score(model, batch) == pytest.approx(builtin, rel=1e-12, abs=1e-12)


@pytest.mark.slow
def test_template_on_two_tasks_with_reports(tmp_path: Path) -> None:
    tasks = [make_task(n=8), make_task("nasbench201", "cifar10", n=4)]
    frame, results = run(TEMPLATE, tasks, tmp_path / "out", n=8, batch_size=16)
    assert frame["status"].tolist() == ["ok", "ok"]
    assert frame["n_ok"].tolist() == [8, 4]
    assert frame.attrs["final_score"] == pytest.approx(frame["kendall_tau"].mean())
    assert results["final_score"] == pytest.approx(frame.attrs["final_score"])
    for key in ("versions", "seed", "limits", "isolation", "submission", "n_archs"):
        assert key in results
    assert results["versions"]["torch"] == torch.__version__
    assert results["limits"]["task_timeout"] == LIMITS.task_timeout
    assert results["submission"]["form"] == "native"
    # ONE fixed minibatch per task: the recorded fingerprint is the batch rebuilt here
    spec = get_space("nasbench201_mini").task("digits")
    assert results["tasks"][0]["batch"]["fingerprint"] == batch_for_task(spec, 16, 0).fingerprint
    # the worker's score is the template's own score of the same network, weights and batch
    template = load_template()
    record = arch_rows(results)[0]
    model = get_space("nasbench201_mini").build(record["arch"], "digits", seed=record["seed"])
    batch = batch_for_task(spec, 16, 0)
    seed_everything(record["seed"])
    assert record["score"] == pytest.approx(template.score(model, batch), rel=1e-5)
    assert all(r["seconds"] > 0 and r["build_seconds"] > 0 for r in arch_rows(results))
    for name in (
        "results.csv",
        "archs.csv",
        "summary.md",
        "plots/nasbench201_mini__digits.png",
        "plots/nasbench201__cifar10.png",
    ):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert (tmp_path / "out" / "plots" / "nasbench201__cifar10.png").read_bytes()[:4] == b"\x89PNG"
    assert f"{frame.attrs['final_score']:.4f}" in (tmp_path / "out" / "summary.md").read_text()
    assert len(pd.read_csv(tmp_path / "out" / "archs.csv")) == 12


@pytest.mark.slow
def test_builtin_proxy_is_exact_in_sandbox_and_fallback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    task = make_task(n=8)
    frame, results = run("proxy:params", [task], tmp_path / "a")
    assert frame["kendall_tau"].iloc[0] == 1.0  # the table's accuracy is the parameter count
    scores = {r["arch"]: r["score"] for r in arch_rows(results)}
    model = get_space(task.space).build
    assert scores == pytest.approx({k: count_params(model(k, task.task)) / 1e6 for k in scores})
    assert results["isolation"]["mode"] == ("bwrap" if BWRAP else "none")
    capfd.readouterr()
    frame2, results2 = run("proxy:params", [task], tmp_path / "b", isolation="none")
    assert "WITHOUT filesystem/network isolation" in capfd.readouterr().err
    assert results2["isolation"]["mode"] == "none" and frame2.attrs["isolation"] == "none"
    assert {r["arch"]: r["score"] for r in arch_rows(results2)} == scores


@pytest.mark.slow
def test_competition_form_zip_runs_unchanged(tmp_path: Path) -> None:
    archive = shutil.make_archive(str(tmp_path / "upload"), "zip", SUBMISSIONS / "competition")
    frame, results = run(archive, [make_task(n=6)], tmp_path / "out", n=6)
    assert frame["status"].iloc[0] == "ok", frame["message"].iloc[0]
    assert frame["kendall_tau"].iloc[0] == 1.0  # parameter count against parameter count
    assert results["submission"]["form"] == "competition"
    assert importlib.util.find_spec("naslib") is None  # still not importable here


@pytest.mark.slow
def test_a_real_naslib_wins_over_the_compat_package(tmp_path: Path) -> None:
    """A NASLib importable before the stand-in (here: shipped inside the submission) is used."""
    folder = tmp_path / "with_naslib"
    shutil.copytree(SUBMISSIONS / "competition" / "sample_submission", folder)
    (folder / "submission.py").write_text(
        "from naslib.predictors.predictor import Predictor\n\n\n"
        "class ZeroCostPredictor(Predictor):\n"
        "    method_type = 'which_naslib'\n\n"
        "    def query(self, graph, dataloader=None):\n"
        "        return 2.0 if getattr(Predictor, 'REAL', False) else 1.0\n"
    )
    package = folder / "naslib" / "predictors"
    package.mkdir(parents=True)
    (folder / "naslib" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "predictor.py").write_text("class Predictor:\n    REAL = True\n")
    _, results = run(folder, [make_task(n=2)], tmp_path / "out", n=2)
    assert [r["score"] for r in arch_rows(results)] == [2.0, 2.0]


@pytest.mark.slow
def test_check_reports_success_and_failure(tmp_path: Path) -> None:
    report = check(TEMPLATE, limits=LIMITS)
    assert report.ok and report.form == "native" and report.statuses == ["ok", "ok"]
    assert all(math.isfinite(s) for s in report.scores)
    assert report.seconds_per_arch > 0 and report.estimate(100) > report.startup_seconds
    assert "OK" in report.describe()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "proxy.py").write_text("def score(model, batch)\n    return 1.0\n")
    report = check(broken, limits=LIMITS)
    assert not report.ok and report.statuses == ["rejected", "rejected"]
    assert "SyntaxError" in report.describe()


@pytest.mark.slow
def test_cli_evaluate_and_pack(tmp_path: Path) -> None:
    keys = sample_archs("nasbench201_mini", 6)
    params = [float(count_params(get_space("nasbench201_mini").build(k, "digits"))) for k in keys]
    table = BenchmarkTask(
        "nasbench201_mini",
        "digits",
        pd.DataFrame({"arch": keys, "val_accuracy": params}),
        source="test",
    )
    bench = write_benchmark(tmp_path / "bench.h5", [table])
    runner = CliRunner()
    out = tmp_path / "res"
    done = runner.invoke(
        cli,
        [
            "evaluate",
            "--proxy",
            "params",
            "--benchmark",
            str(bench),
            "--n",
            "6",
            "--out",
            str(out),
            "--task-timeout",
            "30",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "final score (mean Kendall-Tau): 1.0000" in done.output
    assert pd.read_csv(out / "results.csv")["status"].tolist() == ["ok"]
    packed = runner.invoke(cli, ["pack", str(TEMPLATE), "--out", str(tmp_path / "t.zip")])
    assert packed.exit_code == 0 and Path(packed.output.strip()).is_file()
    both = runner.invoke(cli, ["evaluate", str(TEMPLATE), "--proxy", "params"])
    assert both.exit_code == 2 and "not both" in both.output


def test_rejected_submission_scores_zero_without_running(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bad.zip", {"../x.py": PROXY})
    tasks = [make_task(n=4), make_task("nasbench201", "cifar10", n=4)]
    frame, results = run(archive, tasks, tmp_path / "out", n=4)
    assert frame["status"].tolist() == ["rejected", "rejected"]
    assert frame["launches"].tolist() == [0, 0] and frame.attrs["final_score"] == 0.0
    assert "path traversal" in results["submission"]["rejected"]


def test_total_time_limit_stops_every_task(tmp_path: Path) -> None:
    """The task running when the total limit is reached times out; the later ones never ran."""
    limits = Limits(task_timeout=30, total_timeout=1.0)
    tasks = [make_task(n=4), make_task("nasbench201", "cifar10", n=4)]
    frame, _ = run(TEMPLATE, tasks, None, n=4, limits=limits)
    assert frame["status"].tolist() == ["timeout", "interrupted"]
    assert all("total time limit" in m for m in frame["message"])
    assert "before it started" in frame["message"].iloc[1]
    assert frame["launches"].tolist() == [1, 0]
    assert not frame.attrs["interrupted"]  # not Ctrl-C: the exit status follows the tasks


@pytest.mark.shared
def test_competition_sample_data_reference_tau(shared_dir: Path, tmp_path: Path) -> None:
    """The competition's own NB201/CIFAR-10 sample (40 of its 80 archs): the competition-form
    submission (parameter count) reaches exactly scipy's tau of count_params vs accuracy."""
    entries = json.loads((shared_dir / "competition/nasbench201/cifar10/train.json").read_text())
    space = get_space("nasbench201")
    keys = [space.encode(tuple(e["arch"])) for e in entries]
    accuracy = [e["accuracy"] for e in entries]
    task = EvalTask(
        "nasbench201", "cifar10", pd.DataFrame({"arch": keys, "val_accuracy": accuracy})
    )
    frame, results = run(SUBMISSIONS / "competition", [task], tmp_path / "out", n=40, batch_size=8)
    rows = arch_rows(results)
    params = [count_params(space.build(r["arch"], "cifar10")) for r in rows]
    reference = kendalltau(params, [r["accuracy"] for r in rows]).statistic
    assert frame["status"].iloc[0] == "ok" and len(rows) == 40
    assert frame["kendall_tau"].iloc[0] == pytest.approx(reference, abs=1e-12)
    assert 0.3 < reference < 0.9  # parameter count is a known, moderately good proxy on NB201
    assert results["tasks"][0]["batch"]["dataset"] == "cifar10"


def test_benchmark_notes_escape_the_files_text_and_need_numeric_figures() -> None:
    """summary.md's "Benchmark" section: what the file says it is, and its measured agreement."""
    frame = pd.DataFrame({"arch": ["a", "b", "c"], "val_accuracy": [1.0, 2.0, 3.0]})
    meta = {
        "description": "shapes | <b>bold</b>\nsecond line",
        "agreement_nb201_kendall_tau": np.float64(0.7123),
        "agreement_seed_kendall_tau": 0.8,
        "agreement_proxy_ranking_spearman": 0.61,
        "agreement_proxies": np.int64(24),  # as h5py returns an integer attribute
    }
    task = EvalTask("nasbench201_mini", "shapes", frame, metadata=meta)
    notes = benchmark_notes([SimpleNamespace(task=task)])
    assert notes.startswith("\n## Benchmark\n\n- nasbench201_mini/shapes: shapes \\| \\<b\\>")
    assert "second line. Agreement with NAS-Bench-201 CIFAR-10 over its 3 cells" in notes
    assert "Kendall-Tau 0.712" in notes and "Kendall-Taus of 24 proxies" in notes
    bad = {**meta, "agreement_proxies": "24; rm -rf"}  # not a number: no figures at all
    notes = benchmark_notes([SimpleNamespace(task=EvalTask("s", "t", frame, metadata=bad))])
    assert "Agreement" not in notes and notes.count("\n- ") == 1
    assert benchmark_notes([SimpleNamespace(task=EvalTask("s", "t", frame))]) == ""
