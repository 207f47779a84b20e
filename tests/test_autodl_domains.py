"""Speech, time series and text: domains, working lengths, the temporal family, proxies on it,
and ``zcp autodl run`` end to end on tiny datasets of each."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from autodl.cli import autodl_group
from autodl.dataset import AutoDLMetadata, MatrixSpec, token_vocabulary
from autodl.families import (
    TemporalArch,
    TextNet,
    arch_from_name,
    candidate_space,
    family_baseline,
    proxy_view,
    stem_stride,
)
from autodl.preprocess import (
    InputSpec,
    Standardizer,
    fit_input_spec,
    infer_domain,
    load_training_arrays,
    make_input_spec,
    spec_from_metadata,
    to_network_input,
    working_length,
)
from autodl.writer import format_dataset
from zcproxies.proxies import score_many


@pytest.mark.parametrize(
    ("shape", "vocabulary", "domain"),
    [
        ((-1, 1, 1, 1), 0, "speech"),  # the AutoSpeech layout: a raw waveform
        ((-1, 1, 1, 12), 0, "timeseries"),
        ((100, 1, 1, 6), 0, "timeseries"),  # fixed length: not flattened into tabular
        ((251, 1, 1, 1), 0, "timeseries"),
        ((-1, 1, 1, 1), 5000, "text"),  # AutoNLP: token ids, vocabulary in the metadata
        ((-1, 1, 1, 5000), 5000, "text"),  # sparse one-hot text
        ((1, 1, 54, 1), 0, "tabular"),
        ((1, 1, 1, 100), 0, "tabular"),
        ((1, 32, 32, 3), 10, "image"),
    ],
)
def test_infer_domain(shape: tuple[int, ...], vocabulary: int, domain: str) -> None:
    assert infer_domain(shape, vocabulary) == domain


def test_channel_names_are_no_vocabulary() -> None:
    """A channel_to_index_map naming the channels of a DENSE series is no vocabulary; one of
    text (DENSE: one channel, at least 2 tokens; SPARSE: any) is."""

    def meta(fmt: str, channels: int, names: int) -> AutoDLMetadata:
        return AutoDLMetadata(
            matrix_spec=(MatrixSpec(1, 1, num_channels=channels, format=fmt),),
            output_dim=2,
            sequence_size=-1,
            channel_to_index_map={f"c{i}": i for i in range(names)},
        )

    assert token_vocabulary(meta("DENSE", 3, 3)) == 0  # x, y, z of an accelerometer
    assert token_vocabulary(meta("DENSE", 1, 1)) == 0  # one named channel
    assert token_vocabulary(meta("DENSE", 1, 50)) == 50
    assert token_vocabulary(meta("SPARSE", 50, 50)) == 50
    assert spec_from_metadata(meta("DENSE", 3, 3)).domain == "timeseries"
    assert spec_from_metadata(meta("DENSE", 1, 50)) == InputSpec("text", 1, 0, 2, vocabulary=51)


def test_specs_and_working_length() -> None:
    assert make_input_spec((-1, 1, 1, 12), 9) == InputSpec("timeseries", 13, 0, 9)
    assert make_input_spec((-1, 1, 1, 1), 4, vocabulary=30) == InputSpec(
        "text", 1, 0, 4, vocabulary=31
    )
    with pytest.raises(ValueError, match="fixed frame size"):
        make_input_spec((-1, 1, -1, 1), 2)
    lengths = list(range(1, 101))  # 95th percentile 95.05 -> 96
    assert working_length(lengths, "timeseries") == 96
    assert working_length([3, 4], "text") == 8  # MIN_LENGTH
    assert working_length([100_000], "speech") == 4096  # MAX_LENGTH
    spec = fit_input_spec(make_input_spec((-1, 1, 1, 2), 3), lengths)
    assert spec.length == 96 and spec.shape == (3, 96, 1)
    image = make_input_spec((1, 8, 8, 3), 2)
    assert fit_input_spec(image, [1]) is image
    with pytest.raises(ValueError, match="working length"):
        to_network_input(np.zeros((5, 1, 1, 2)), make_input_spec((-1, 1, 1, 2), 3))


def test_sequence_inputs_pad_crop_and_mask() -> None:
    spec = InputSpec("timeseries", 3, 0, 2, length=4)
    x = np.arange(6, dtype=np.float32).reshape(3, 1, 1, 2) + 1
    out = to_network_input(x, spec)
    assert out.shape == (3, 4, 1)
    np.testing.assert_array_equal(out[:, :, 0], [[1, 3, 5, 0], [2, 4, 6, 0], [1, 1, 1, 0]])
    long = to_network_input(np.ones((9, 1, 1, 2), np.float32), spec)
    assert long[-1, :, 0].tolist() == [1, 1, 1, 1]  # cut to the first 4 steps
    text = InputSpec("text", 1, 0, 2, length=5, vocabulary=10)
    ids = np.array([3, 0, 8], np.float32).reshape(3, 1, 1, 1)
    assert to_network_input(ids, text).tolist() == [4, 1, 9, 0, 0]  # shifted, 0 = padding


def test_masked_standardisation() -> None:
    spec = InputSpec("timeseries", 2, 0, 2, length=3)
    x = np.stack(
        [
            to_network_input(np.array(v, np.float32).reshape(-1, 1, 1, 1), spec)
            for v in ([1.0, 3.0], [5.0, 7.0, 9.0])
        ]
    )
    scale = Standardizer.fit(x, spec)
    values = np.array([1, 3, 5, 7, 9.0])
    assert scale.mean[0, 0, 0, 0] == pytest.approx(values.mean())  # real steps only
    assert scale.std[0, 0, 0, 0] == pytest.approx(values.std())
    out = scale(x)
    assert out[0, 0, 2, 0] == 0 and np.array_equal(out[:, 1], x[:, 1])  # padding, mask kept
    text = InputSpec("text", 1, 0, 2, length=3, vocabulary=5)
    ids = np.array([[1, 4, 0]], np.float32)
    assert np.array_equal(Standardizer.fit(ids, text)(ids), ids)


def test_candidate_space_pool_and_baselines() -> None:
    assert len(candidate_space("timeseries")) == 324 and len(candidate_space("text")) == 972
    for domain in ("speech", "timeseries", "text"):
        assert family_baseline(domain) in candidate_space(domain)
        pool = candidate_space(domain)
        assert len(set(pool)) == len(pool)
    assert family_baseline("text").name == "tcn w64 d1 k5 plain max e64"
    for domain, arch in (("text", pool[-1]), ("speech", candidate_space("speech")[7])):
        assert arch_from_name(arch.name, domain) == arch
    assert arch_from_name("tcn w64 d1 k5 plain max e64", "speech") is None  # text only
    assert arch_from_name("tcn w99 d1 k5 plain max", "speech") is None  # not in the grid
    assert arch_from_name("plain c16 d1", "text") is None
    with pytest.raises(ValueError, match="no temporal family"):
        candidate_space("image")
    assert stem_stride(200) == 1 and stem_stride(257) == 2 and stem_stride(4096) == 16


@pytest.mark.parametrize("mode", ["plain", "pooled", "dilated"])
@pytest.mark.parametrize("pool", ["avg", "max", "avgmax"])
def test_padding_never_changes_a_prediction(mode: str, pool: str) -> None:
    """The mask keeps padded steps out of every layer and of the pooling: the same example
    padded to two working lengths gives the same output (eval mode)."""
    arch = TemporalArch(8, 3, 3, mode, pool)
    short, long = (InputSpec("timeseries", 3, 0, 4, length=n) for n in (20, 50))
    torch.manual_seed(0)
    net = arch.build(short).eval()
    example = np.random.default_rng(0).normal(size=(13, 1, 1, 2)).astype(np.float32)
    inputs = [torch.from_numpy(to_network_input(example, s))[None] for s in (short, long)]
    with torch.no_grad():
        a, b = (net(x) for x in inputs)
    torch.testing.assert_close(a, b)
    torch.manual_seed(0)
    text = TemporalArch(8, 2, 3, mode, pool, embed=4).build(
        InputSpec("text", 1, 0, 4, length=20, vocabulary=9)
    )
    ids = torch.tensor([[3.0, 5, 1, 0, 0, 0], [3, 5, 1, 0, 0, 0]])
    with torch.no_grad():
        out = text.eval()(torch.cat([ids, torch.zeros(2, 14)], dim=1))
        torch.testing.assert_close(out[0], text(ids)[1])


def test_strided_stem_for_raw_waveforms() -> None:
    spec = InputSpec("speech", 2, 0, 3, length=1000)
    net = family_baseline("speech").build(spec)
    assert net.stride == 4
    x = torch.from_numpy(
        np.stack([to_network_input(np.ones((n, 1, 1, 1), np.float32), spec) for n in (1000, 30)])
    )
    assert net(x).shape == (2, 3)


PROXIES = ["jacov", "synflow", "nwot", "zico", "snip", "grad_norm", "zen", "meco", "flops"]


@pytest.mark.parametrize("domain", ["timeseries", "speech", "text"])
def test_proxies_score_every_family(domain: str) -> None:
    """Proxies that differentiate with respect to the input score text networks on the
    embedded minibatch (``proxy_view``); every value is finite and they tell members apart."""
    spec = InputSpec(domain, 1 if domain == "text" else 3, 0, 3, length=40, vocabulary=21)
    generator = torch.Generator().manual_seed(0)
    if domain == "text":
        x = torch.randint(0, 21, (12, 40), generator=generator).float()
    else:
        x = torch.randn(12, 3, 40, 1, generator=generator)
        x[:, -1] = 1.0
        x[6:, -1, 25:] = 0.0
    y = torch.arange(12) % 3
    scores = []
    for arch in candidate_space(domain)[::150][:3]:
        torch.manual_seed(0)
        model = arch.build(spec)
        scored, inputs = proxy_view(model, x)
        assert scored is (model.body if isinstance(model, TextNet) else model)
        assert inputs.dtype == torch.float32 and inputs.dim() == 4
        values = score_many(PROXIES, scored, inputs, y, 3, 0)
        assert all(math.isfinite(v) and v != -1e8 for v in values.values()), values
        scores.append(values)
    assert len({s["jacov"] for s in scores}) == 3 and len({s["synflow"] for s in scores}) == 3


def test_training_arrays_fit_the_spec() -> None:
    rng = np.random.default_rng(0)
    data = [
        (rng.normal(size=(n, 1, 1, 2)).astype(np.float32), np.eye(2)[n % 2]) for n in range(3, 23)
    ]
    spec, x, labels = load_training_arrays(data, make_input_spec((-1, 1, 1, 2), 2))
    assert spec.length == working_length(list(range(3, 23)), "timeseries") == 22
    assert x.shape == (20, 3, 22, 1) and labels.shape == (20, 2)
    again, x2, _ = load_training_arrays(data, spec)  # fitted: unchanged
    assert again == spec and np.array_equal(x, x2)


def tiny_datasets(root: Path) -> dict[str, Path]:
    """Separable tiny datasets of each new domain: 36 examples, 3 classes."""
    rng = np.random.default_rng(0)
    y = np.arange(36) % 3
    waves = [
        np.sin(np.arange(int(rng.integers(200, 600))) * (0.1 + 0.15 * c)).astype(np.float32)
        for c in y
    ]
    series = [(rng.normal(size=(int(rng.integers(5, 25)), 4)) + c).astype(np.float32) for c in y]
    docs = [rng.integers(6 * c, 6 * c + 8, int(rng.integers(3, 30))) for c in y]
    vocabulary = [f"w{i}" for i in range(20)]
    return {
        "speech": format_dataset(waves, y, root, "waves"),
        "timeseries": format_dataset(series, y, root, "series", fmt="SPARSE"),
        "text": format_dataset(docs, y, root, "docs", vocabulary=vocabulary),
    }


@pytest.mark.slow
@pytest.mark.parametrize("pruning", ["proxy", "baseline"])
def test_run_command_on_every_new_domain(tmp_path: Path, pruning: str) -> None:
    """``zcp autodl run`` for a few seconds on each domain: predictions and scores."""
    for domain, dataset in tiny_datasets(tmp_path / "data").items():
        out = tmp_path / f"run-{domain}"
        result = CliRunner().invoke(
            autodl_group,
            [
                *("run", str(dataset), "--time-budget", "8", "--pruning", pruning),
                *("--out", str(out), "--clock", "command"),
            ],
        )
        assert result.exit_code == 0, result.output
        scores = json.loads((out / "scores.json").read_text())
        assert scores["num_predictions"] >= 1, (domain, result.output)
        log = json.loads((out / "ingestion.json").read_text())["model"]
        assert log["domain"] == domain
        assert log["events"][0]["phase"] == "quick"  # the quick model is the first member
        trained = {e.get("candidate") for e in log["events"]} - {None, "quick ridge"}
        if pruning == "baseline":
            assert trained == {family_baseline(domain).name}, (domain, trained)
        else:  # the proxy's cost-aware choice among the family's members
            names = {a.name for a in candidate_space(domain)}
            assert trained and trained <= names, (domain, trained)
