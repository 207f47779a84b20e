"""Parameter count, except an endless loop on the third call of the `digits` task."""

TASK = {}
CALLS = []


def setup(task):
    TASK["name"] = task.task


def score(model, batch):
    CALLS.append(1)
    if TASK["name"] == "digits" and len(CALLS) == 3:
        while True:
            pass
    return sum(p.numel() for p in model.parameters())
