"""benchmarks/build_embedded_benchmark.py's generated docs: the pilot, aims and result tables of
benchmark_data/README.md and the README's sentence on the default, from the results files."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from types import ModuleType

import pytest
from benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def build() -> Iterator[ModuleType]:
    with benchmark_script("build_embedded_benchmark") as module:
        yield module


def test_committed_readmes_are_what_the_results_generate(build: ModuleType) -> None:
    """Rerun `build_embedded_benchmark.py --docs` after changing a result file."""
    summary = build.read_summary(build.emb.embedded_path().with_suffix(".json"))
    readme, main_readme = build.render_docs(
        build.read_results(), summary, build.README.read_text(), build.MAIN_README.read_text()
    )
    assert readme == build.README.read_text()
    assert main_readme == build.MAIN_README.read_text()


def fake_summary(build: ModuleType) -> dict:
    """A summary as ``build.summarize`` writes it (plus ``aims``), from the kept pilot row."""
    (row,) = [r for k, r in build.read_results().items() if k.startswith(build.kept_pilot())]
    spread = {"min": 10.0, "p10": 40.0, "median": 88.0, "p90": 95.0, "max": 97.5}
    return {
        "num_archs": 1000,
        "distinct_isomorphism_classes": 1000,
        "seeds": [0, 1],
        "aims": {**copy.deepcopy(row), "nb201_kendall_tau": 0.6123, "seed_kendall_tau": 0.81},
        "noise_ceiling": {
            "val_accuracy_seed_kendall_tau": 0.81,
            "test_accuracy_seed_kendall_tau": 0.79,
        },
        "val_vs_test_kendall_tau": 0.9,
        "val_vs_size_kendall_tau": {"params": 0.4, "flops": 0.45},
        "val_accuracy": spread,
        "test_accuracy": spread,
        "time": {
            "runs": 2000,
            "cpu_seconds_total": 12000.0,
            "cpu_seconds_per_run": 6.0,
            "train_wall_seconds_total": 30000.0,
        },
        "sha256": "ab" * 32,
    }


def test_docs_from_a_build_summary(build: ModuleType) -> None:
    summary = fake_summary(build)
    results = build.read_results()
    readme, main_readme = build.render_docs(
        results, summary, build.README.read_text(), build.MAIN_README.read_text()
    )
    assert "pending" not in readme.lower()
    aims = readme.split("<!-- begin aims -->")[1].split("<!-- end aims -->")[0]
    assert "kept protocol, built (1,000 classes x 2 seeds)" in aims
    assert "| >= 0.6 | 0.746 (met) | 0.612 (met) |" in aims
    assert "| >= 0.8 | 0.694 (not met) | 0.810 (met) |" in aims
    pilot = readme.split("<!-- begin pilot -->")[1].split("<!-- end pilot -->")[0]
    for key in results:  # every protocol piloted has its row
        assert (
            f"| {key.partition('@')[0]} |" in pilot
            or f"**{key.partition('@')[0]} (kept)**" in pilot
        )
    assert "(kept), full build** | as kept | 1,000 | 88.0 | 40.0 - 95.0 | 0.612 | 0.810 |" in pilot
    result = readme.split("<!-- begin result -->")[1].split("<!-- end result -->")[0]
    assert "| seed-vs-seed Kendall-Tau, val / test accuracy | 0.810 / 0.790 |" in result
    assert f"`{'ab' * 32}`" in result and "| `meco` |" in result
    sentence = main_readme.split("<!-- begin embedded-figures -->")[1].split("<!-- end")[0]
    assert "1,000 isomorphism classes x 2 seeds" in sentence and "NB201 CIFAR-10" in sentence
    assert "0.61, seed-vs-seed 0.81" in sentence
    again = build.render_docs(results, summary, readme, main_readme)
    assert again == (readme, main_readme)  # idempotent: the markers stay, the bodies are replaced


def test_fill_needs_its_markers(build: ModuleType) -> None:
    assert build.fill("a <!-- begin x -->old<!-- end x --> b", "x", "new") == (
        "a <!-- begin x -->new<!-- end x --> b"
    )
    assert build.fill("<!-- begin x -->\nold\nrows\n<!-- end x -->", "x", "t") == (
        "<!-- begin x -->\nt\n<!-- end x -->"
    )
    with pytest.raises(SystemExit, match="no <!-- begin y -->"):
        build.fill("text", "y", "t")
