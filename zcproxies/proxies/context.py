"""The per-architecture scoring context handed to every proxy function.

A context holds the model as built (never modified: proxies that change weights or modes work on
``ctx.clone()``), the minibatch, and a seed. Quantities several proxies need are computed once per
context and cached, so scoring a set of proxies through one context shares them and gives
bit-identical numbers to scoring each proxy through its own fresh context:

``forward_pass()``
    ONE train-mode forward of one clone on ``x`` (as a leaf that requires grad), its graph kept.
    Forward hooks record every Conv2d/Linear output (for fisher) and the sign code of every ReLU
    input (for nwot) during that same forward.
``ce_pass()``
    One loss backward on that graph: dL/dW of every Conv2d/Linear weight (grad_norm, snip, plain,
    and grasp's gradient g) and dL/d(layer output), which gives fisher without a second pass.
``jacobian()``
    One backward of sum(outputs) to the input on the same graph (jacov, epe_nas).
``relu_kernel()``
    NASWOT's kernel K from the ReLU codes recorded by the forward (nwot), by popcount.

Every backward retains the graph and reads it without changing it, so the results do not depend
on which pass ran first. Any randomness inside the model (dropout) draws from a forked RNG seeded
from ``seed``; the global RNG state is never touched.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zcproxies.hooks import forward_hooks

NONFINITE_SCORE = -1e8  # NAS-Bench-Suite-Zero's replacement for NaN / inf scores

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def finite_score(value: float | torch.Tensor) -> float:
    """``value`` as a Python float, or ``NONFINITE_SCORE`` (-1e8) when it is NaN or infinite.

    The single degenerate-case rule of zcp, taken from NAS-Bench-Suite-Zero so that scores stay
    comparable with its tables: a proxy that is undefined for an architecture ranks it last.
    """
    number = float(value)
    return number if math.isfinite(number) else NONFINITE_SCORE


def weight_layers(model: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear modules of ``model`` in ``modules()`` order (each instance once).

    These are the only layers NASLib's per-weight proxies sum over; biases, BatchNorm and other
    layer types (ConvTranspose2d, Conv1d, ...) are ignored, as in the reference.
    """
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def is_relu(module: nn.Module) -> bool:
    """True for PyTorch's own ReLU-family modules (ReLU, ReLU6, LeakyReLU, PReLU, RReLU).

    NASLib hooked every module whose type name contains ``ReLU`` except its own composite ops
    (e.g. ``ReLUConvBN``); requiring a ``torch.nn`` class is the same rule for zcp's spaces.
    Functional ``F.relu`` calls are invisible to hooks, as in the reference.
    """
    kind = type(module)
    return "ReLU" in kind.__name__ and kind.__module__.startswith("torch.nn")


@dataclass(frozen=True)
class ForwardPass:
    """The shared train-mode forward of one clone, with its graph and what its hooks recorded."""

    model: nn.Module  # the clone (train mode); its BN running statistics have moved
    x: torch.Tensor  # the input as a leaf that requires grad
    output: torch.Tensor  # the network's output, graph retained
    layers: list[nn.Module]  # weight_layers(model)
    layer_outputs: list[list[torch.Tensor]]  # per layer, its output at each call (usually one)
    relu_codes: list[tuple[torch.Tensor, int]]  # per distinct ReLU input: (N, D) input > 0,
    # and how many ReLU calls read that same tensor


@dataclass(frozen=True)
class GradPass:
    """The loss backward of the shared forward: what grad_norm, snip, plain and fisher read."""

    loss: torch.Tensor  # graph retained (grasp differentiates it again)
    weights: list[torch.Tensor]  # weight of each layer of ``ForwardPass.layers``
    grads: list[torch.Tensor]  # dL/dW per layer (zeros where W does not reach the loss)
    fisher: list[torch.Tensor]  # per layer, per output channel: 0.5 * mean_n (sum act*grad)^2


@dataclass
class ProxyContext:
    """Model + minibatch + seed for one architecture, with a cache of shared computations."""

    model: nn.Module
    x: torch.Tensor  # (N, C, H, W) float32 input batch
    y: torch.Tensor  # (N,) int64 labels (ignored by label-free proxies)
    num_classes: int
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)
    loss_fn: LossFn = F.cross_entropy  # the task's loss (NASLib: graph.get_loss_fn())
    space: str | None = None  # the model's search space, for proxies normalised per space/task
    task: str | None = None  # the model's task in that space

    def clone(self) -> nn.Module:
        """A deep copy of the model in train mode, for proxies that modify weights or modes."""
        model = copy.deepcopy(self.model)
        model.train()
        return model

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``cache[key]``, computing and storing it first if absent."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @contextlib.contextmanager
    def seeded_rng(self) -> Iterator[None]:
        """Run a block with torch's RNG forked and seeded from ``seed`` (dropout etc.).

        The caller's global RNG state (CPU, and the input's CUDA device) is restored afterwards.
        """
        devices = [self.x.device] if self.x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            yield

    # ---- shared passes ---------------------------------------------------------------------
    def forward_pass(self) -> ForwardPass:
        """The cached shared forward (see the module docstring)."""
        return self.cached("forward", self._forward)

    def _forward(self) -> ForwardPass:
        model = self.clone()
        layers = weight_layers(model)
        layer_outputs: list[list[torch.Tensor]] = [[] for _ in layers]
        relu_inputs: dict[int, list[Any]] = {}  # id(input) -> [input, codes, calls]

        def record_layer(index: int) -> Callable[..., None]:
            def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
                layer_outputs[index].append(output)

            return hook

        def record_relu(module: nn.Module, inputs: Any, output: Any) -> None:
            entry = relu_inputs.get(id(inputs[0]))  # NB201: edges leaving one node share it
            if entry is None:
                relu_inputs[id(inputs[0])] = [inputs[0], inputs[0].detach().flatten(1) > 0, 1]
            else:
                entry[2] += 1

        hooks = [(layer, record_layer(i)) for i, layer in enumerate(layers)]
        hooks += [(m, record_relu) for m in model.modules() if is_relu(m)]
        x = self.x.detach().requires_grad_(True)
        with forward_hooks(hooks), self.seeded_rng():
            output = model(x)
        relu_codes = [(codes, calls) for _, codes, calls in relu_inputs.values()]
        return ForwardPass(model, x, output, layers, layer_outputs, relu_codes)

    def ce_pass(self) -> GradPass:
        """The cached loss backward of the shared forward (grad_norm/snip/plain/fisher/grasp)."""
        return self.cached("ce", self._ce)

    def _ce(self) -> GradPass:
        fwd = self.forward_pass()
        loss = self.loss_fn(fwd.output, self.y)
        weights = [layer.weight for layer in fwd.layers]
        acts = [act for outputs in fwd.layer_outputs for act in outputs]
        grads = torch.autograd.grad(
            loss, weights + acts, retain_graph=True, allow_unused=True, materialize_grads=True
        )
        act_grads = iter(grads[len(weights) :])
        fisher = []
        for layer, outputs in zip(fwd.layers, fwd.layer_outputs, strict=True):
            per_channel = torch.zeros(
                layer.weight.shape[0], dtype=layer.weight.dtype, device=layer.weight.device
            )
            for act in outputs:
                product = act.detach() * next(act_grads)
                if product.dim() > 2:  # sum over spatial positions, per sample and channel
                    product = product.sum(dim=tuple(range(2, product.dim())))
                per_channel = per_channel + product.pow(2).mean(0).mul(0.5)
            fisher.append(per_channel)
        return GradPass(loss, weights, list(grads[: len(weights)]), fisher)

    def jacobian(self) -> torch.Tensor:
        """The cached input Jacobian d(sum of outputs)/dx of the shared forward, as (N, D)."""
        return self.cached("jacobian", self._jacobian)

    def _jacobian(self) -> torch.Tensor:
        fwd = self.forward_pass()
        (grad,) = torch.autograd.grad(
            fwd.output,
            fwd.x,
            torch.ones_like(fwd.output),
            retain_graph=True,
            materialize_grads=True,
        )
        return grad.reshape(grad.shape[0], -1)

    def relu_kernel(self) -> torch.Tensor:
        """The cached NASWOT kernel K (float64, N x N): sum over ReLUs of c c^T + (1-c)(1-c)^T.

        That sum counts, per pair of samples, the ReLU inputs on the same side of zero, i.e.
        D - Hamming distance of the binary codes: computed exactly on bit-packed codes (one
        popcount per 64 units instead of a float matmul), once per distinct ReLU input tensor and
        weighted by the number of ReLUs that read it. K's integers equal the reference's.
        """
        return self.cached("relu_kernel", self._relu_kernel)

    def _relu_kernel(self) -> torch.Tensor:
        n = self.x.shape[0]
        kernel = np.zeros((n, n), dtype=np.int64)
        for codes, calls in self.forward_pass().relu_codes:
            kernel += calls * agreements(codes)
        return torch.from_numpy(kernel.astype(np.float64)).to(self.x.device)


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Number of set bits along the last axis of a uint64 array."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(words).sum(axis=-1, dtype=np.int64)
    return np.unpackbits(words.view(np.uint8), axis=-1).sum(axis=-1, dtype=np.int64)


def agreements(codes: torch.Tensor) -> np.ndarray:
    """For (N, D) binary codes, the (N, N) int64 count of positions where two rows agree."""
    n, width = codes.shape
    packed = np.packbits(codes.cpu().numpy(), axis=1)
    packed = np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8)))  # whole uint64 words
    words = packed.view(np.uint64)
    hamming = np.empty((n, n), dtype=np.int64)
    step = max(1, 2**22 // (n * words.shape[1]))  # bound the (rows, N, words) XOR array
    for start in range(0, n, step):
        block = words[start : start + step, None, :] ^ words[None, :, :]
        hamming[start : start + step] = _popcount_rows(block)
    return width - hamming
