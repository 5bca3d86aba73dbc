"""Render handwritten-looking digits 0-9 from pen-stroke skeletons (no MNIST pixels).

Each digit has a few style variants (1 with or without a flag, open or closed 4, 7 with
or without a bar, ...). A variant is a list of strokes in a unit glyph frame (x right,
y down, both 0..1); a stroke is drawn either as a smooth Catmull-Rom curve through its
points (``C``) or as straight segments with sharp corners (``L``). Rendering jitters the
control points, applies slant, aspect and rotation, and varies pen pressure along each
stroke, at 4x supersampling so the downscaled ink has soft anti-aliased edges.
"""

from __future__ import annotations

import cv2
import numpy as np

Stroke = tuple[str, tuple[tuple[float, float], ...]]

_SUPERSAMPLE = 4

# Skeletons, one tuple of strokes per style variant. Coordinates: glyph frame, y down.
SKELETONS: dict[int, tuple[tuple[Stroke, ...], ...]] = {
    0: (
        (("C", ((0.55, 0.0), (0.15, 0.15), (0.05, 0.55), (0.3, 0.97), (0.7, 0.95),
                (0.95, 0.5), (0.82, 0.1), (0.5, 0.02), (0.4, 0.08))),),
        (("C", ((0.6, 0.02), (0.25, 0.1), (0.1, 0.5), (0.25, 0.95), (0.65, 0.98),
                (0.9, 0.6), (0.85, 0.15), (0.55, 0.0))),),
    ),
    1: (
        (("L", ((0.55, 0.0), (0.45, 1.0))),),
        (("L", ((0.2, 0.25), (0.6, 0.0), (0.55, 1.0))),),
        (("L", ((0.25, 0.22), (0.6, 0.0), (0.6, 1.0))), ("L", ((0.3, 1.0), (0.9, 1.0)))),
    ),
    2: (
        (("C", ((0.1, 0.25), (0.35, 0.02), (0.7, 0.03), (0.85, 0.28), (0.6, 0.6),
                (0.05, 1.0))),
         ("L", ((0.05, 1.0), (0.95, 0.97)))),
        (("C", ((0.12, 0.22), (0.45, 0.0), (0.8, 0.15), (0.7, 0.5), (0.15, 0.95),
                (0.1, 0.82), (0.3, 0.85), (0.6, 1.0), (0.95, 0.95))),),
    ),
    3: (
        (("C", ((0.12, 0.15), (0.45, 0.0), (0.8, 0.12), (0.75, 0.38), (0.4, 0.48))),
         ("C", ((0.4, 0.48), (0.85, 0.6), (0.88, 0.88), (0.5, 1.0), (0.08, 0.85)))),
        (("L", ((0.1, 0.02), (0.85, 0.0), (0.4, 0.4))),
         ("C", ((0.4, 0.4), (0.85, 0.55), (0.85, 0.88), (0.5, 1.0), (0.1, 0.88)))),
    ),
    4: (
        (("L", ((0.7, 1.0), (0.7, 0.0), (0.0, 0.68), (1.0, 0.68))),),
        (("L", ((0.2, 0.0), (0.08, 0.62), (0.95, 0.6))), ("L", ((0.72, 0.2), (0.7, 1.0)))),
    ),
    5: (
        (("L", ((0.85, 0.0), (0.25, 0.02), (0.2, 0.45))),
         ("C", ((0.2, 0.45), (0.5, 0.36), (0.85, 0.55), (0.82, 0.87), (0.45, 1.0),
                (0.08, 0.88)))),
        (("L", ((0.25, 0.0), (0.2, 0.45))),
         ("C", ((0.2, 0.45), (0.55, 0.38), (0.88, 0.6), (0.75, 0.92), (0.4, 1.0),
                (0.1, 0.86))),
         ("L", ((0.27, 0.01), (0.85, 0.0)))),
    ),
    6: (
        (("C", ((0.78, 0.02), (0.4, 0.15), (0.12, 0.55), (0.2, 0.92), (0.52, 1.0),
                (0.82, 0.82), (0.76, 0.55), (0.45, 0.5), (0.15, 0.66))),),
        (("C", ((0.65, 0.0), (0.3, 0.35), (0.12, 0.75), (0.35, 1.0), (0.7, 0.95),
                (0.8, 0.68), (0.5, 0.55), (0.2, 0.7))),),
    ),
    7: (
        (("L", ((0.05, 0.03), (0.92, 0.0), (0.38, 1.0))),),
        (("L", ((0.05, 0.03), (0.92, 0.0), (0.45, 1.0))), ("L", ((0.35, 0.5), (0.85, 0.48)))),
        (("L", ((0.05, 0.15), (0.08, 0.02), (0.92, 0.02))),
         ("C", ((0.92, 0.02), (0.6, 0.45), (0.45, 1.0)))),
    ),
    8: (
        (("C", ((0.75, 0.12), (0.5, 0.0), (0.2, 0.1), (0.22, 0.35), (0.5, 0.5),
                (0.82, 0.68), (0.78, 0.93), (0.5, 1.0), (0.2, 0.92), (0.2, 0.68),
                (0.5, 0.5), (0.78, 0.33), (0.75, 0.1), (0.55, 0.0))),),
        (("C", ((0.5, 0.0), (0.2, 0.12), (0.25, 0.4), (0.5, 0.48), (0.75, 0.38),
                (0.8, 0.12), (0.5, 0.0))),
         ("C", ((0.5, 0.48), (0.15, 0.62), (0.15, 0.92), (0.5, 1.0), (0.85, 0.9),
                (0.82, 0.6), (0.5, 0.48)))),
    ),
    9: (
        (("C", ((0.82, 0.25), (0.6, 0.02), (0.25, 0.05), (0.15, 0.3), (0.35, 0.5),
                (0.7, 0.42), (0.84, 0.2))),
         ("C", ((0.84, 0.2), (0.8, 0.6), (0.65, 1.0)))),
        (("C", ((0.85, 0.12), (0.55, 0.0), (0.2, 0.1), (0.18, 0.38), (0.5, 0.48),
                (0.82, 0.3), (0.85, 0.05))),
         ("L", ((0.85, 0.05), (0.8, 1.0)))),
    ),
}


def _catmull_rom(points: np.ndarray, samples: int = 14) -> np.ndarray:
    """A smooth curve through every control point (centripetal enough for hand shapes)."""
    if len(points) < 3:
        return points
    padded = np.vstack([points[0], points, points[-1]])
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[:, None]
    out = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    out.append(points[-1:])
    return np.vstack(out)


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """Resample a polyline so pressure can vary smoothly along straight segments too."""
    out = [points[0]]
    for a, b in zip(points[:-1], points[1:], strict=True):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
        out.extend(a + (b - a) * (k / n) for k in range(1, n + 1))
    return np.asarray(out)


def render_digit(
    digit: int,
    rng: np.random.Generator,
    height_px: int,
    thickness: float,
    *,
    broken: float = 0.0,
    variant: int | None = None,
) -> np.ndarray:
    """Draw one handwritten digit and return its ink alpha, cropped tight.

    Args:
        digit: The digit 0-9 to draw.
        rng: Source of every random choice (style variant, jitter, slant, pressure).
        height_px: Approximate ink height of the digit in output pixels.
        thickness: Mean pen width in output pixels.
        broken: Chance, per stroke, of a small gap (a pen that skipped).
        variant: Force one style variant (index into ``SKELETONS[digit]``).

    Returns:
        uint8 array, 255 = full ink, 0 = paper, no empty border.
    """
    variants = SKELETONS[int(digit)]
    strokes = variants[int(rng.integers(len(variants))) if variant is None else variant]
    s = float(height_px) * _SUPERSAMPLE
    aspect = rng.uniform(0.5, 0.72) if digit != 1 else rng.uniform(0.3, 0.5)
    slant = rng.normal(0.18, 0.12)  # handwriting leans right more often than left
    angle = np.deg2rad(rng.normal(0.0, 4.0))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    jitter = rng.uniform(0.015, 0.04)
    pen = max(1.0, thickness * _SUPERSAMPLE)
    margin = int(pen * 2 + s * 0.3)
    size = (int(s + 2 * margin), int(s + 2 * margin))
    canvas = np.zeros(size, np.uint8)
    # One shared wobble per digit keeps joined strokes meeting where they should.
    for kind, pts in strokes:
        p = np.asarray(pts, float) + rng.normal(0.0, jitter, (len(pts), 2))
        line = _catmull_rom(p) if kind == "C" else p
        line = _densify(line, 0.03)
        xy = np.column_stack([(line[:, 0] - 0.5) * aspect, line[:, 1] - 0.5])
        xy[:, 0] += slant * (-xy[:, 1])
        xy = xy @ rot.T * s + size[0] / 2
        phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.0)
        u = np.linspace(0.0, 1.0, len(xy))
        pressure = 1.0 + 0.22 * np.sin(phase + 2 * np.pi * freq * u)
        pressure *= np.clip(np.minimum(u, 1 - u) * 12 + 0.7, 0.7, 1.0)  # lighter at the ends
        gap = (-1.0, -1.0)
        if broken > 0 and rng.random() < broken and len(xy) > 8:
            start = rng.uniform(0.25, 0.7)
            gap = (start, start + rng.uniform(0.03, 0.05))  # a skip, not a missing limb
        pts_i = np.round(xy).astype(np.int32)
        for k in range(len(pts_i) - 1):
            if gap[0] <= u[k] <= gap[1]:
                continue
            w = max(1, int(round(pen * pressure[k])))
            cv2.line(canvas, tuple(pts_i[k]), tuple(pts_i[k + 1]), 255, w, cv2.LINE_AA)
    small = cv2.resize(canvas, (size[1] // _SUPERSAMPLE, size[0] // _SUPERSAMPLE),
                       interpolation=cv2.INTER_AREA)
    return crop_tight(small)


def crop_tight(alpha: np.ndarray, floor: int = 10) -> np.ndarray:
    """Cut an ink alpha down to the box around pixels brighter than ``floor``."""
    ys, xs = np.nonzero(alpha > floor)
    if len(ys) == 0:
        return alpha[:1, :1].copy()
    return alpha[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].copy()


class ProceduralDigits:
    """Digit source backed by the pen-stroke model: no data files, any amount of variety."""

    last_source = ""
    """Every digit is drawn afresh: there is no stored glyph to name (``DigitSource``)."""

    def __init__(self, seed: int = 0, thickness: float | None = None) -> None:
        self.seed = seed
        self.thickness = thickness

    def sample(
        self, digit: int, rng: np.random.Generator, height_px: int = 64,
        thickness: float | None = None, broken: float = 0.0,
    ) -> np.ndarray:
        """One handwritten ``digit`` as tight uint8 ink alpha about ``height_px`` tall."""
        pen = thickness or self.thickness or max(1.5, height_px * rng.uniform(0.06, 0.12))
        return render_digit(digit, rng, height_px, pen, broken=broken)
