"""Returns extreme finite scores in turn: the largest floats of both signs, subnormals, zero."""

VALUES = [1.7e308, -1.7e308, 1e-320, -5e-324, 0.0, 1.0]
CALLS = []


def score(model, batch):
    CALLS.append(1)
    return VALUES[(len(CALLS) - 1) % len(VALUES)]
