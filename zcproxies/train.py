"""A small, deterministic supervised training loop shared by the benchmark builder and AutoDL.

It trains any classifier ``nn.Module`` on in-memory tensors with SGD (Nesterov momentum) and a
cosine schedule, as NAS-Bench-201 did, under an optional wall-clock budget, on the GPU with mixed
precision when one is given and on the CPU otherwise (the same code path).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (documented with every result that uses them)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    label_smoothing: float = 0.0
    eval_batch_size: int = 512
    # NHWC tensors: about 2x faster CPU convolutions at the few channels of small networks
    channels_last: bool = False

    def to_dict(self) -> dict:
        """Plain dict for JSON/HDF5 metadata."""
        return asdict(self)


@dataclass
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float | None
    seconds: float  # cumulative wall time since the start of training


@dataclass
class TrainResult:
    """History and final numbers of a run; ``budget_exhausted`` says it stopped on time."""

    history: list[EpochRecord] = field(default_factory=list)
    budget_exhausted: bool = False

    @property
    def final_val_accuracy(self) -> float | None:
        """Validation accuracy (%) after the last completed epoch."""
        return self.history[-1].val_accuracy if self.history else None

    @property
    def seconds(self) -> float:
        """Wall time of the completed epochs."""
        return self.history[-1].seconds if self.history else 0.0


def _autocast(device: torch.device) -> torch.autocast:
    """Mixed precision on CUDA (float16), a disabled autocast elsewhere."""
    return torch.autocast(
        device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"
    )


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 512, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Logits of ``model`` in eval mode for every row of ``x`` (returned on the CPU, float32)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(x), batch_size):
            with _autocast(device):
                out.append(model(x[start : start + batch_size].to(device)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> float:
    """Top-1 accuracy in percent."""
    logits = predict_logits(model, x, batch_size, device)
    return float((logits.argmax(1) == y).float().mean() * 100)


def train_model(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    config: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
    time_budget: float | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place; returns its per-epoch history.

    Shuffling draws from a ``torch.Generator`` seeded with ``seed`` (the global RNG is not used),
    so a run is reproducible on the CPU. With ``time_budget`` (seconds) training stops after the
    first batch that finds the budget spent; that partial epoch is still evaluated and recorded.
    Each call has its own SGD and cosine schedule over ``config.epochs``.
    """
    device = torch.device(device)
    model.to(device)
    x_train, y_train = train
    if config.channels_last:  # images (N, C, H, W) only; rows indexed from x_train stay NHWC
        model.to(memory_format=torch.channels_last)
        x_train = x_train.contiguous(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = max(1, -(-len(x_train) // config.batch_size))
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.nesterov,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch
    )
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    result = TrainResult()
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for first in range(0, len(order), config.batch_size):
            idx = order[first : first + config.batch_size]
            xb, yb = x_train[idx].to(device), y_train[idx].to(device)
            with _autocast(device):
                logits = model(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if time_budget is not None and time.perf_counter() - start >= time_budget:
                result.budget_exhausted = True
                break
        val_acc = (
            accuracy(model, val[0], val[1], config.eval_batch_size, device)
            if val is not None
            else None
        )
        record = EpochRecord(
            epoch, loss_sum / seen, 100.0 * correct / seen, val_acc, time.perf_counter() - start
        )
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if result.budget_exhausted:
            break
    return result
