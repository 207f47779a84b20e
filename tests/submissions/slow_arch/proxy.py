"""Hangs on some architectures: those whose seed (the evaluator seeds torch with it before each
call) is a multiple of 6; scores the others at once. Each hang must cost one architecture
(``--arch-timeout``), not the task."""

import time

import torch


def score(model, batch):
    if torch.initial_seed() % 6 == 0:
        time.sleep(3600)
    return float(sum(p.numel() for p in model.parameters()))
