"""Real speech-like, time-series and text datasets that Python packages ship offline, formatted
as AutoDL datasets.

Nothing here downloads: every source is a data file inside an installed wheel (the optional
``autodl-data`` extra: ``sktime``, ``gensim``); datasets are generated into a directory of the
user's choice and never committed.

- ``JapaneseVowels`` (timeseries; 270 train / 370 test, 9 classes): sktime's UEA
  JapaneseVowels, 12 LPC cepstrum coefficients per frame of a spoken vowel, 7-29 frames
  (speaker recognition).
- ``PLAID`` (speech layout; 537 / 537, 11 classes): sktime's PLAID, one raw current waveform
  per appliance start-up, 100-1,344 samples: one channel of varying length, as AutoSpeech.
- ``BasicMotions`` (timeseries; 40 / 40, 4 classes): sktime's UEA BasicMotions, 3-axis
  accelerometer and gyroscope, 100 steps.
- ``ArrowHead`` (timeseries; 36 / 175, 3 classes): sktime's UCR ArrowHead, arrow-head outlines
  as 1-D series of 251 steps.
- ``SentencePolarity`` (text; 160 / 40, 2 classes): gensim's test file
  ``pang_lee_polarity.cor``, 200 movie-review sentences of Pang and Lee (2005).
- ``MiniNewsgroups`` (text; 160 / 40, 2 classes): gensim's test file ``mini_newsgroup``, 200
  posts of alt.atheism and sci.space (20 Newsgroups), headers removed.

Splits: the archives' own train/test splits for the UCR/UEA sets; a seeded 80/20 split
(``autodl.writer``'s, ``split_seed`` 0 unless told) for the text sets, which come unsplit
(``SEEDED_SPLITS``). No real speech waveform ships in a package here (speech corpora are
downloaded at run time), so the speech domain is exercised by PLAID's raw current waveforms and
JapaneseVowels' speech-derived features.

Text: lower-cased tokens (runs of word characters, or single other non-space characters); the
vocabulary is ``<unk>`` followed by the training split's tokens by decreasing frequency (ties
alphabetical), at most ``MAX_VOCABULARY``; test tokens outside it become ``<unk>``. The
AutoNLP formatter built its vocabulary from both splits; ours sees the training split only.

``python -m autodl.realdata --out DIR [NAME ...]`` writes ``DIR/<name>/`` (skipping those that
exist) and prints one line per dataset.
"""

from __future__ import annotations

import argparse
import collections
import copyreg
import io
import pickle
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autodl.writer import format_dataset

MAX_VOCABULARY = 20_000
UNKNOWN = "<unk>"
_TOKEN = re.compile(r"\w+|[^\w\s]")
# (examples, labels, classes, test indices, vocabulary) from the split's seed (unused where the
# source has its own split)
Loader = Callable[[int], tuple[list, np.ndarray, list[str], np.ndarray | None, list[str] | None]]


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def build_vocabulary(docs: list[list[str]], size: int = MAX_VOCABULARY) -> list[str]:
    """``<unk>`` then the tokens of ``docs`` by decreasing count (ties alphabetical)."""
    counts = collections.Counter(token for doc in docs for token in doc)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return [UNKNOWN, *ranked[: size - 1]]


def encode_docs(
    texts: list[str], labels: np.ndarray, seed: int
) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    """(token-id arrays, vocabulary from the training split, test indices) of ``texts`` split
    as ``format_dataset`` splits them (seeded 80/20)."""
    order = np.random.default_rng(seed).permutation(len(texts))
    test = order[: round(len(texts) * 0.2)]
    train = np.setdiff1d(np.arange(len(texts)), test)
    docs = [tokenize(t) or [UNKNOWN] for t in texts]
    vocabulary = build_vocabulary([docs[i] for i in train])
    index = {t: i for i, t in enumerate(vocabulary)}
    ids = [np.array([index.get(t, 0) for t in doc], np.int64) for doc in docs]
    return ids, vocabulary, test


def _sktime(loader_name: str) -> Loader:
    """A loader of a UCR/UEA set bundled with sktime, in its archive's train/test split."""

    def load(
        _split_seed: int,
    ) -> tuple[list, np.ndarray, list[str], np.ndarray | None, list[str] | None]:
        import sktime.datasets

        load_split = getattr(sktime.datasets, loader_name)
        frames, labels = [], []
        for split in ("test", "train"):  # test first: is_test marks the first block
            x, y = load_split(split=split, return_X_y=True)
            frames.append(x)
            labels.append(np.asarray(y).astype(str))
        series = [
            np.stack([np.asarray(cell, np.float32) for cell in row], axis=1)  # (T, channels)
            for frame in frames
            for row in frame.itertuples(index=False)
        ]
        y = np.concatenate(labels)
        names = set(y.tolist())
        numeric = all(c.isdigit() for c in names)
        classes = sorted(names, key=int) if numeric else sorted(names)  # '2' before '10'
        ids = np.array([classes.index(c) for c in y])
        return series, ids, classes, np.arange(len(labels[0])), None

    return load


def _gensim_file(name: str) -> Path:
    """A file of gensim's bundled test data."""
    from gensim.test.utils import datapath

    return Path(datapath(name))


def _sentence_polarity(
    split_seed: int,
) -> tuple[list, np.ndarray, list[str], np.ndarray | None, list[str]]:
    """Pang and Lee's sentence polarity sample: ``__label__neg|pos <sentence>`` lines."""
    lines = _gensim_file("pang_lee_polarity.cor").read_text(encoding="latin-1").splitlines()
    pairs = [line.split(" ", 1) for line in lines if line.strip()]
    classes = ["neg", "pos"]
    labels = np.array([classes.index(tag.removeprefix("__label__")) for tag, _ in pairs])
    return _text(labels, [text for _, text in pairs], classes, split_seed)


class _Bunch(dict):
    """scikit-learn's old ``Bunch`` as pickled in gensim's ``mini_newsgroup`` (a dict)."""

    def __setstate__(self, state: dict) -> None:
        self.update(state)


def _reconstruct(cls: type, shape: tuple, dtype: object) -> np.ndarray:
    """numpy's pickle constructor of an empty array (filled by ``__setstate__``)."""
    return np.ndarray.__new__(cls, shape, dtype)


_SAFE_GLOBALS = {  # everything mini_newsgroup's pickle refers to, and nothing else
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("sklearn.datasets.base", "Bunch"): _Bunch,
    ("__builtin__", "dict"): dict,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the classes of ``_SAFE_GLOBALS``."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _SAFE_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def newsgroup_posts() -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, labels, class names) of gensim's 200 posts of alt.atheism and sci.space, headers
    (whose ``Newsgroups:`` line names the label) removed as scikit-learn's
    ``remove=('headers',)`` does: all before the first blank line."""
    raw = zlib.decompress(_gensim_file("mini_newsgroup").read_bytes())
    bunch = _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    texts = [post.partition("\n\n")[2] for post in bunch["data"]]
    return texts, np.asarray(bunch["target"], np.int64), list(bunch["target_names"])


def _mini_newsgroups(
    split_seed: int,
) -> tuple[list, np.ndarray, list[str], np.ndarray | None, list[str]]:
    """``newsgroup_posts`` as token ids."""
    texts, labels, classes = newsgroup_posts()
    return _text(labels, texts, classes, split_seed)


def _text(
    labels: np.ndarray, texts: list[str], classes: list[str], split_seed: int
) -> tuple[list, np.ndarray, list[str], np.ndarray, list[str]]:
    """Token ids, labels, classes, test indices and vocabulary of a text set."""
    ids, vocabulary, test = encode_docs(texts, labels, seed=split_seed)
    return ids, labels, classes, test, vocabulary


REAL_DATASETS: dict[str, Loader] = {
    "JapaneseVowels": _sktime("load_japanese_vowels"),
    "PLAID": _sktime("load_plaid"),
    "BasicMotions": _sktime("load_basic_motions"),
    "ArrowHead": _sktime("load_arrow_head"),
    "SentencePolarity": _sentence_polarity,
    "MiniNewsgroups": _mini_newsgroups,
}
SEEDED_SPLITS = frozenset({"SentencePolarity", "MiniNewsgroups"})  # unsplit at the source


def make_dataset(name: str, out_dir: str | Path, split_seed: int = 0) -> Path:
    """Format ``REAL_DATASETS[name]`` as ``out_dir/<name>/`` (verified read-back); the test
    split of a set of ``SEEDED_SPLITS`` drawn with ``split_seed``."""
    x, y, classes, test, vocabulary = REAL_DATASETS[name](split_seed)
    return format_dataset(
        x, y, out_dir, name, classes=classes, vocabulary=vocabulary, test_indices=test
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m autodl.realdata --out DIR [NAME ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory of the datasets")
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(REAL_DATASETS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(REAL_DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; known: {', '.join(REAL_DATASETS)}")
    for name in args.names or REAL_DATASETS:
        root = args.out / name
        if root.exists():
            print(f"{name}: {root} exists, kept")
            continue
        make_dataset(name, args.out)
        print(f"{name}: wrote {root}")


if __name__ == "__main__":
    main()
