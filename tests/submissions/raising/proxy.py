"""Parameter count, but raises on every fourth call (calls 1, 5, ...: 0-based)."""

CALLS = []


def score(model, batch):
    """Number of parameters; ValueError on calls 1, 5, 9, ..."""
    CALLS.append(1)
    if len(CALLS) % 4 == 2:
        raise ValueError("this proxy is undefined here")
    return sum(p.numel() for p in model.parameters())
