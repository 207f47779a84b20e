"""The real datasets that sktime and gensim ship offline, formatted as AutoDL datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autodl.dataset import load_dataset
from autodl.preprocess import infer_domain
from autodl.realdata import (
    REAL_DATASETS,
    SEEDED_SPLITS,
    UNKNOWN,
    build_vocabulary,
    main,
    make_dataset,
    newsgroup_posts,
    tokenize,
)


def test_tokenizer_and_vocabulary() -> None:
    assert tokenize("It's GREAT -- isn't it?") == [
        "it",
        "'",
        "s",
        "great",
        "-",
        "-",
        "isn",
        "'",
        "t",
        "it",
        "?",
    ]
    vocabulary = build_vocabulary([["b", "a", "b"], ["c", "a", "b"]], size=3)
    assert vocabulary == [UNKNOWN, "b", "a"]  # by count, ties alphabetical, capped


@pytest.mark.parametrize(
    ("name", "shape", "sizes", "classes", "domain"),
    [
        ("BasicMotions", (100, 1, 1, 6), (40, 40), 4, "timeseries"),
        ("ArrowHead", (251, 1, 1, 1), (36, 175), 3, "timeseries"),
        ("SentencePolarity", (-1, 1, 1, 1), (160, 40), 2, "text"),
        ("MiniNewsgroups", (-1, 1, 1, 1), (160, 40), 2, "text"),
    ],
)
def test_small_real_datasets(
    tmp_path: Path, name: str, shape: tuple, sizes: tuple, classes: int, domain: str
) -> None:
    root = make_dataset(name, tmp_path)  # written and read back exactly (verify)
    train, test, solution = load_dataset(root)
    meta = train.metadata
    assert (len(train), len(test)) == sizes and meta.get_output_size() == classes
    assert meta.get_tensor_shape() == shape
    assert infer_domain(shape, meta.vocabulary_size()) == domain
    assert solution.sum(axis=0).min() > 0  # every class in the test split
    labels = np.stack([e.labels for e in train.iter_examples()])
    assert labels.sum(axis=0).min() > 0
    if domain == "text":
        vocabulary = meta.get_channel_to_index_map()
        assert vocabulary[UNKNOWN] == 0 and len(vocabulary) == meta.vocabulary_size() > 500
        words = {i: t for t, i in vocabulary.items()}
        first = next(iter(train.iter_examples())).x.reshape(-1).astype(int)
        assert all(words[i] for i in first)


def test_a_text_set_is_split_by_its_seed(tmp_path: Path) -> None:
    """The text sets come unsplit: ``split_seed`` draws the test split (0 by default); the
    vocabulary is the training split's, so it changes with it."""
    first, again, other = (
        load_dataset(make_dataset("SentencePolarity", tmp_path / str(k), seed))
        for k, seed in enumerate((0, 0, 1))
    )
    assert "SentencePolarity" in SEEDED_SPLITS and "ArrowHead" not in SEEDED_SPLITS

    def texts(loaded: object) -> set[tuple[str, ...]]:
        words = {i: t for t, i in loaded.test.metadata.get_channel_to_index_map().items()}
        return {
            tuple(words[i] for i in e.x.reshape(-1).astype(int))
            for e in loaded.test.iter_examples()
        }

    assert texts(first) == texts(again) and len(texts(first)) == 40
    assert len(texts(first) & texts(other)) < 20  # 40 of 200 drawn anew


def test_newsgroup_headers_are_removed() -> None:
    texts, labels, classes = newsgroup_posts()
    assert len(texts) == 200 and classes == ["alt.atheism", "sci.space"]
    assert np.bincount(labels).tolist() == [100, 100]
    assert not any(t.startswith(("Newsgroups:", "Path:", "From:")) for t in texts)
    # one post forwards a whole message, its own header block included (kept, as by sklearn)
    assert sum("Newsgroups:" in t for t in texts) == 1


@pytest.mark.slow
def test_variable_length_real_datasets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["--out", str(tmp_path), "JapaneseVowels", "PLAID"])
    main(["--out", str(tmp_path), "PLAID"])
    assert "PLAID: " + str(tmp_path / "PLAID") + " exists, kept" in capsys.readouterr().out
    vowels = load_dataset(tmp_path / "JapaneseVowels").train
    assert len(vowels) == 270 and vowels.metadata.get_tensor_shape() == (-1, 1, 1, 12)
    lengths = {len(e.x) for e in vowels.iter_examples()}
    assert min(lengths) == 7 and max(lengths) <= 29
    plaid = load_dataset(tmp_path / "PLAID").test
    assert len(plaid) == 537 and plaid.metadata.get_tensor_shape() == (-1, 1, 1, 1)
    assert infer_domain(plaid.metadata.get_tensor_shape()) == "speech"
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "NoSuchSet"])
    assert set(REAL_DATASETS) == {
        "JapaneseVowels",
        "PLAID",
        "BasicMotions",
        "ArrowHead",
        "SentencePolarity",
        "MiniNewsgroups",
    }
