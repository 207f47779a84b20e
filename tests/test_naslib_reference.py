"""Against NASLib itself (optional): skipped unless ``ZCP_NASLIB_PYTHON`` names an interpreter
that imports NASLib's automl-conf-competition branch (installed outside the repository, see
docs/competition.md "Checking against NASLib"), and the shared data is there.

``naslib_reference/naslib_side.py`` runs under that interpreter: NASLib's evaluated graphs
(parameters, tensors, outputs) and NASLib's own ``ZeroCostPredictorEvaluator`` on the kit's
``test.json``. Here zcp's ``naslib`` flavor must hold the same parameters and, given NASLib's
tensors, compute NASLib's outputs; and ``zcp evaluate`` must report NASLib's Kendall-Tau for the
kit's submission (and fail where NASLib's evaluator failed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

import zcproxies
from zcproxies.benchdata import BenchmarkTask, write_benchmark
from zcproxies.measure import count_params

NASLIB_PYTHON = os.environ.get("ZCP_NASLIB_PYTHON", "")
NASLIB_SRC = Path(os.environ.get("ZCP_NASLIB_SRC", "/work/naslib-src"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.shared,
    pytest.mark.skipif(not NASLIB_PYTHON, reason="ZCP_NASLIB_PYTHON (a NASLib interpreter) unset"),
]
HERE = Path(__file__).parent


def naslib_side(tmp: Path, shared: Path, submission: Path) -> dict:
    """Run ``naslib_side.py`` under NASLib's interpreter; its saved results."""
    out = tmp / "naslib.pt"
    test_json = shared / "competition" / "nasbench201" / "cifar10" / "test.json"
    tar = shared / "images" / "cifar10_test_jpg.tar"
    command = [NASLIB_PYTHON, str(HERE / "naslib_reference" / "naslib_side.py")]
    subprocess.run(
        [*command, str(out), str(test_json), str(submission), str(tar)],
        check=True,
        cwd=tmp,
        timeout=1200,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    return torch.load(out, weights_only=False)


def kit_submission(tmp: Path, member: str) -> Path:
    """The kit's submission: ``competition/submission.py`` (+ compute.py, metadata) or the
    content of ``competition/sample_submission.zip``, unchanged."""
    folder = tmp / member.replace(".", "_")
    folder.mkdir()
    kit = NASLIB_SRC / "competition"
    if member.endswith(".zip"):
        with zipfile.ZipFile(kit / member) as archive:
            archive.extractall(folder)
    else:
        for name in ("submission.py", "compute.py", "metadata"):
            shutil.copy(kit / name, folder / name)
    return folder


def zcp_tau(tmp: Path, shared: Path, submission: Path) -> dict:
    """``zcp evaluate`` of ``submission`` on the kit's test.json: results.json's task."""
    rows = json.loads((shared / "competition/nasbench201/cifar10/test.json").read_text())
    table = BenchmarkTask(
        "nasbench201",
        "cifar10",
        pd.DataFrame(
            {
                "arch": [str(tuple(r["arch"])) for r in rows],
                "val_accuracy": [r["accuracy"] for r in rows],
            }
        ),
        source="AutoML-Conf 2022 competition test.json",
    )
    bench = write_benchmark(tmp / f"{submission.name}.h5", [table])
    out = tmp / f"out_{submission.name}"
    zcp = [sys.executable, "-m", "zcproxies.cli", "evaluate", str(submission)]
    subprocess.run(
        [*zcp, "--benchmark", str(bench), "--n", str(len(rows)), "--out", str(out)],
        check=False,
        timeout=1200,
        capture_output=True,
    )
    return json.loads((out / "results.json").read_text())["tasks"][0]


@pytest.mark.parametrize("member", ["submission.py", "sample_submission.zip"])
def test_kit_submissions_as_naslib_scored_them(
    member: str, tmp_path: Path, shared_dir: Path
) -> None:
    submission = kit_submission(tmp_path, member)
    reference = naslib_side(tmp_path, shared_dir, submission)
    task = zcp_tau(tmp_path, shared_dir, submission)
    evaluation = reference["evaluation"]
    if "error" in evaluation:  # the zip's query(xtest, info) refuses NASLib's dataloader=
        assert "dataloader" in evaluation["error"]
        assert task["status"] == "error"
        assert all("dataloader" in a["message"] for a in task["archs"])
    else:
        assert task["status"] == "ok"
        assert task["metrics"]["kendall_tau"] == pytest.approx(evaluation["kendalltau"], abs=1e-9)
        assert [a["score"] for a in task["archs"]] == evaluation["scores"]
    # NASLib's graphs: parameter counts, and its tensors give its outputs in zcp's network
    for (space, arch), graph in reference["graphs"].items():
        key = reference["nb301"] if arch == "sample" else arch
        ours = zcproxies.build(space, key, "cifar10", flavor="naslib")
        assert count_params(ours) == graph["params"], (space, arch)
        if space == "nasbench201":  # registration orders agree: load NASLib's tensors in order
            state = dict(zip(ours.state_dict(), graph["tensors"], strict=True))
            ours.load_state_dict(state)
            ours.eval()
            with torch.no_grad():
                torch.testing.assert_close(ours(graph["input"]), graph["output"])
