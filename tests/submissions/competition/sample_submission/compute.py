"""Helper module imported by submission.py (submissions may have several files)."""


def count_parameters(model):
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
