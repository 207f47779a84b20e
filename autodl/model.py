"""The ChaLearn AutoDL challenge interface: ``Model(metadata)``, ``train``, ``test``.

The same class runs in our local ingestion loop (``autodl.ingestion``) and in the challenge's
starting kit. One difference: the kit hands ``train``/``test`` a ``tf.data.Dataset``; here
``dataset`` is our ``AutoDLDataset``, and in fact any iterable of ``(example, labels)`` pairs
works: examples (T, H, W, C) or (H, W, C) arrays (or anything ``numpy.asarray`` takes, such as
eager TF 2 tensors: a TF 2 dataset is such an iterable; the TF 1 kit's graph-mode dataset must
be wrapped in a generator that runs its iterator in a session), labels (n_classes,) 0/1
vectors, or None/empty for test records. Each split is read into memory once, at the working
size, at the first call that sees it.

The first ``train`` call reads the training data, fits the quick model (``autodl.quick``: ridge
regression in numpy, well under a second) and returns at once, so the first ``test`` predicts
with it; the search starts at the second call, with the quick model in its ensemble. A
``FirstStep`` made before torch was imported (``zcp autodl run``) can be handed over instead: the
search then starts at the first call.

Training is single-label: a multi-label row trains as its first positive class (the argmax);
``test`` returns softmax probabilities, one row per test example.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from autodl.dataset import AutoDLMetadata
from autodl.preprocess import TrainingData, spec_from_metadata
from autodl.quick import FirstStep, first_step
from autodl.search import AnytimeSearch, Split, portfolio_for
from autodl.settings import SearchConfig

DEFAULT_TIME_BUDGET = 1200.0  # seconds: the challenge's budget, used when train() is given none
TEST_RESERVE = 0.5  # seconds kept free before the deadline, plus twice the last test's duration


def default_device() -> torch.device:
    """CUDA (with mixed precision, through ``train_model``) when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Model:
    """Any-time AutoDL model: proxy-pruned search (``autodl.search``) behind the kit's API.

    ``pruning``: ``proxy`` (default), ``random`` or ``baseline`` (one fixed network, no search);
    ``proxy``: a registered proxy name or ``a+b+...`` (default: ``autodl/proxy_choice.json``);
    ``on_event``: called with each search event (the command line's status line);
    ``first``: the first step already made for this dataset (``autodl.quick.first_step``, with
    the same seed and settings), used when its input spec is the one of this device.
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
        first: FirstStep | None = None,
    ) -> None:
        self.metadata = metadata
        self.config = config or SearchConfig()
        self.device = torch.device(device) if device is not None else default_device()
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu"
            )
        max_size = self.config.max_size(self.device.type)
        self.spec = spec_from_metadata(metadata, max_size, self.config.max_frames)
        self.pruning, self.proxy, self.seed = pruning, proxy, seed
        self.on_event = on_event
        self.done_training = False
        self.search: AnytimeSearch | None = None
        self.first: FirstStep | None = None
        self._test_inputs: tuple[int, torch.Tensor] | None = None  # (id(dataset), inputs)
        self._test_seconds = 0.0  # inference time of the last test
        if first is not None and replace(first.data.spec, length=0) == self.spec:
            self.first = first  # else (another working size) the first call reads again
            if first.test is not None and first.test_inputs is not None:
                self._test_inputs = (id(first.test), torch.from_numpy(first.test_inputs))

    def train(self, dataset: Iterable, remaining_time_budget: float | None = None) -> None:
        """Train until a better network is ready (then return, so it gets tested) or time is up.

        The first call reads the data and returns after fitting the quick model (module doc).
        """
        start = time.perf_counter()
        remaining = (
            DEFAULT_TIME_BUDGET if remaining_time_budget is None else float(remaining_time_budget)
        )
        if self.first is None:
            self.first = first_step(dataset, self.spec, self.config, self.seed)
            self.spec = self.first.data.spec
            return
        if self.search is None:
            self.search = self._start_search(self.first)
        self.search.run(start + remaining - TEST_RESERVE - 2 * self._test_seconds)
        self.done_training = self.search.done

    def test(self, dataset: Iterable, remaining_time_budget: float | None = None) -> np.ndarray:
        """Scores in [0, 1] (softmax probabilities), shape (n_test, n_classes)."""
        if self.first is None:
            raise RuntimeError("test() before train(): nothing has been trained")
        if self._test_inputs is None or self._test_inputs[0] != id(dataset):
            inputs = self.first.data.test_inputs(dataset)
            self._test_inputs = (id(dataset), torch.from_numpy(inputs))
        start = time.perf_counter()
        if self.search is None:
            probabilities = self.first.quick.predict(self._test_inputs[1].numpy())
        else:
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

    def _start_search(self, first: FirstStep) -> AnytimeSearch:
        """The search on the prepared training data, starting from the quick model."""
        self.spec = first.data.spec
        train, val = training_splits(first.data)
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
            quick=first.quick,
            on_event=self.on_event,
        )

    @property
    def dataset_name(self) -> str:
        """``<name>`` of the ``<name>.data/<split>`` directory the metadata came from, or ''."""
        split_dir = Path(self.metadata.get_dataset_name())
        parent = split_dir.parent.name
        return parent[: -len(".data")] if parent.endswith(".data") else ""


def training_splits(data: TrainingData) -> tuple[Split, Split]:
    """(train, validation) tensors (standardised inputs, class ids) of prepared data."""
    inputs, labels = torch.from_numpy(data.inputs), torch.from_numpy(data.labels)
    return (
        (inputs[data.train_idx], labels[data.train_idx]),
        (inputs[data.val_idx], labels[data.val_idx]),
    )
