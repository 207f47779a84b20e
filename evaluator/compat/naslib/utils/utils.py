"""``naslib.utils.utils``: NASLib's small helpers, with NASLib's behaviour."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch


def get_project_root() -> Path:
    """The root of the ``naslib`` package (here: the evaluator's stand-in)."""
    return Path(__file__).resolve().parent.parent


def iter_flatten(iterable: Iterable[Any]) -> Iterator[Any]:
    """Flatten nested lists and tuples."""
    for item in iterable:
        if isinstance(item, (list, tuple)):
            yield from iter_flatten(item)
        else:
            yield item


def set_seed(seed: int) -> None:
    """Seed numpy, Python and torch (and make cuDNN deterministic), as NASLib's ``set_seed``."""
    np.random.seed(seed)
    random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


class AttrDict(dict):
    """A dict whose keys are also attributes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__ = self


class AverageMeter:
    """Running average of a value."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.avg = 0.0
        self.sum = 0.0
        self.cnt = 0

    def update(self, val: float, n: int = 1) -> None:
        self.sum += val * n
        self.cnt += n
        self.avg = self.sum / self.cnt


def accuracy(
    output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1,)
) -> list[torch.Tensor]:
    """Top-k accuracies in percent."""
    maxk = max(topk)
    batch_size = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    return [correct[:k].reshape(-1).float().sum(0).mul_(100.0 / batch_size) for k in topk]


def get_train_val_loaders(config: Any) -> None:
    """NASLib downloaded datasets here; the evaluator passes the task's data as ``dataloader``."""
    raise RuntimeError(
        "get_train_val_loaders: the sandbox has no network and no datasets; use the "
        "`dataloader` that query(graph, dataloader=...) receives (the task's images)"
    )
