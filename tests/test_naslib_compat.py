"""The worker's NASLib stand-in (``evaluator/compat/naslib``), imported as the worker imports it.

Run in a subprocess with the compat directory on ``sys.path`` (never in the test process: the
evaluator process must not see it, ``test_compat_naslib_is_never_importable_by_the_evaluator``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / "evaluator" / "compat"

CHECK = r"""
import math
import torch
from torch.utils.data import DataLoader, TensorDataset

import zcproxies
from zcproxies.proxies import score
from zcproxies.proxies.classic import NSZ_PROXIES
from zcproxies.spaces.naslib_graph import naslib_graph

from naslib.predictors import Predictor, ZeroCost
from naslib.predictors.pruners import predictive
from naslib.predictors.pruners.measures import available_measures, calc_measure, measure
from naslib.predictors.utils.pruners import predictive as develop_predictive
from naslib.predictors.utils.pruners.measures import available_measures as develop_measures
from naslib.search_spaces import NasBench201SearchSpace
from naslib.search_spaces.core.graph import Graph
from naslib.search_spaces.nasbench201 import conversions
from naslib.utils import AttrDict, get_train_val_loaders, set_seed, setup_logger

space = zcproxies.get_space("nasbench201_mini")
task = space.task("digits")
arch = (2, 3, 0, 2, 4, 2)
graph = naslib_graph(space.name, arch, task, space.build(arch, task, seed=4, flavor="naslib"))
assert isinstance(graph, Graph) and isinstance(graph, NasBench201SearchSpace)
gen = torch.Generator().manual_seed(0)
x, y = torch.randn(48, 1, 8, 8, generator=gen), torch.randperm(48, generator=gen) % 10
loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)

# ZeroCost(name) is the built-in proxy on the loader's first batch, for every NSZ name
torch.manual_seed(11)  # the evaluator seeds each architecture; the proxies' seed follows it
for name in NSZ_PROXIES:
    ours = ZeroCost(method_type=name).query(graph, dataloader=loader)
    reference = score(name, space.build(arch, task, seed=4), x[:16], y[:16], 10, seed=11,
                      space=space.name, task=task.name)
    assert math.isclose(ours, reference, rel_tol=1e-9, abs_tol=1e-12), (name, ours, reference)
assert set(NSZ_PROXIES) <= set(available_measures) and develop_measures is available_measures

# both module paths, and NASLib's data rules: two batches, and per-class 'grasp' sampling
info = ("random", 2, graph.num_classes)
a = predictive.find_measures(graph, loader, info, "cpu", graph.get_loss_fn(), ["synflow"])
b = develop_predictive.find_measures(graph, loader, info, "cpu", graph.get_loss_fn(), ["synflow"])
assert a == b
assert predictive.find_measures(graph, loader, ("grasp", 1, 10), "cpu",
                                graph.get_loss_fn(), ["params"]) > 0

# a submission's own measure, BatchNorm disabled on the copy NASLib computes it on
@measure("bn_free_output", bn=False)
def bn_free_output(net, inputs, targets, loss_fn=None, split_data=1):
    assert all(m.forward(torch.ones(1)) is not None for m in net.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    return [net(inputs).abs().sum()]

value = predictive.find_measures(graph, loader, ("random", 1, 10), "cpu",
                                 graph.get_loss_fn(), ["bn_free_output"])
assert value > 0 and "bn_free_output" in available_measures
try:
    measure("snip")(bn_free_output)
    raise AssertionError("a duplicate measure was accepted")
except KeyError as exc:
    assert "Duplicated measure" in str(exc)
assert isinstance(calc_measure("jacov", graph, "cpu", x[:16], y[:16]), float)

# conversions, helpers and the base class
text = conversions.convert_naslib_to_str(graph)
assert text == ("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
                "+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|")
assert conversions.convert_str_to_op_indices(text) == arch
assert conversions.convert_op_indices_to_str(list(arch)) == text
conversions.convert_op_indices_to_naslib(list(arch), graph)
set_seed(3); first = torch.rand(1)
set_seed(3); assert torch.equal(first, torch.rand(1))
config = AttrDict({"seed": 1}); config.batch_size = 8
assert config["batch_size"] == 8 and config.seed == 1
try:
    get_train_val_loaders(config)
    raise AssertionError("get_train_val_loaders did not refuse")
except RuntimeError as exc:
    assert "dataloader" in str(exc)
setup_logger("/nonexistent/dir/log.log").info("stderr only")
predictor = Predictor()
predictor.set_ss_type(graph.get_type())
assert predictor.ss_type == "nasbench201" and predictor.query(graph, loader) is None
print("OK")
"""


def test_naslib_stand_in_is_backed_by_zcp() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(COMPAT)])}
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("OK"), out.stderr[-3000:]
