"""``zcp_ensemble``: a label-free-normalised ensemble of complementary proxies, per architecture.

AZ-NAS sums log(rank / N) of its components over a population. A per-architecture score cannot
see the population, so each component is instead placed within a fixed REFERENCE SAMPLE of its
(space, task): K architectures drawn with ``space.sample`` from a fixed seed (no benchmark
architecture, no accuracy), scored on the task's standard minibatch by
``benchmarks/build_ensemble_reference.py``, which stores per component a robust location and
scale in ``ensemble_reference.json``. The score is the sum over components of
log F((t(v) - location) / scale), F the standard Cauchy CDF (matched to the reference's quartiles)
and t a fixed monotone transform: strictly increasing in every component, never saturating, and,
like log(rank / N), only logarithmically sensitive to outliers. Definition, choices and
deviations (why Cauchy rather than the normal CDF): ``docs/proxies_modern.md``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import zcproxies.proxies.modern  # noqa: F401  (registers the components)
from zcproxies.errors import DataError, UnknownName, ZcpError
from zcproxies.proxies.compute import proxy_value
from zcproxies.proxies.context import NONFINITE_SCORE, ProxyContext, finite_score
from zcproxies.proxies.registry import get_proxy, proxy
from zcproxies.spaces import get_space

REFERENCE_PATH = Path(__file__).with_name("ensemble_reference.json")
REFERENCE_FORMAT = "zcp-ensemble-reference"
REFERENCE_VERSION = 1
BUILD_COMMAND = "PYTHONPATH=. python benchmarks/build_ensemble_reference.py --pairs {pair} --k 100"

# Component -> monotone transform applied before normalising (FLOPs span decades: log).
COMPONENTS: dict[str, str] = {
    "meco": "identity",
    "zico": "identity",
    "az_expressivity": "identity",
    "az_progressivity": "identity",
    "az_trainability": "identity",
    "az_complexity": "log",
}
CITATION = (
    "zcp's own combination of MeCo (Jiang et al., NeurIPS 2023), ZiCo (Li et al., ICLR 2023) "
    "and AZ-NAS' four components (Lee & Ham, CVPR 2024), normalised per space/task"
)


@dataclass(frozen=True)
class ComponentStats:
    """Robust location and scale of one transformed component over a reference sample."""

    location: float  # median
    scale: float  # half the IQR (> 0); 0: constant in the reference, the component is left out


def transform(name: str, value: float) -> float:
    """Component ``name``'s fixed monotone transform (``log``: NaN/-inf for values <= 0)."""
    if COMPONENTS[name] == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.log(np.float64(value)))
    return float(value)


def reference_stats(values: Sequence[float], name: str) -> dict[str, Any]:
    """The stored statistics of component ``name`` from its raw reference values.

    Values equal to ``NONFINITE_SCORE`` (undefined for that architecture) are left out and
    counted. Location: the median; scale: half the IQR (the standard Cauchy's quartiles are
    -1 and 1, so F then matches the reference at its quartiles). When the IQR is 0 (over half
    the values tie): the mean absolute deviation from the median; when that is 0 too (all values
    equal): 0, and the component is left out of the ensemble for this pair.
    """
    raw = np.asarray(values, dtype=np.float64)
    defined = np.array([transform(name, v) for v in raw[raw != NONFINITE_SCORE]])
    defined = defined[np.isfinite(defined)]
    stats: dict[str, Any] = {
        "transform": COMPONENTS[name],
        "n_defined": len(defined),
        "n_undefined": len(raw) - len(defined),
        "location": 0.0,
        "scale": 0.0,
        "scale_rule": "constant",
    }
    if len(defined) == 0:
        return stats
    median = float(np.median(defined))
    q25, q75 = np.percentile(defined, [25, 75])
    stats["location"] = median
    if q75 > q25:
        stats["scale"], stats["scale_rule"] = float((q75 - q25) / 2), "iqr"
    elif np.any(defined != median):
        stats["scale"] = float(np.abs(defined - median).mean())
        stats["scale_rule"] = "mean_abs_deviation"
    return stats


def log_cauchy_cdf(z: float) -> float:
    """log F(z), F(z) = 1/2 + atan(z)/pi the standard Cauchy CDF, accurate in both tails.

    With a = atan(1/|z|): F = a/pi below 0 and 1 - a/pi above, so neither tail rounds to
    log 0 or log 1 (about -log(pi |z|) far below, -1/(pi z) far above).
    """
    a = np.arctan2(1.0, abs(z))
    with np.errstate(divide="ignore"):  # z = -inf: log 0 = -inf
        return float(np.log(a / np.pi) if z < 0 else np.log1p(-a / np.pi))


def combine(values: Mapping[str, float], stats: Mapping[str, ComponentStats]) -> float:
    """Sum over components of log F((t(v) - location) / scale); scale-0 components add 0.

    Strictly increasing in every component with a positive scale. An undefined value (-1e8)
    lies far below the reference and adds about -log(pi |z|), e.g. -20 (the analogue of the
    lowest rank); NaN from a transform makes the sum NaN (-1e8 after ``finite_score``).
    """
    total = 0.0
    for name, stat in stats.items():
        if stat.scale > 0:
            total += log_cauchy_cdf((transform(name, values[name]) - stat.location) / stat.scale)
    return total


def pair_key(space: str, task: str) -> str:
    """The canonical ``space/task`` key of a reference entry (aliases resolved)."""
    obj = get_space(space)
    return f"{obj.name}/{obj.task(task).name}"


@functools.cache
def load_reference(path: Path = REFERENCE_PATH) -> dict[str, Any]:
    """The reference file, checked to be built for this module's components and transforms."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the zcp_ensemble reference {path}: {exc}") from None
    components = {c["name"]: c["transform"] for c in data.get("components", [])}
    if data.get("format") != REFERENCE_FORMAT or data.get("version") != REFERENCE_VERSION:
        raise DataError(f"{path} is not a {REFERENCE_FORMAT} file of version {REFERENCE_VERSION}")
    if components != COMPONENTS:
        raise DataError(
            f"{path} was built for components {components}, this code uses {COMPONENTS}; "
            "rebuild it with benchmarks/build_ensemble_reference.py"
        )
    return data


def pair_stats(space: str, task: str, path: Path = REFERENCE_PATH) -> dict[str, ComponentStats]:
    """The stored statistics of every component for (space, task); a clear error if absent."""
    key = pair_key(space, task)
    pairs = load_reference(path)["pairs"]
    if key not in pairs:
        raise UnknownName(
            f"zcp_ensemble has no reference for {key}; available: {', '.join(sorted(pairs))}. "
            f"Build one with: {BUILD_COMMAND.format(pair=key)}"
        )
    stats = pairs[key]["stats"]
    return {n: ComponentStats(stats[n]["location"], stats[n]["scale"]) for n in COMPONENTS}


def component_scores(ctx: ProxyContext) -> dict[str, float]:
    """The components' (finite) scores on ``ctx``, each computed once per context."""
    return {name: proxy_value(ctx, name) for name in COMPONENTS}


@proxy(
    "zcp_ensemble",
    needs_labels=any(get_proxy(name).needs_labels for name in COMPONENTS),
    needs_grad=any(get_proxy(name).needs_grad for name in COMPONENTS),
    citation=CITATION,
)
def zcp_ensemble(ctx: ProxyContext) -> float:
    """Ensemble: sum of log CauchyCDF(robust z) of MeCo, ZiCo and AZ-NAS' 4 components.

    Needs ``ctx.space`` and ``ctx.task`` (``score(..., space=, task=)``) and a reference entry for
    that pair in ``ensemble_reference.json``.
    """
    if ctx.space is None or ctx.task is None:
        raise ZcpError(
            "zcp_ensemble normalises per search space and task: pass them, e.g. "
            "score('zcp_ensemble', model, batch, space='nasbench201', task='cifar10')"
        )
    stats = pair_stats(ctx.space, ctx.task)
    return finite_score(combine(component_scores(ctx), stats))
