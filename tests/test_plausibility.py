"""Plausibility flags: the noise ceiling of a benchmark's seed columns, the ``suspicious`` rule,
and the issue's examples end to end. An upload that trains every architecture again with the
benchmark's published protocol, and one that looks the accuracies up in a public table bundled
inside it, are both flagged in results.json, summary.md, results.csv, the results store and the
leaderboard; honest proxies on the same benchmark are not."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import kendalltau
from test_evaluator import LIMITS, SUBMISSIONS, TEMPLATE, run, sample_archs

from evaluator import as_tasks, metrics, policy
from evaluator.batch import run_batch
from evaluator.batch_cli import cli as batch_cli
from evaluator.cli import cli
from evaluator.leaderboard import write_leaderboard
from evaluator.protocol import TaskMetrics
from evaluator.store import ResultsStore
from zcproxies.benchdata import BenchmarkTask, load_benchmark, write_benchmark
from zcproxies.data import get_batch
from zcproxies.spaces import get_space
from zcproxies.train import TrainConfig, train_model

# The small benchmark's published protocol: digits, 512 fitted + 360 held out, 3 epochs, 2 seeds.
PROTOCOL = {
    "space": "nasbench201_mini",
    "task": "digits",
    "split_seed": 0,
    "fit": 512,
    "val": 360,
    "seeds": [0, 1],
    "train_config": {"epochs": 3, "batch_size": 64, "lr": 0.05},
}
N_ARCHS = 12
IMPLAUSIBLE = SUBMISSIONS / "implausible"


# ---- the noise ceiling and the rule -------------------------------------------------------------
def test_noise_ceiling_is_mean_seed_pair_kendall_tau() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=40)
    seeds = truth[:, None] + rng.normal(scale=0.7, size=(40, 3))
    pairs = [kendalltau(seeds[:, a], seeds[:, b]).statistic for a, b in ((0, 1), (0, 2), (1, 2))]
    assert metrics.noise_ceiling(seeds) == pytest.approx(np.mean(pairs))
    assert metrics.noise_ceiling(np.repeat(truth[:, None], 2, axis=1)) == 1.0
    for none in (None, seeds[:, :1], seeds[:1]):  # one seed, one architecture
        assert math.isnan(metrics.noise_ceiling(none))
    assert math.isnan(metrics.noise_ceiling(np.ones((5, 2))))  # undefined: constant


def test_margin_over_the_ceiling_is_a_paired_bootstrap() -> None:
    """The mean of the seeds ranks the target exactly: far above the ceiling; a proxy as noisy
    as one more training run is not (its interval straddles 0); a weak one lies below."""
    rng = np.random.default_rng(1)
    truth = rng.normal(size=60)
    seeds = truth[:, None] + rng.normal(scale=0.6, size=(60, 2))
    target = seeds.mean(axis=1)
    lookup = metrics.bootstrap_tau(target, target, seed=5, seed_accuracy=seeds)
    assert lookup.low == pytest.approx(1.0) and lookup.margin_low > 0.1
    one_more_run = truth + rng.normal(scale=0.6, size=60)
    rerun = metrics.bootstrap_tau(one_more_run, target, seed=5, seed_accuracy=seeds)
    assert rerun.margin_low < 0 < rerun.margin_high
    weak = truth + rng.normal(scale=3.0, size=60)
    below = metrics.bootstrap_tau(weak, target, seed=5, seed_accuracy=seeds)
    assert below.margin_high < 0
    plain = metrics.bootstrap_tau(weak, target, seed=5)  # the same draws: the same interval
    assert (plain.low, plain.high) == (below.low, below.high)
    assert math.isnan(plain.margin_low) and math.isnan(plain.margin_high)


@pytest.mark.parametrize(
    ("tau", "ceiling", "margin", "reasons"),
    [
        (0.97, math.nan, math.nan, ["|Kendall-Tau| 0.970 > 0.95"]),
        (-0.99, math.nan, math.nan, ["|Kendall-Tau| 0.990 > 0.95"]),  # a lookup, negated
        (0.95, math.nan, math.nan, []),
        (0.7, 0.5, 0.05, ["Kendall-Tau 0.700 above the noise ceiling 0.500"]),
        (0.7, 0.5, -0.01, []),  # above the ceiling, but within the interval
        (1.0, 0.5, 0.3, ["|Kendall-Tau| 1.000 > 0.95", "above the noise ceiling 0.500"]),
        (0.4, 0.5, -0.3, []),
    ],
)
def test_suspicious_rule(tau: float, ceiling: float, margin: float, reasons: list[str]) -> None:
    text = policy.plausibility(
        TaskMetrics(kendall_tau=tau, noise_ceiling=ceiling, ceiling_margin_low=margin)
    )
    assert (text == "") == (not reasons)
    for reason in reasons:
        assert reason in text


def test_tasks_carry_the_target_per_seed(tmp_path: Path) -> None:
    keys = sample_archs("nasbench201_mini", 6)
    seeds = np.arange(12, dtype=np.float64).reshape(6, 2)
    table = BenchmarkTask(
        "nasbench201_mini",
        "digits",
        pd.DataFrame({"arch": keys, "val_accuracy": seeds.mean(axis=1)}),
        "test",
        higher_is_better=False,
        seeds={"val_accuracy": seeds},
    )
    (task,) = as_tasks(write_benchmark(tmp_path / "b.h5", [table]))
    rows = np.array([4, 1])
    assert np.array_equal(task.seed_accuracy(rows), -seeds[rows])  # oriented like accuracy()
    assert task.seed_accuracy(rows).mean(axis=1).tolist() == task.accuracy(rows).tolist()
    plain = BenchmarkTask("nasbench201_mini", "digits", table.frame, "test")
    (task,) = as_tasks(write_benchmark(tmp_path / "c.h5", [plain]))
    assert task.seed_accuracy(rows) is None


# ---- the examples, end to end -----------------------------------------------------------
def train_protocol(key: str, seed: int) -> float:
    """Validation accuracy (%) of one architecture trained with ``PROTOCOL`` and ``seed``."""
    data = get_batch("digits", PROTOCOL["fit"] + PROTOCOL["val"], seed=PROTOCOL["split_seed"])
    fit, val = PROTOCOL["fit"], (data.x[PROTOCOL["fit"] :], data.y[PROTOCOL["fit"] :])
    net = get_space(PROTOCOL["space"]).build(key, PROTOCOL["task"], seed=seed)
    config = TrainConfig(**PROTOCOL["train_config"])
    result = train_model(net, (data.x[:fit], data.y[:fit]), val, config, seed=seed)
    assert result.final_val_accuracy is not None
    return result.final_val_accuracy


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark the test trains itself with ``PROTOCOL``: 12 architectures x 2 seeds, the
    target the seeds' mean, the protocol in the table's metadata (published)."""
    keys = sample_archs("nasbench201_mini", N_ARCHS, seed=1)
    seeds = np.array([[train_protocol(k, s) for s in PROTOCOL["seeds"]] for k in keys])
    table = BenchmarkTask(
        PROTOCOL["space"],
        PROTOCOL["task"],
        pd.DataFrame({"arch": keys, "val_accuracy": seeds.mean(axis=1)}),
        "tests/test_plausibility.py",
        seeds={"val_accuracy": seeds},
        protocol=PROTOCOL,
    )
    return write_benchmark(tmp_path_factory.mktemp("trained") / "bench.h5", [table])


def cheat(tmp_path: Path, name: str, bench: Path, mode: str) -> Path:
    """The implausible upload with what it reads bundled: ``protocol.json`` (as published in
    the benchmark's metadata) or ``table.csv`` (the public table)."""
    upload = tmp_path / name
    shutil.copytree(IMPLAUSIBLE, upload)
    (table,) = load_benchmark(bench).tasks.values()
    if mode == "retrain":
        assert table.protocol is not None
        (upload / "protocol.json").write_text(json.dumps(table.protocol))
    else:
        table.frame[["arch", "val_accuracy"]].to_csv(upload / "table.csv", index=False)
    return upload


@pytest.mark.slow
def test_retraining_upload_is_flagged_in_every_result_file(trained: Path, tmp_path: Path) -> None:
    upload = cheat(tmp_path, "retrain", trained, "retrain")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(upload),
            "--benchmark",
            str(trained),
            "--n",
            str(N_ARCHS),
            "--out",
            str(out),
            "--task-timeout",
            "300",
            "--memory-mb",
            "3072",
        ],
    )
    assert result.exit_code == 0, result.output
    (task,) = json.loads((out / "results.json").read_text())["tasks"]
    assert task["status"] == "ok" and task["metrics"]["kendall_tau"] > 0.95, task["message"]
    ceiling = task["metrics"]["noise_ceiling"]
    (table,) = load_benchmark(trained).tasks.values()
    assert ceiling == pytest.approx(table.seed_kendall_tau())  # every row is sampled
    assert ceiling < 0.9 and task["metrics"]["ceiling_margin_low"] > 0
    assert "|Kendall-Tau|" in task["suspicious"] and "noise ceiling" in task["suspicious"]
    summary = (out / "summary.md").read_text()
    assert "| ok, **suspicious** |" in summary and "**Suspicious**" in summary
    assert f"| {ceiling:.3f} |" in summary
    assert "suspicious" in result.output  # zcp evaluate prints summary.md
    row = pd.read_csv(out / "results.csv").iloc[0]
    assert row["suspicious"] == task["suspicious"] and row["noise_ceiling"] == ceiling


@pytest.mark.slow
def test_lookup_upload_is_flagged_honest_proxies_are_not(trained: Path, tmp_path: Path) -> None:
    """A lookup, a built-in proxy and the template (NASWOT) through ``evaluate``; then a batch of
    the lookup and the honest ones: the store and the leaderboard flag the lookup only, and
    rank it (first, visibly flagged) instead of hiding it."""
    lookup = cheat(tmp_path, "lookup", trained, "lookup")
    rows = {}
    for name, source in (("lookup", lookup), ("synflow", "proxy:synflow"), ("template", TEMPLATE)):
        frame, _ = run(source, as_tasks(trained), n=N_ARCHS)
        rows[name] = frame.iloc[0]
    assert rows["lookup"]["kendall_tau"] == pytest.approx(1.0)
    assert "|Kendall-Tau| 1.000" in rows["lookup"]["suspicious"]
    assert "noise ceiling" in rows["lookup"]["suspicious"]
    for name in ("synflow", "template"):
        assert rows[name]["status"] == "ok" and rows[name]["suspicious"] == "", name
        assert rows[name]["kendall_tau"] < rows[name]["noise_ceiling"]
        assert rows[name]["noise_ceiling"] == rows["lookup"]["noise_ceiling"]  # one sample

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    shutil.copytree(lookup, uploads / "lookup")
    shutil.copytree(TEMPLATE, uploads / "template")
    results = tmp_path / "results"
    run_batch(uploads, results, benchmark=trained, n_archs=N_ARCHS, limits=LIMITS, progress=False)
    with ResultsStore.in_dir(results) as store:
        units = {u["upload"]: u for u in store.units()}
    assert units["lookup"]["suspicious"] == rows["lookup"]["suspicious"]
    assert units["template"]["suspicious"] == "" and units["template"]["noise_ceiling"] > 0
    board, paths = write_leaderboard(results)
    entries = {e["upload"]: e for e in board["entries"]}
    assert entries["lookup"]["rank"] == 1 and entries["lookup"]["status"] == "suspicious x1"
    assert entries["template"]["status"] == "ok"
    cell = entries["lookup"]["tasks"]["nasbench201_mini/digits"]
    assert cell["suspicious"] == units["lookup"]["suspicious"]
    table_html = paths[2].read_text().split('<table id="board">')[1]
    assert table_html.count('class="badge st-suspicious"') == 2  # its task cell and its flags
    table_csv = pd.read_csv(paths[0])
    assert table_csv.set_index("upload").loc["lookup", "suspicious"] == 1
    report = paths[3].read_text()
    assert report.count("**suspicious**: \\|Kendall-Tau\\| 1.000") == 1  # the lookup only
    listed = CliRunner().invoke(batch_cli, ["leaderboard", str(results)])
    assert "lookup  [suspicious x1]" in listed.output
