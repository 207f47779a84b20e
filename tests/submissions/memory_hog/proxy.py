"""Scores its first call; then tries to allocate 64 GiB, alternately in Python and torch."""

import torch

CALLS = []


def score(model, batch):
    CALLS.append(1)
    if len(CALLS) == 1:
        return 1.0
    block = bytearray(64 << 30) if len(CALLS) % 2 == 0 else torch.ones(16 << 30)
    return float(len(block))
