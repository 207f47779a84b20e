"""The ChaLearn AutoDL challenge interface: ``Model(metadata)``, ``train``, ``test``.

The same class runs in our local ingestion loop (``autodl.ingestion``) and in the challenge's
starting kit. One difference: the kit hands ``train``/``test`` a ``tf.data.Dataset``; here
``dataset`` is our ``AutoDLDataset``, and in fact any iterable of ``(example, labels)`` pairs
works: examples (T, H, W, C) or (H, W, C) arrays (or anything ``numpy.asarray`` takes, such as
eager TF 2 tensors: a TF 2 dataset is such an iterable; the TF 1 kit's graph-mode dataset must
be wrapped in a generator that runs its iterator in a session), labels (n_classes,) 0/1
vectors, or None/empty for test records. Each split is read into memory once, at the working
size, at the first call that sees it.

Training is single-label: a multi-label row trains as its first positive class (the argmax);
``test`` returns softmax probabilities, one row per test example.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from autodl.dataset import AutoDLMetadata
from autodl.preprocess import (
    InputSpec,
    Standardizer,
    load_arrays,
    load_training_arrays,
    spec_from_metadata,
)
from autodl.search import AnytimeSearch, SearchConfig, Split, portfolio_for, stratified_split

DEFAULT_TIME_BUDGET = 1200.0  # seconds: the challenge's budget, used when train() is given none
TEST_RESERVE = 0.5  # seconds kept free before the deadline, plus twice the last test's duration


def default_device() -> torch.device:
    """CUDA (with mixed precision, through ``train_model``) when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Model:
    """Any-time AutoDL model: proxy-pruned search (``autodl.search``) behind the kit's API.

    ``pruning``: ``proxy`` (default), ``random`` or ``baseline`` (one fixed network, no search);
    ``proxy``: a registered proxy name or ``a+b+...`` (default: ``autodl/proxy_choice.json``);
    ``on_event``: called with each search event (the command line's status line).
    With ``config.portfolio`` the first network comes from the portfolio of the input's domain,
    built without this dataset's own runs (``portfolio_for``; the dataset's name is that of the
    metadata's ``<name>.data`` directory).
    """

    def __init__(
        self,
        metadata: AutoDLMetadata,
        *,
        pruning: str = "proxy",
        proxy: str | None = None,
        seed: int = 0,
        config: SearchConfig | None = None,
        device: torch.device | str | None = None,
        on_event: Callable[[dict], None] | None = None,
    ) -> None:
        self.metadata = metadata
        self.config = config or SearchConfig()
        self.device = torch.device(device) if device is not None else default_device()
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu"
            )
        max_size = (
            self.config.max_size_gpu if self.device.type == "cuda" else self.config.max_size_cpu
        )
        self.spec = spec_from_metadata(metadata, max_size, self.config.max_frames)
        self.pruning, self.proxy, self.seed = pruning, proxy, seed
        self.on_event = on_event
        self.done_training = False
        self.search: AnytimeSearch | None = None
        self._standardize: Standardizer | None = None
        self._test_inputs: tuple[int, torch.Tensor] | None = None  # (id(dataset), inputs)
        self._test_seconds = 0.0  # inference time of the last test

    def train(self, dataset: Iterable, remaining_time_budget: float | None = None) -> None:
        """Train until a better network is ready (then return, so it gets tested) or time is up.

        The first call reads the data and returns after the any-time linear probe (seconds).
        """
        start = time.perf_counter()
        remaining = (
            DEFAULT_TIME_BUDGET if remaining_time_budget is None else float(remaining_time_budget)
        )
        if self.search is None:
            self.search = self._start_search(dataset)
        self.search.run(start + remaining - TEST_RESERVE - 2 * self._test_seconds)
        self.done_training = self.search.done

    def test(self, dataset: Iterable, remaining_time_budget: float | None = None) -> np.ndarray:
        """Scores in [0, 1] (softmax probabilities), shape (n_test, n_classes)."""
        if self.search is None or self._standardize is None:
            raise RuntimeError("test() before train(): nothing has been trained")
        if self._test_inputs is None or self._test_inputs[0] != id(dataset):
            x, _ = load_arrays(dataset, self.spec)
            self._test_inputs = (id(dataset), torch.from_numpy(self._standardize(x)))
        start = time.perf_counter()
        probabilities = self.search.predict(self._test_inputs[1])
        self._test_seconds = time.perf_counter() - start
        return probabilities

    def summary(self) -> dict:
        """What was searched and trained (JSON-ready): input spec, settings, the search log."""
        search = self.search
        return {
            "domain": self.spec.domain,
            "input_shape": list(self.spec.shape),
            "num_classes": self.spec.num_classes,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "pruning": self.pruning,
            "proxy": search.proxy if search else self.proxy,
            "seed": self.seed,
            "best": None if search is None else search.summary(),
            "events": [] if search is None else search.events,
        }

    def _start_search(self, dataset: Iterable) -> AnytimeSearch:
        """Read the training data (``prepare_training_data``) and set up the search."""
        self.spec, train, val, self._standardize = prepare_training_data(
            dataset, self.spec, self.config.val_fraction, self.seed
        )
        return AnytimeSearch(
            self.spec,
            train,
            val,
            pruning=self.pruning,
            proxy=self.proxy,
            seed=self.seed,
            config=self.config,
            device=self.device,
            portfolio=portfolio_for(self.spec.domain, self.dataset_name),
            on_event=self.on_event,
        )

    @property
    def dataset_name(self) -> str:
        """``<name>`` of the ``<name>.data/<split>`` directory the metadata came from, or ''."""
        split_dir = Path(self.metadata.get_dataset_name())
        parent = split_dir.parent.name
        return parent[: -len(".data")] if parent.endswith(".data") else ""


def prepare_training_data(
    dataset: Iterable, spec: InputSpec, val_fraction: float, seed: int
) -> tuple[InputSpec, Split, Split, Standardizer]:
    """The spec fitted to the data (a sequence domain's working length), standardised (train,
    validation) tensors (inputs, class ids) and the standardiser.

    The validation split is stratified (``stratified_split``); a dataset too small to hold out
    any example (every class seen once) validates on the training examples themselves.
    """
    spec, x, labels = load_training_arrays(dataset, spec)
    if labels is None:
        raise ValueError("the training dataset has no labels")
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    if not len(val_idx):
        val_idx = train_idx
    standardize = Standardizer.fit(x[train_idx], spec)
    inputs = torch.from_numpy(standardize(x))
    targets = torch.from_numpy(labels.argmax(axis=1))
    return (
        spec,
        (inputs[train_idx], targets[train_idx]),
        (inputs[val_idx], targets[val_idx]),
        standardize,
    )
