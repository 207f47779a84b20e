"""Procedurally generated images whose classes need convolutional features: ``shapes``.

Each image shows one of ten shapes (disc, ring, square, frame, triangle, plus, cross, diamond,
two bars, semicircle) at a random position, size and slight rotation, over a random coloured
grating blended with a smooth random field, optionally under clutter strokes, with pixel noise.
The shape is drawn dark on a light background and light on a dark one, in a random colour.
Position, size, colours, background and clutter carry no label information: the class is only
in the outline, so telling a square from a diamond or a disc at 12x12 takes local edge and
corner features combined over space (a linear model on the pixels is near chance).
``ShapesStyle()`` is the style of the embedded benchmark; the pilot varied it
(``benchmark_data/README.md``).

Image ``i`` of a split is a pure function of ``(seed, i)``: its label is ``i % 10`` and its
nuisance parameters are drawn from ``numpy.random.default_rng([seed, i])``, so any subset of a
split is rendered on demand without the rest, in any order, with the same bytes. Rendering
(vectorised over the images asked for) supersamples ``SUPERSAMPLE`` x ``SUPERSAMPLE`` points per
pixel for anti-aliased edges and uses only elementary float64 operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = (
    "disc",
    "ring",
    "square",
    "frame",
    "triangle",
    "plus",
    "cross",
    "diamond",
    "bars",
    "semicircle",
)
SUPERSAMPLE = 3  # sub-pixel grid per pixel side
CHUNK = 512  # images rendered at once (bounds memory: about 30 MB of float64 per chunk at 16x16)


@dataclass(frozen=True)
class ShapesStyle:
    """How the ``shapes`` images are drawn (everything but the per-image random draws)."""

    size: int = 12  # pixels per side
    noise: float = 0.04  # std of the Gaussian pixel noise on the [0, 1] scale
    clutter: int = 0  # random strokes drawn over the background
    radius: tuple[float, float] = (0.4, 0.65)  # shape radius, fraction of half the image side
    max_rotation: float = 0.3  # radians either way
    texture: float = 0.5  # amplitude of the background pattern between its two colours (0..1)


def labels(indices: np.ndarray) -> np.ndarray:
    """Labels of images ``indices``: ``i % 10`` (balanced in every 10 consecutive images)."""
    return np.asarray(indices, dtype=np.int64) % len(SHAPES)


def _mask(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Coverage of shape ``name`` at shape coordinates (u right, v down), unit radius."""
    r2 = u * u + v * v
    au, av = np.abs(u), np.abs(v)
    box = np.maximum(au, av)
    if name == "disc":
        return r2 <= 1.0
    if name == "ring":
        return (r2 <= 1.0) & (r2 >= 0.3)
    if name == "square":
        return box <= 0.8
    if name == "frame":
        return (box <= 0.85) & (box >= 0.5)
    if name == "triangle":  # apex up
        return (v <= 0.6) & (np.sqrt(3.0) * au <= v + 1.0)
    if name == "plus":
        return ((au <= 0.28) | (av <= 0.28)) & (box <= 1.0)
    if name == "cross":
        diagonal = np.minimum(np.abs(u - v), np.abs(u + v)) / np.sqrt(2.0)
        return (diagonal <= 0.22) & (box <= 0.8)
    if name == "diamond":
        return au + av <= 1.0
    if name == "bars":
        return (au <= 0.9) & (av >= 0.25) & (av <= 0.7)
    if name == "semicircle":  # flat side up
        return (r2 <= 1.0) & (v >= -0.15)
    raise ValueError(f"unknown shape {name!r}")


def _upsampling_matrix(coarse: int, fine: int) -> np.ndarray:
    """(fine, coarse) weights of bilinear interpolation from ``coarse`` to ``fine`` points."""
    pos = np.linspace(0, coarse - 1, fine)
    low = np.minimum(np.floor(pos).astype(int), coarse - 2)
    frac = pos - low
    weights = np.zeros((fine, coarse))
    weights[np.arange(fine), low] = 1 - frac
    weights[np.arange(fine), low + 1] = frac
    return weights


def _draw(seed: int, index: int, style: ShapesStyle) -> np.ndarray:
    """The nuisance parameters of image ``index`` (a fixed order of draws), as one flat row."""
    rng = np.random.default_rng([seed, index])
    return np.concatenate(
        [
            rng.uniform(0, 1, 6),  # background colours c1, c2
            [rng.uniform(0, np.pi), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * np.pi)],  # grating
            rng.uniform(0, 1, 16),  # 4x4 smooth field
            rng.uniform(-0.35, 0.35, 2),  # shape centre
            [rng.uniform(*style.radius), rng.uniform(-style.max_rotation, style.max_rotation)],
            rng.uniform(0, 1, 3),  # shape colour
            rng.uniform(-1, 1, 2 * style.clutter),  # stroke starts
            rng.uniform(0, np.pi, style.clutter),  # stroke angles
            rng.uniform(0.3, 1.0, style.clutter),  # stroke half-lengths
            rng.uniform(0, 1, 3 * style.clutter),  # stroke colours
            rng.standard_normal(3 * style.size * style.size),  # pixel noise
        ]
    )


def render(seed: int, indices: np.ndarray, style: ShapesStyle = ShapesStyle()) -> np.ndarray:
    """Images ``indices`` of the split drawn with ``seed``: uint8 (len(indices), 3, size, size)."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    out = np.empty((len(indices), 3, style.size, style.size), dtype=np.uint8)
    for start in range(0, len(indices), CHUNK):
        part = indices[start : start + CHUNK]
        out[start : start + CHUNK] = _render_chunk(seed, part, style)
    return out


def col(a: np.ndarray) -> np.ndarray:
    """(n, 3) colours -> (n, 3, 1, 1), broadcast over pixels."""
    return a[:, :, None, None]


def per(a: np.ndarray) -> np.ndarray:
    """(n,) per-image values -> (n, 1, 1), broadcast over pixels."""
    return a[:, None, None]


def _render_chunk(seed: int, indices: np.ndarray, style: ShapesStyle) -> np.ndarray:
    size, k = style.size, style.clutter
    rows = np.stack([_draw(seed, int(i), style) for i in indices])
    n = len(rows)
    cols = iter(np.split(rows, np.cumsum([6, 3, 16, 2, 2, 3, 2 * k, k, k, 3 * k]), axis=1))
    colours, grating, grid, centre, shape, fg = (next(cols) for _ in range(6))
    starts, angles, lengths, stroke_colours, noise = (next(cols) for _ in range(5))

    fine = size * SUPERSAMPLE
    axis = (np.arange(fine) + 0.5) / fine * 2.0 - 1.0  # pixel-centre coordinates in [-1, 1]
    ys, xs = (a[None] for a in np.meshgrid(axis, axis, indexing="ij"))

    # background: a grating blended with a smooth field, between two colours
    weights = _upsampling_matrix(4, fine)
    field = np.einsum("ri,nij,cj->nrc", weights, grid.reshape(n, 4, 4), weights)
    phi, freq, phase = grating.T
    wave = 0.5 + 0.5 * np.sin(
        2 * np.pi * per(freq) * (xs * per(np.cos(phi)) + ys * per(np.sin(phi))) + per(phase)
    )
    t = style.texture * (0.5 * wave + 0.5 * field)[:, None]
    image = col(colours[:, :3]) * (1 - t) + col(colours[:, 3:]) * t

    # clutter: thin strokes in random colours
    for j in range(k):
        dx, dy = per(np.cos(angles[:, j])), per(np.sin(angles[:, j]))
        rx, ry = xs - per(starts[:, 2 * j]), ys - per(starts[:, 2 * j + 1])
        along, across = rx * dx + ry * dy, np.abs(ry * dx - rx * dy)
        stroke = (across <= 1.2 / size) & (np.abs(along) <= per(lengths[:, j]))
        image = np.where(stroke[:, None], col(stroke_colours[:, 3 * j : 3 * j + 3]), image)

    # the shape, in rotated coordinates scaled by its radius
    radius, theta = per(shape[:, 0]), per(shape[:, 1])
    rx, ry = xs - per(centre[:, 0]), ys - per(centre[:, 1])
    u = (rx * np.cos(theta) + ry * np.sin(theta)) / radius
    v = (ry * np.cos(theta) - rx * np.sin(theta)) / radius
    names = np.array(SHAPES)[indices % len(SHAPES)]
    mask = np.zeros((n, fine, fine), dtype=bool)
    for name in SHAPES:
        sel = names == name
        mask[sel] = _mask(name, u[sel], v[sel])
    # the shape's colour contrasts with the background's mean: dark on light, light on dark
    light = image.mean(axis=(1, 2, 3)) > 0.5
    fg = np.where(light[:, None], 0.35 * fg, 0.65 + 0.35 * fg)
    image = np.where(mask[:, None], col(fg), image)

    # pixel averages of the supersampled grid, pixel noise, 8-bit quantisation
    image = image.reshape(n, 3, size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(3, 5))
    image = image + style.noise * noise.reshape(n, 3, size, size)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
