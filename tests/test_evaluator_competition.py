"""The competition form's lifecycle, data and messages (issue 13), piece by piece and end to end."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import pytest
import torch
from test_evaluator import LIMITS, arch_rows, make_task, run

from evaluator import check, policy
from evaluator.protocol import BatchInfo, ExceptionInfo, TaskResult
from evaluator.report import data_note, markdown, summary_frame
from evaluator.runner import default_flavor
from evaluator.tasks import as_tasks, select_tasks
from evaluator.worker import competition_loader, submission_frames
from zcproxies.benchdata import embedded_path
from zcproxies.data import Batch
from zcproxies.spaces import get_space


def test_loader_is_a_real_dataloader_starting_with_the_fixed_batch() -> None:
    batch = Batch(torch.randn(8, 1, 8, 8), torch.arange(8) % 10, "digits", "train", 0, "t", 10)
    extra = torch.randn(16, 1, 8, 8), torch.arange(16) % 10
    loader = competition_loader(batch, *extra, get_space("nasbench201_mini").task("digits"))
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert len(loader) == 3 and len(loader.dataset) == 24 and loader.batch_size == 8
    first, again = list(loader), list(loader)
    assert torch.equal(first[0][0], batch.x) and torch.equal(first[0][1], batch.y)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    first[1][0].add_(1.0)  # a submission changing a batch in place does not reach the next loader
    fresh = competition_loader(batch, *extra, get_space("nasbench201_mini").task("digits"))
    assert torch.equal(list(fresh)[1][0], extra[0][:8])


def test_submission_frames_and_messages(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text("def score():\n    raise KeyError('x')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import helper

        try:
            helper.score()
        except KeyError as exc:
            frames = submission_frames(exc, str(tmp_path))
            trace = traceback.format_exc()
    finally:
        sys.path.remove(str(tmp_path))
    assert frames == ("helper.py:2 in score",) and "helper.py" in trace
    outcome = policy.judge_exception(ExceptionInfo("KeyError", "'x'", frames=frames))
    assert outcome.message == "KeyError: 'x' (at helper.py:2 in score)"
    assert submission_frames(KeyError(), "") == ()


def test_task_selection() -> None:
    tasks = as_tasks(None)
    assert select_tasks(tasks, None) == tasks
    assert select_tasks(tasks, ["nb201-mini/shapes"]) == tasks
    with pytest.raises(
        ValueError, match=r"--tasks: unknown task 'nope/x'.*nasbench201_mini/shapes"
    ):
        select_tasks(tasks, ["nope/x"])
    with pytest.raises(ValueError, match="nasbench201/cifar10 not in the benchmark"):
        select_tasks(tasks, ["nb201/cifar10"])


def test_flavor_defaults_and_substitution_notes() -> None:
    assert default_flavor("competition") == "naslib"
    assert default_flavor("native") == default_flavor("builtin") == "benchmark"
    batch = BatchInfo("f", "d", "cifar10", "test", 0, 8, "ImageNet16-120", "", ())
    result = TaskResult(make_task(), [], batch)
    assert data_note(result) == "SUBSTITUTED DATA: cifar10/test stands in for ImageNet16-120"
    frame = summary_frame([result])
    run_info = {
        "submission": {"source": "s", "form": "native"},
        "isolation": {"mode": "none", "detail": ""},
        "n_archs": 0,
        "batch_size": 1,
        "seed": 0,
        "versions": {},
    }
    assert "| SUBSTITUTED DATA: cifar10/test stands in for ImageNet16-120" in markdown(
        frame, run_info
    )


COMPETITION = """
import json
from naslib.predictors.predictor import Predictor


class ZeroCostPredictor(Predictor):
    def __init__(self):
        super().__init__()
        self.method_type = "lifecycle"
        self.calls = []

    def set_ss_type(self, ss_type):
        self.calls.append(("set_ss_type", ss_type))
        super().set_ss_type(ss_type)

    def pre_process(self):
        self.calls.append(("pre_process", self.ss_type))
        with open("config.json") as f:
            self.scale = json.load(f)["scale"]

    def query(self, graph, **kwargs):
        assert self.calls == [("set_ss_type", "nasbench201"), ("pre_process", "nasbench201")]
        loader = kwargs["dataloader"]
        batches = [x for x, _ in loader]
        assert len(batches) == len(loader) > 1 and graph.get_hash() == tuple(graph.op_indices)
        if graph.get_hash()[0] == 0:
            return helper_fails()
        return torch_tensor([self.scale * len(batches)])


def helper_fails():
    raise ValueError("skip-connect first")


def torch_tensor(values):
    import torch

    return torch.tensor(values)
"""


def test_lifecycle_cwd_scores_and_frames_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "submission.py").write_text(COMPETITION)
    (folder / "config.json").write_text('{"scale": 2.0}')
    (folder / "metadata").write_text("")
    _, results = run(folder, [make_task(n=8)], tmp_path / "out", n=8)
    (task,) = results["tasks"]
    assert task["model_flavor"] == "naslib" and results["model_flavor"] == "naslib"
    assert task["batch"]["loader"]["batches"] == 4
    assert "first: arch" in task["message"] and "(at submission.py:" in task["message"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "in helper_fails" in summary and "networks: naslib flavor" in summary
    for arch in arch_rows(results):
        if arch["arch"].startswith("(0,"):
            assert arch["status"] == "error"
            assert "ValueError: skip-connect first (at submission.py:" in arch["message"]
            assert "in helper_fails <- submission.py:" in arch["message"]
        else:
            assert (arch["status"], arch["score"]) == ("ok", 8.0), arch["message"]
            assert arch["message"] == "converted Tensor of shape (1,) to 8.0"


def test_check_on_a_benchmarks_real_spaces(tmp_path: Path) -> None:
    report = check("proxy:params", benchmark=embedded_path(), limits=LIMITS)
    assert report.ok and report.task == "nasbench201_mini/shapes" and report.model_flavor
    ((key, start, per_arch),) = report.timings
    assert key == report.task and start > 0 and per_arch > 0
    assert report.estimate(100) == pytest.approx(start + 100 * per_arch)
    assert "nasbench201_mini/shapes: worker start-up" in report.describe()
