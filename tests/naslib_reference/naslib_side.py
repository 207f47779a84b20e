"""Run under an interpreter with NASLib's automl-conf-competition branch importable (optional
tests, ``tests/test_naslib_reference.py``). Writes one ``torch.save`` file to ``argv[1]``:

* ``graphs``: for each requested architecture, NASLib's evaluated graph (``set_spec``,
  ``prepare_evaluation``, ``parse``, as ``ZeroCostPredictorEvaluator.single_evaluate``): its
  parameter count, its parameters and buffers in registration order, and its output on a fixed
  input in eval mode;
* ``kendalltau``: NASLib's own ``ZeroCostPredictorEvaluator`` on the kit's ``test.json`` with
  the submission directory ``argv[3]``, its test loader replaced by one over the CIFAR-10 test
  images at ``argv[4]`` (``cifar10_test_jpg.tar``; NASLib would download CIFAR-10), with
  NASLib's own test transform, batch size 64, no shuffling.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import torch
from PIL import Image

# NASLib's config parser reads the command line, bound when naslib.utils is first imported
ARGS, sys.argv = sys.argv[1:5], sys.argv[:1]

from naslib.evaluators.zc_evaluator import ZeroCostPredictorEvaluator  # noqa: E402
from naslib.search_spaces import get_search_space  # noqa: E402
from naslib.utils import utils  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def graph_record(space: str, arch: list) -> dict:
    """NASLib's graph of ``arch`` as its evaluator builds it."""
    torch.manual_seed(0)
    graph = get_search_space(space, "cifar10").clone()
    graph.set_spec(arch)
    graph.prepare_evaluation()
    graph.parse()
    tensors = [t.detach().clone() for t in graph.state_dict().values()]
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    graph.eval()
    with torch.no_grad():
        out = graph(x)
    return {
        "params": sum(p.numel() for p in graph.parameters()),
        "tensors": tensors,
        "input": x,
        "output": out,
    }


def cifar10_test_loader(tar_path: str, transform: object) -> torch.utils.data.DataLoader:
    """CIFAR-10's test images in test-set order, through NASLib's transform."""
    images, labels = [], []
    with tarfile.open(tar_path) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name
        )
        for member in members:
            label = CLASSES.index(member.name.split("/")[-2])
            data = tar.extractfile(member).read()
            images.append(transform(Image.open(io.BytesIO(data)).convert("RGB")))
            labels.append(label)
    dataset = torch.utils.data.TensorDataset(torch.stack(images), torch.tensor(labels))
    return torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=False)


def naslib_tau(test_json: str, submission_dir: str, tar_path: str) -> dict:
    """Kendall-Tau NASLib's evaluator reports for the submission on ``test_json``."""
    sys.path.insert(0, submission_dir)
    entry = "submission" if (Path(submission_dir) / "submission.py").exists() else "predictor"
    module = importlib.import_module(entry)
    config = utils.get_config_from_args()
    config.seed, config.test_size, config.test_data_file = 0, 1000, test_json
    config.save = tempfile.mkdtemp()
    utils.set_seed(config.seed)
    _, valid_transform = utils._data_transforms_cifar10(config)
    loader = cifar10_test_loader(tar_path, valid_transform)
    utils.get_train_val_loaders = lambda cfg: (None, None, loader, None, valid_transform)
    evaluator = ZeroCostPredictorEvaluator(module.ZeroCostPredictor(), config=config)
    evaluator.adapt_search_space(get_search_space("nasbench201", "cifar10"), load_labeled=False)
    try:
        results = evaluator.evaluate()
    except Exception as exc:  # what NASLib's evaluator did with this submission
        return {"error": f"{type(exc).__name__}: {exc}"}
    metrics = results[-1]
    if not isinstance(metrics["full_testpred"], list):  # NASLib's compare() failed: all NaN
        return {"error": "NASLib's compare() failed (every metric NaN)"}
    return {
        "kendalltau": float(metrics["kendalltau"]),
        "scores": [float(v) for v in metrics["full_testpred"]],
    }


def main() -> None:
    out, test_json, submission_dir, tar_path = ARGS
    with open(test_json) as handle:
        archs = [row["arch"] for row in json.load(handle)]
    nb301 = [
        [(0, 4), (1, 5), (2, 1), (1, 3), (1, 0), (0, 4), (2, 5), (4, 0)],
        [(0, 0), (1, 3), (1, 5), (0, 2), (0, 2), (2, 1), (3, 1), (1, 4)],
    ]
    graphs = {("nasbench201", tuple(a)): graph_record("nasbench201", a) for a in archs[:5]}
    graphs[("nasbench301", "sample")] = graph_record("nasbench301", nb301)
    evaluation = naslib_tau(test_json, submission_dir, tar_path)
    torch.save({"graphs": graphs, "evaluation": evaluation, "nb301": nb301}, out)
    print(json.dumps({k: v for k, v in evaluation.items() if k != "scores"}))


if __name__ == "__main__":
    main()
