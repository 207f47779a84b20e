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


def test_a_text_set_is_split_by_its_seed() -> None:
    """The text sets come unsplit: ``split_seed`` draws the 40 test examples of 200 (0 is
    ``make_dataset``'s default); the vocabulary is the training split's, so it changes too."""
    assert "SentencePolarity" in SEEDED_SPLITS and "ArrowHead" not in SEEDED_SPLITS
    load = REAL_DATASETS["SentencePolarity"]
    (_, _, _, test, words), (_, _, _, again, _), (_, _, _, other, other_words) = (
        load(seed) for seed in (0, 0, 1)
    )
    assert len(test) == 40 and np.array_equal(test, again)
    assert len(set(test) & set(other)) < 20 and words != other_words


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
