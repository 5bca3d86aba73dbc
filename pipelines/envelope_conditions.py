"""Turn a flat drawn envelope into a scan, photo, thumbnail or binarised image.

Each condition returns the new image and the 3 x 3 homography that maps drawn pixel
coordinates into it, so the generator can report where the code ended up.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]

CONDITIONS = ("scan", "photo", "rotated", "lowres", "highres", "binarised", "faint", "messy")
LOWRES_WIDTH = 400


def _rotate(img: np.ndarray, degrees: float, fill: tuple[int, int, int]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate about the centre, growing the canvas so no corner of the envelope is cut."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * sin + w * cos)), int(round(h * cos + w * sin))
    m[0, 2] += (nw - w) / 2
    m[1, 2] += (nh - h) / 2
    out = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return out, np.vstack([m, [0, 0, 1]])


def _scanner_noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Sensor noise, generated at quarter size to stay cheap."""
    h, w = img.shape[:2]
    noise = rng.normal(0, sigma, ((h + 3) // 4, (w + 3) // 4, 1)).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_NEAREST)[..., None]
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def scan(img: np.ndarray, rng: np.random.Generator, degrees: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """A flatbed scan: a small rotation on a near-white scanner lid, slight noise."""
    lid = tuple(int(v) for v in rng.integers(225, 250, 3))
    out, m = _rotate(img, degrees, lid)
    return _scanner_noise(out, rng, 2.0), m


def _desk(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A desk or lap: wood-like streaks or a plain dark cloth."""
    base = np.array(rng.integers(40, 170, 3), np.float32)
    streaks = rng.normal(0, 18, (h // 8 + 1, 1)).astype(np.float32)
    streaks = cv2.resize(np.repeat(streaks, 8, 1), (w, h), interpolation=cv2.INTER_LINEAR)
    fine = rng.normal(0, 6, (h // 2 + 1, w // 2 + 1)).astype(np.float32)
    fine = cv2.resize(fine, (w, h))
    return np.clip(base + (streaks + fine)[..., None], 0, 255).astype(np.uint8)


def photo(img: np.ndarray, rng: np.random.Generator, degrees: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """A phone photo: envelope on a desk, perspective, uneven light, a shadow, blur, JPEG."""
    h, w = img.shape[:2]
    ow, oh = int(w * 1.0), int(w * 0.75)  # a 4:3 phone frame, envelope not filling it
    fill = rng.uniform(0.72, 0.88)
    ew, eh = w * fill, h * fill
    cx, cy = ow / 2 + rng.uniform(-0.05, 0.05) * ow, oh / 2 + rng.uniform(-0.05, 0.05) * oh
    corners = np.array([[-ew / 2, -eh / 2], [ew / 2, -eh / 2], [ew / 2, eh / 2],
                        [-ew / 2, eh / 2]])
    a = np.deg2rad(degrees)
    corners = corners @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    corners += rng.uniform(-0.045, 0.045, (4, 2)) * [ew, eh]  # perspective tilt
    corners += [cx, cy]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    desk = _desk(rng, ow, oh)
    out = cv2.warpPerspective(img, m, (ow, oh), dst=desk, borderMode=cv2.BORDER_TRANSPARENT)
    # Light falls off across the frame, and a hand or phone casts a soft shadow.
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    gx, gy = rng.uniform(-0.35, 0.35, 2)
    light = 1.0 + gx * (xx / ow - 0.5) + gy * (yy / oh - 0.5)
    if rng.random() < 0.7:
        shadow = np.zeros((oh, ow), np.float32)
        p = rng.uniform([0, 0], [ow, oh], (3, 2)).astype(np.int32)
        side = int(rng.integers(4))
        edge = [[0, 0], [ow, 0], [ow, oh], [0, oh]]
        poly = np.vstack([edge[side], edge[(side + 1) % 4], p[:1]]).astype(np.int32)
        cv2.fillPoly(shadow, [poly], 1.0)
        shadow = cv2.GaussianBlur(shadow, (0, 0), ow / 25)
        light *= 1.0 - rng.uniform(0.2, 0.4) * shadow
    out = np.clip(out.astype(np.float32) * light[..., None] * rng.uniform(0.85, 1.05), 0, 255)
    out = cv2.GaussianBlur(out.astype(np.uint8), (0, 0), rng.uniform(0.6, 1.3))
    out = _scanner_noise(out, rng, 3.0)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 85))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), m


def lowres(img: np.ndarray, rng: np.random.Generator, degrees: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """A thumbnail about 400 px wide, as an old web upload or a preview would be."""
    out, m = scan(img, rng, degrees)
    f = LOWRES_WIDTH / out.shape[1]
    small = cv2.resize(out, (LOWRES_WIDTH, int(round(out.shape[0] * f))),
                       interpolation=cv2.INTER_AREA)
    return small, np.diag([f, f, 1.0]) @ m


def binarised(img: np.ndarray, rng: np.random.Generator, degrees: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Already thresholded, white strokes on black (fax-like archive output)."""
    out, m = scan(img, rng, degrees)
    gray = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    _, bw = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return cv2.cvtColor(bw, cv2.COLOR_GRAY2BGR), m


def apply(condition: str, img: np.ndarray, rng: np.random.Generator,
          degrees: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``condition`` (drawing-time ones like faint/messy get a plain scan here)."""
    if degrees is None:
        limit = 8.0 if condition == "rotated" else 3.0
        degrees = float(rng.uniform(-limit, limit))
        if condition == "rotated" and abs(degrees) < 3:
            degrees = float(np.copysign(3 + abs(degrees), degrees))
    step = {"photo": photo, "lowres": lowres, "binarised": binarised}.get(condition, scan)
    return step(img, rng, degrees)


def map_box(box: Box, m: np.ndarray, shape: tuple[int, ...]) -> Box:
    """Where an axis-aligned box lands under homography ``m`` (its bounding box, clipped)."""
    x, y, w, h = box
    pts = np.float32([[[x, y]], [[x + w, y]], [[x + w, y + h]], [[x, y + h]]])
    out = cv2.perspectiveTransform(pts, m.astype(np.float64)).reshape(-1, 2)
    x0, y0 = np.floor(out.min(0)).astype(int)
    x1, y1 = np.ceil(out.max(0)).astype(int)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(shape[1], x1), min(shape[0], y1)
    return (int(x0), int(y0), int(max(0, x1 - x0)), int(max(0, y1 - y0)))
