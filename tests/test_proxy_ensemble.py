"""``zcp_ensemble``: metadata, the formula against the stored reference, monotonicity of the
combiner, determinism, degenerate cells, clear errors, the build script and the evaluator path."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from scipy import stats

from evaluator.cli import cli
from zcproxies import build, get_space
from zcproxies.benchdata import embedded_task
from zcproxies.data import Batch, batch_for_task
from zcproxies.errors import DataError, UnknownName, ZcpError
from zcproxies.proxies import NONFINITE_SCORE, get_proxy, score, score_many
from zcproxies.proxies.ensemble import (
    COMPONENTS,
    REFERENCE_PATH,
    ComponentStats,
    combine,
    log_cauchy_cdf,
    pair_stats,
    reference_stats,
)
from zcproxies.spaces import list_spaces

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MINI = {"space": "nasbench201_mini", "task": "digits"}
ARCH = (0, 2, 3, 4, 2, 3)
AZ = ("expressivity", "progressivity", "trainability", "complexity")


@pytest.fixture(scope="module")
def digits_batch() -> Batch:
    """16 digits of the embedded benchmark's task (small: the formula, not the data, is tested)."""
    return batch_for_task(get_space("nasbench201_mini").task("digits"), size=16, seed=0)


def test_registry_metadata() -> None:
    info = get_proxy("zcp_ensemble")
    components = [get_proxy(name) for name in COMPONENTS]
    assert info.needs_labels and any(c.needs_labels for c in components)  # ZiCo
    assert info.needs_grad and info.higher_is_better
    assert not info.population and not info.data_free
    assert set(COMPONENTS) == {"meco", "zico", *(f"az_{c}" for c in AZ)}


def test_score_is_the_formula_on_the_stored_statistics(digits_batch: Batch) -> None:
    model = build("nasbench201_mini", ARCH, "digits", seed=3)
    scores = score_many([*COMPONENTS, "zcp_ensemble"], model, digits_batch, seed=3, **MINI)
    stored = json.loads(REFERENCE_PATH.read_text())["pairs"]["nasbench201_mini/digits"]["stats"]
    expected = 0.0
    for name in COMPONENTS:
        value = scores[name]
        if name == "az_complexity":
            value = math.log(value)
        z = (value - stored[name]["location"]) / stored[name]["scale"]
        expected += float(stats.cauchy.logcdf(z))
    assert scores["zcp_ensemble"] == pytest.approx(expected, rel=1e-12)
    alone = score("zcp_ensemble", model, digits_batch, seed=3, **MINI)
    assert alone == scores["zcp_ensemble"]  # shared (cached) components change nothing


def test_every_space_task_pair_has_a_reference() -> None:
    """The evaluator can score ``zcp_ensemble`` on every pair it offers, with K >= 10 archs."""
    pairs = json.loads(REFERENCE_PATH.read_text())["pairs"]
    for space in list_spaces():
        for task in space.tasks:
            key = f"{space.name}/{task}"
            assert key in pairs, f"no zcp_ensemble reference for {key}"
            assert pairs[key]["k"] >= 10 and set(pairs[key]["stats"]) == set(COMPONENTS)
            stats = pair_stats(space.name, task)
            assert all(math.isfinite(s.location) and s.scale >= 0 for s in stats.values())


def test_log_cauchy_cdf_matches_scipy_in_both_tails() -> None:
    z = np.concatenate([-np.logspace(300, -12, 60), [0.0], np.logspace(-12, 300, 60)])
    ours = np.array([log_cauchy_cdf(v) for v in z])
    assert ours == pytest.approx(stats.cauchy.logcdf(z), rel=1e-12, abs=0)
    assert np.all(np.diff(ours) > 0)  # strictly increasing, no saturation at 1e300
    assert log_cauchy_cdf(-math.inf) == -math.inf and math.isnan(log_cauchy_cdf(math.nan))


def test_combiner_is_strictly_increasing_in_every_component() -> None:
    rng = np.random.default_rng(0)
    ref = {n: ComponentStats(float(rng.normal()), float(rng.uniform(0.1, 3))) for n in COMPONENTS}
    ref["az_complexity"] = ComponentStats(12.0, 0.3)  # log FLOPs
    base = {n: ref[n].location for n in COMPONENTS}
    base["az_complexity"] = math.exp(12.0)
    for name in COMPONENTS:
        steps = np.sort(np.concatenate([rng.normal(0, 5, 50), [-1e8, -1e4, 1e4, 1e8]]))
        if name == "az_complexity":
            steps = np.exp(12.0 + np.sort(rng.normal(0, 3, 50)))
        else:
            steps = base[name] + steps
        totals = [combine({**base, name: float(v)}, ref) for v in steps]
        assert np.all(np.diff(totals) > 0), name
    constant = {**ref, "meco": ComponentStats(1.0, 0.0)}  # scale 0: left out
    assert combine({**base, "meco": -5.0}, constant) == combine({**base, "meco": 9.0}, constant)


def test_reference_statistics_rules() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, NONFINITE_SCORE]
    got = reference_stats(values, "meco")
    q25, q75 = np.percentile([1, 2, 3, 4, 5], [25, 75])
    assert (got["location"], got["scale"], got["scale_rule"]) == (3.0, (q75 - q25) / 2, "iqr")
    assert (got["n_defined"], got["n_undefined"]) == (5, 1)
    tied = reference_stats([2.0] * 8 + [4.0, 6.0], "zico")
    assert (tied["location"], tied["scale_rule"]) == (2.0, "mean_abs_deviation")
    assert tied["scale"] == pytest.approx(0.6)
    assert reference_stats([7.0] * 5, "zico")["scale"] == 0.0
    flops = reference_stats([math.e, math.e**3, math.e**5], "az_complexity")
    assert flops["location"] == pytest.approx(3.0) and flops["transform"] == "log"


def test_deterministic_bitwise(digits_batch: Batch) -> None:
    values = [
        score("zcp_ensemble", build("nasbench201_mini", ARCH, "digits", seed=5), digits_batch,
              seed=5, **MINI)
        for _ in range(2)
    ]  # fmt: skip
    assert values[0] == values[1] and math.isfinite(values[0])


def test_disconnected_nb201_cell_is_finite_and_ranked_low() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=gen), torch.arange(8) % 10
    pair = {"space": "nb201", "task": "cifar10"}  # aliases resolve
    dead = (2, 2, 1, 2, 1, 1)  # every edge into the output node is `none`
    scores = [
        score("zcp_ensemble", build("nasbench201", arch, "cifar10"), x, y, 10, **pair)
        for arch in (dead, (2, 2, 3, 2, 3, 2))
    ]
    assert all(math.isfinite(s) and s > NONFINITE_SCORE for s in scores)
    assert scores[0] < scores[1]


def test_clear_errors(digits_batch: Batch, tmp_path: Path) -> None:
    model = build("nasbench201_mini", ARCH, "digits")
    with pytest.raises(ZcpError, match="space and task"):
        score("zcp_ensemble", model, digits_batch)
    reference = json.loads(REFERENCE_PATH.read_text())
    reference["pairs"] = {"nasbench201_mini/digits": reference["pairs"]["nasbench201_mini/digits"]}
    (tmp_path / "mini.json").write_text(json.dumps(reference))
    with pytest.raises(UnknownName) as missing:
        pair_stats("nb201", "cifar100", tmp_path / "mini.json")
    message = str(missing.value)
    assert "nasbench201/cifar100" in message and "available: nasbench201_mini/digits" in message
    assert "build_ensemble_reference.py --pairs nasbench201/cifar100" in message
    reference["components"] = reference["components"][:-1]
    (tmp_path / "stale.json").write_text(json.dumps(reference))
    with pytest.raises(DataError, match="rebuild"):
        pair_stats("nasbench201_mini", "digits", tmp_path / "stale.json")


@pytest.mark.slow
def test_build_script_merges_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, cache = tmp_path / "ref.json", tmp_path / "cache"
    kept = json.loads(REFERENCE_PATH.read_text())
    kept["pairs"] = {"nasbench201/cifar10": kept["pairs"]["nasbench201/cifar10"]}
    out.write_text(json.dumps(kept))
    monkeypatch.syspath_prepend(BENCHMARKS)  # spawned workers import the script by name too
    script = importlib.import_module("build_ensemble_reference")

    def build_reference(k: int) -> list[dict]:
        args = ["--pairs", "nb201-mini/digits", "--k", str(k), "--workers", "1"]
        assert script.main([*args, "--out", str(out), "--cache-dir", str(cache)]) == 0
        (rows,) = cache.glob("*.jsonl")
        return [json.loads(line) for line in rows.read_text().splitlines()]

    first = build_reference(3)
    assert build_reference(2) == first  # everything cached: nothing is scored again
    (rows,) = cache.glob("*.jsonl")
    rows.write_text("".join(json.dumps(row) + "\n" for row in first[:2]))  # interrupted
    again = build_reference(3)  # resumes: only the missing row is scored, to the same values
    assert again[:2] == first[:2] and again[2]["scores"] == first[2]["scores"]
    data = json.loads(out.read_text())
    assert set(data["pairs"]) == {"nasbench201/cifar10", "nasbench201_mini/digits"}
    entry = data["pairs"]["nasbench201_mini/digits"]
    assert entry["k"] == 3 and entry["batch"]["size"] == 64
    for name in COMPONENTS:
        assert entry["stats"][name] == reference_stats([r["scores"][name] for r in again], name)


@pytest.mark.slow
def test_evaluator_builtin_path(tmp_path: Path) -> None:
    out = tmp_path / "res"
    done = CliRunner().invoke(
        cli, ["evaluate", "--proxy", "zcp_ensemble", "--n", "4", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert pd.read_csv(out / "results.csv")["status"].tolist() == ["ok"]
    archs = json.loads((out / "results.json").read_text())["tasks"][0]["archs"]
    default = embedded_task()  # no --benchmark: the embedded default's one task
    where = {"space": default.space, "task": default.task}
    batch = batch_for_task(get_space(default.space).task(default.task), size=64, seed=0)
    for rec in archs[:2]:
        model = build(default.space, rec["arch"], default.task, seed=rec["seed"])
        assert rec["score"] == score("zcp_ensemble", model, batch, seed=rec["seed"], **where)
