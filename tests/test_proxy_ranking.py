"""benchmarks/proxy_ranking.py: metrics, strata, published-table parsing, CSV resume, end to end."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_scripts import benchmark_script
from scipy.stats import kendalltau


@pytest.fixture(scope="module")
def pr() -> Iterator[ModuleType]:
    with benchmark_script("proxy_ranking") as module:
        yield module


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ((2, 2, 2, 2, 2, 2), 6),  # every edge a conv on some input-output path
        ((1, 1, 1, 1, 1, 1), 0),
        ((2, 1, 1, 1, 1, 1), 0),  # conv 1->2, but node 2 feeds nothing
        ((2, 1, 1, 1, 3, 1), 2),  # conv 1->2 then conv1x1 2->4
        ((1, 1, 2, 1, 1, 1), 1),  # the direct conv 1->4
        ((1, 2, 1, 2, 1, 2), 2),  # 1->3->4; conv 2->3 reads the unreachable node 2
        ((0, 4, 3, 2, 1, 1), 1),  # conv1x1 1->4; conv 2->3 feeds node 3, which feeds nothing
    ],
)
def test_live_convs(pr: ModuleType, arch: tuple[int, ...], expected: int) -> None:
    assert pr.live_convs(arch) == expected


def test_ranking_skips_missing_scores(pr: ModuleType) -> None:
    # pairs (1,1) (2,3) (3,2): 2 concordant, 1 discordant -> tau 1/3; Spearman 1 - 6*2/(3*8)
    result = pr.ranking([1.0, 2.0, 3.0, math.nan], [1.0, 3.0, 2.0, 5.0])
    assert result["n"] == 3
    assert result["kt"] == pytest.approx(1 / 3)
    assert result["spearman"] == pytest.approx(0.5)
    empty = pr.ranking([math.nan, math.nan], [1.0, 2.0])
    assert empty["n"] == 0 and math.isnan(empty["kt"])
    one = pr.ranking([1.0, math.nan], [1.0, 2.0])
    assert one["n"] == 1 and math.isnan(one["spearman"])
    assert pr.ranking([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["kt"] == 0.0  # constant: 0


def test_strata_kt_weighted_by_size(pr: ModuleType) -> None:
    # group 0 (3 archs) concordant: 1; group 1 (4 archs) one swapped pair: (5 - 1) / 6;
    # group 2 has 2 archs (< min_size 3) and a NaN score that is dropped first
    scores = [1, 2, 3, 1, 2, 3, 4, 1, 2, math.nan]
    accuracy = [1, 2, 3, 1, 2, 4, 3, 2, 1, 5]
    groups = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    result = pr.strata_kt(scores, accuracy, groups, min_size=3)
    assert result["n"] == 7
    assert [s["group"] for s in result["strata"]] == [0, 1]
    assert result["kt"] == pytest.approx((3 * 1.0 + 4 * (4 / 6)) / 7)
    assert math.isnan(pr.strata_kt(scores, accuracy, groups, min_size=5)["kt"])


def test_parse_published(pr: ModuleType) -> None:
    text = """Intro.
NAS-Bench-201 numbers (VKDNW, CVPR 2025):

| proxy | CIFAR-10 | Other | ImageNet16-120 |
|---|---|---|---|
| FLOPs | .623/.799 | .1/.2 | .545/.718 |
| unknown | .5/.5 | .5/.5 | .5/.5 |
| AZ-NAS | .712/.892 | n/a | -.010/.200 |
After the table.
| NASWOT | .9/.9 | .9/.9 | .9/.9 |
"""
    assert pr.parse_published(text) == {
        "flops": {"cifar10": (0.623, 0.799), "ImageNet16-120": (0.545, 0.718)},
        "aznas_population": {"cifar10": (0.712, 0.892), "ImageNet16-120": (-0.01, 0.2)},
    }
    assert pr.parse_published("no marker here") == {}


def test_interleave_round_robin(pr: ModuleType) -> None:
    orders = {"a": ["a1", "a2", "a3"], "b": ["b1"], "c": ["c1", "c2"]}
    assert list(pr.interleave(orders)) == [
        ("a", "a1"),
        ("b", "b1"),
        ("c", "c1"),
        ("a", "a2"),
        ("c", "c2"),
        ("a", "a3"),
    ]


def test_resume_cuts_a_partial_row(pr: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    columns = ["arch", "p", "seconds", "device"]
    for key in ("k1", "k2"):
        pr.append_row(path, columns, {"arch": key, "p": 0.5, "seconds": 1.0, "device": "cpu"})
    with open(path, "a") as f:
        f.write('"k3",0.2')  # killed mid-row
    assert pr.done_keys(path, columns) == {"k1", "k2"}
    assert path.read_text().endswith("cpu\n")
    pr.append_row(path, columns, {"arch": "k3", "seconds": 2.0, "device": "cpu"})  # p failed
    with open(path, newline="") as f:
        assert list(csv.reader(f))[-1] == ["k3", "", "2.0", "cpu"]
    assert pr.done_keys(path, columns, complete_only=True) == {"k1", "k2"}
    with pytest.raises(SystemExit, match="columns"):
        pr.done_keys(path, ["arch", "q", "seconds", "device"])


@pytest.mark.shared
def test_arch_order_is_fixed_and_shared_by_full_tasks(pr: ModuleType, shared_dir: Path) -> None:
    order = pr.arch_order("nb201-cifar10", seed=0)
    assert sorted(order) == sorted(pr.accuracy_table("nb201-cifar10").index)
    assert order == pr.arch_order("nb201-cifar10", seed=0) != pr.arch_order("nb201-cifar10", 1)
    full = pr.arch_order("nb201full-cifar10", seed=0, full_sample=50)
    assert len(set(full)) == 50
    assert full == pr.arch_order("nb201full-ImageNet16-120", seed=0, full_sample=50)


@pytest.mark.shared
def test_score_and_report_end_to_end(pr: ModuleType, shared_dir: Path, tmp_path: Path) -> None:
    from zcproxies import build, get_space
    from zcproxies.data import batch_for_task
    from zcproxies.proxies import score_many

    out = tmp_path / "ranking"
    base = ["score", "--tasks", "nb201-cifar10", "--proxies", "params,l2_norm,synflow"]
    base += ["--out-dir", str(out)]
    pr.main([*base, "--n", "8", "--time-limit", "0"])  # the limit has passed: nothing scored
    assert not (out / "nb201-cifar10.csv").exists()
    pr.main([*base, "--n", "5"])  # in this process
    pr.main([*base, "--n", "8", "--workers", "2"])  # a spawn pool resumes: the 3 missing archs
    csv_path = out / "nb201-cifar10.csv"
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    order = pr.arch_order("nb201-cifar10", seed=0)[:8]
    assert sorted(r["arch"] for r in rows) == sorted(order)
    assert len(rows) == 8

    # a row equals a direct score_many on the same batch, model seed and proxy seed
    space = get_space("nasbench201")
    batch = batch_for_task(space.task("cifar10"), 64, seed=0)
    model = build(space, space.decode(rows[0]["arch"]), "cifar10", seed=0)
    direct = score_many(["params", "l2_norm", "synflow"], model, batch, seed=0)
    assert {k: float(rows[0][k]) for k in direct} == direct

    report, md = tmp_path / "r.json", tmp_path / "r.md"
    pr.main(["report", "--out-dir", str(out), "--json", str(report), "--markdown", str(md)])
    data = json.loads(report.read_text())
    entry = data["tasks"]["nb201-cifar10"]
    accuracy = pr.accuracy_table("nb201-cifar10")
    keys = [r["arch"] for r in rows]
    synflow = entry["proxies"]["synflow"]
    expected = kendalltau([float(r["synflow"]) for r in rows], accuracy.loc[keys, "val_accuracy"])
    assert synflow["kt"] == pytest.approx(expected.statistic, abs=1e-4)
    nsz = kendalltau(accuracy.loc[keys, "nsz:synflow"], accuracy.loc[keys, "val_accuracy"])
    assert synflow["nsz"]["kt"] == pytest.approx(nsz.statistic, abs=1e-4)
    assert synflow["n"] == 8 and entry["archs"] == 8
    assert "aznas_population" not in entry["proxies"]  # its components were not scored
    assert set(data["summary"]) == {"params", "l2_norm", "synflow"}
    assert md.read_text().startswith("# Ranking quality") and "GENERATED FILE" in md.read_text()
