"""Generated ``shapes``: a pure function of (seed, index), balanced, needs spatial features."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from zcproxies.data import get_batch, get_provider
from zcproxies.data import synthetic as syn


def test_any_subset_renders_the_same_bytes() -> None:
    whole = syn.render(1, np.arange(40))
    picked = syn.render(1, np.array([37, 3, 3, 20]))
    np.testing.assert_array_equal(picked, whole[[37, 3, 3, 20]])
    assert not np.array_equal(syn.render(2, np.arange(4)), whole[:4])  # seeds differ
    assert whole.dtype == np.uint8 and whole.shape == (40, 3, 12, 12)


def test_labels_are_balanced_and_the_style_is_respected() -> None:
    assert list(syn.labels(np.arange(12))) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    small = syn.render(0, np.arange(5), syn.ShapesStyle(size=16, noise=0.0, clutter=2))
    assert small.shape == (5, 3, 16, 16)


def test_fingerprint_is_stable() -> None:
    """The bytes of the first images; a change here changes the embedded benchmark's data."""
    digest = hashlib.sha256(syn.render(1, np.arange(20)).tobytes()).hexdigest()
    assert digest == FINGERPRINT


def test_shapes_provider_batches() -> None:
    provider = get_provider("shapes")
    batch = get_batch("shapes", 32, seed=0)
    assert batch.x.shape == (32, *provider.shape) and batch.num_classes == 10
    assert abs(float(batch.x.mean())) < 0.5 and 0.5 < float(batch.x.std()) < 1.5  # normalised
    assert get_batch("shapes", 32, seed=0) == batch
    assert get_batch("shapes", 8, seed=0, split="test") != get_batch("shapes", 8, seed=0)


@pytest.mark.slow
def test_pixels_alone_do_not_solve_it() -> None:
    """A linear model on the raw pixels stays near chance: the class is in the outline only."""
    train, test = syn.render(1, np.arange(2000)), syn.render(2, np.arange(500))
    model = LogisticRegression(max_iter=500).fit(  # converges at about 340 iterations
        train.reshape(len(train), -1) / 255.0, syn.labels(np.arange(2000))
    )
    accuracy = model.score(test.reshape(len(test), -1) / 255.0, syn.labels(np.arange(500)))
    assert accuracy < 0.3


# sha256 of train images 0..19 of ShapesStyle(), recorded once (numpy 2)
FINGERPRINT = "9a140710ba50dfbee3449ddb616d3e66a76ae4c843566e56fdc653f6c1fba20a"
