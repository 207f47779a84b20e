"""On the shared NAS-Bench-Suite-Zero tables, every submission form ranks every task sensibly.

The template (native form, NASWOT), a built-in proxy and a 2022-competition submission written
here are each evaluated on NB201 (CIFAR-10, CIFAR-100, ImageNet16-120), NB101 and NB301, exactly
as ``zcp evaluate`` would (sandboxed worker, one minibatch per task, seeded sample).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy.stats import spearmanr
from test_evaluator import TEMPLATE, arch_rows, run

from evaluator import Limits
from zcproxies.benchdata import BenchmarkTask, import_file

pytestmark = [pytest.mark.shared, pytest.mark.slow]

N_ARCHS = 30
BATCH_SIZE = 8
LIMITS = Limits(task_timeout=120, memory_mb=3072, max_processes=32, max_restarts=1)
NSZ_FILES = ("zc_nasbench201.json", "zc_nasbench101.json", "zc_nasbench301.json")
TASKS = (
    "nasbench201/cifar10",
    "nasbench201/cifar100",
    "nasbench201/ImageNet16-120",
    "nasbench101/cifar10",
    "nasbench301/cifar10",
)

# A 2022 competition submission, in the competition's own form: NASLib's ``l2_norm`` (sum of
# the L2 norms of the parameters); it checks the minibatch the dataloader hands over.
COMPETITION = '''"""NASLib's l2_norm as a 2022 zero-cost competition submission."""

from naslib.predictors.predictor import Predictor
from naslib.search_spaces.core.graph import Graph


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "l2_norm"

    def pre_process(self):
        pass

    def query(self, graph: Graph, dataloader=None) -> float:
        data, labels = next(iter(dataloader))
        assert data.shape[0] == labels.shape[0] == dataloader.batch_size
        return float(sum(p.norm() for p in graph.parameters()))
'''
# The NSZ column of each form's proxy; the template's NASWOT has none in NSZ (its equality with
# the built-in ``nwot`` is tested in test_evaluator.py), so it is held to its floors alone.
REFERENCE = {"template": None, "builtin": "synflow", "competition": "l2_norm"}

# Measured (N_ARCHS=30, seed 0, batch 8, bwrap; Kendall-Tau with the accuracies / Spearman of our
# scores against NASLib's reference values of the same proxy for the same architectures):
#   task              template (NASWOT)  builtin synflow  competition l2_norm
#   NB201 cifar10       .586 / -           .503 / .998      .517 / .931
#   NB201 cifar100      .577 / -           .559 / 1.00      .430 / .903
#   NB201 IN16-120      .453 / -           .614 / .998      .439 / .916
#   NB101 cifar10       .237 / -           .416 / 1.00      .214 / .976
#   NB301 cifar10       .444 / -           .214 / .999      .416 / 1.00
# Floors: about half the measured Kendall-Tau.
FLOORS = {
    "template": {
        "nasbench201/cifar10": 0.3,
        "nasbench201/cifar100": 0.3,
        "nasbench201/ImageNet16-120": 0.2,
        "nasbench101/cifar10": 0.1,
        "nasbench301/cifar10": 0.2,
    },
    "builtin": {
        "nasbench201/cifar10": 0.25,
        "nasbench201/cifar100": 0.25,
        "nasbench201/ImageNet16-120": 0.3,
        "nasbench101/cifar10": 0.2,
        "nasbench301/cifar10": 0.1,
    },
    "competition": {
        "nasbench201/cifar10": 0.25,
        "nasbench201/cifar100": 0.2,
        "nasbench201/ImageNet16-120": 0.2,
        "nasbench101/cifar10": 0.1,
        "nasbench301/cifar10": 0.2,
    },
}
MIN_AGREEMENT = 0.8  # Spearman of our scores against NASLib's for the same architectures


@pytest.fixture(scope="module")
def tasks(shared_dir: Path) -> list[BenchmarkTask]:
    """The five NAS-Bench-Suite-Zero tables, read with the project's importer."""
    tables = [t for f in NSZ_FILES for t in import_file(shared_dir / "nas_bench_suite_zero" / f)]
    assert sorted(f"{t.space}/{t.task}" for t in tables) == sorted(TASKS)
    return tables


def submission(form: str, root: Path) -> str | Path:
    """The submission of ``form``; the competition one is written under ``root`` as an upload
    directory (with its empty ``metadata``)."""
    if form == "template":
        return TEMPLATE
    if form == "builtin":
        return "proxy:" + REFERENCE[form]
    folder = root / "competition_upload"
    folder.mkdir()
    (folder / "submission.py").write_text(COMPETITION)
    (folder / "metadata").write_text("")
    return folder


@pytest.mark.parametrize("form", list(REFERENCE))
def test_every_form_ranks_every_task(form: str, tasks: list[BenchmarkTask], tmp_path: Path) -> None:
    frame, results = run(
        submission(form, tmp_path),
        tasks,
        tmp_path / "out",
        n=N_ARCHS,
        batch_size=BATCH_SIZE,
        limits=LIMITS,
    )
    tables = {f"{t.space}/{t.task}": t for t in tasks}
    assert sorted(f"{row.space}/{row.task}" for row in frame.itertuples()) == sorted(TASKS)
    for index, row in enumerate(frame.itertuples()):
        key = f"{row.space}/{row.task}"
        archs = arch_rows(results, index)
        scores = [a["score"] for a in archs]
        assert row.status == "ok", (key, row.message)
        assert row.n_ok == N_ARCHS, key
        assert all(math.isfinite(s) for s in scores), key
        assert row.kendall_tau > FLOORS[form][key], (key, row.kendall_tau)
        if REFERENCE[form] is not None:
            reference = tables[key].proxies[REFERENCE[form]].to_numpy()[[a["row"] for a in archs]]
            agree = spearmanr(scores, reference).statistic
            assert agree > MIN_AGREEMENT, (key, agree)
