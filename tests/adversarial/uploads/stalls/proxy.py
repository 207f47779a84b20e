"""Parameter count on the ``digits`` task; on any other task it stalls (to be interrupted)."""

import time

TASK = {}


def setup(task):
    TASK["name"] = task.task


def score(model, batch):
    if TASK["name"] != "digits":
        time.sleep(600)
    return sum(p.numel() for p in model.parameters())
