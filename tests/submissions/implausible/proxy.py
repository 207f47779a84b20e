"""Not a proxy: a competitor who reads the answer instead of estimating it (the plausibility
tests; ``tests/test_plausibility.py``).

It recovers the architecture from the network it is given (an NB201 cell keeps its operation
names), then, depending on what the test bundled next to this file:

- ``table.csv`` (``arch,val_accuracy``: a public table of the benchmark): looks it up;
- ``protocol.json`` (the benchmark's published training protocol): trains the architecture
  again with each published seed and returns the mean accuracy, as the benchmark did.
"""

import csv
import json
from pathlib import Path

from zcproxies.data import get_batch
from zcproxies.spaces import get_space
from zcproxies.train import TrainConfig, train_model

HERE = Path(__file__).parent
OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")


def arch_key(model):
    """The NASLib key of an NB201 network: its first cell's operations."""
    cell = next(m for m in model.modules() if hasattr(m, "op_names"))
    return str(tuple(OPS.index(name) for name in cell.op_names))


if (HERE / "table.csv").exists():
    with open(HERE / "table.csv") as handle:
        TABLE = {row["arch"]: float(row["val_accuracy"]) for row in csv.DictReader(handle)}

    def score(model, batch):
        return TABLE[arch_key(model)]

else:
    PROTOCOL = json.loads((HERE / "protocol.json").read_text())
    CONFIG = TrainConfig(**PROTOCOL["train_config"])
    DATA = get_batch("digits", PROTOCOL["fit"] + PROTOCOL["val"], seed=PROTOCOL["split_seed"])
    FIT = (DATA.x[: PROTOCOL["fit"]], DATA.y[: PROTOCOL["fit"]])
    VAL = (DATA.x[PROTOCOL["fit"] :], DATA.y[PROTOCOL["fit"] :])

    def score(model, batch):
        space = get_space(PROTOCOL["space"])
        accuracies = []
        for seed in PROTOCOL["seeds"]:
            net = space.build(arch_key(model), PROTOCOL["task"], seed=seed)
            accuracies.append(train_model(net, FIT, VAL, CONFIG, seed=seed).final_val_accuracy)
        return sum(accuracies) / len(accuracies)
