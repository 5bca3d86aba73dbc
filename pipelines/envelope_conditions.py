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
DESKS = ((60, 100, 150), (45, 75, 110), (120, 120, 118), (50, 50, 55), (150, 170, 185),
         (90, 70, 60))  # BGR: light and dark wood, grey desk, dark cloth, beige, denim


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
    noise = rng.normal(0, sigma, ((h + 3) // 4, (w + 3) // 4)).astype(np.float32)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_NEAREST)
    # Saturating OpenCV add/subtract: much cheaper than a float round trip with np.clip.
    up = cv2.merge([cv2.convertScaleAbs(np.maximum(noise, 0))] * 3)
    down = cv2.merge([cv2.convertScaleAbs(np.minimum(noise, 0))] * 3)
    return cv2.subtract(cv2.add(img, up), down)


def scan(img: np.ndarray, rng: np.random.Generator, degrees: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """A flatbed scan: a small rotation on a near-white scanner lid, slight noise."""
    lid = (int(rng.integers(225, 250)),) * 3
    out, m = _rotate(img, degrees, lid)
    return _scanner_noise(out, rng, 2.0), m


def _desk(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A desk or lap: wood-like streaks or a plain dark cloth."""
    base = np.array(DESKS[int(rng.integers(len(DESKS)))], np.float32) + rng.normal(0, 8, 3)
    lh, lw = h // 4 + 1, w // 4 + 1
    grain = rng.uniform(0, 10) if rng.random() < 0.6 else 0.0  # wood grain, or plain cloth
    streaks = cv2.resize(rng.normal(0, grain, (lh // 6 + 1, 1)), (lw, lh))
    low = base + (streaks + rng.normal(0, 3, (lh, lw)))[..., None]
    low = np.clip(low, 0, 255).astype(np.uint8)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)


def _thumb(out: np.ndarray, corners: np.ndarray, rng: np.random.Generator) -> None:
    """A thumb holding the envelope's bottom edge, left of centre, clear of any code field.

    Every layout keeps the bottom-left tenth of the envelope free of the recipient's code
    (only sender boxes, ticks and notes live there), so the thumb never hides the truth.
    """
    t = rng.uniform(0.1, 0.3)
    edge = corners[3] + t * (corners[2] - corners[3])
    width = np.linalg.norm(corners[2] - corners[3])
    up = corners[0] - corners[3]
    up /= np.linalg.norm(up)
    centre = edge + up * width * 0.015
    angle = np.degrees(np.arctan2(up[1], up[0]))
    axes = (int(width * 0.07), int(width * 0.032))  # long axis points into the envelope
    skin = tuple(int(v) for v in np.array([105, 140, 190]) * rng.uniform(0.6, 1.15))
    cv2.ellipse(out, tuple(int(v) for v in centre), axes, angle, 0, 360, skin, -1, cv2.LINE_AA)
    nail = centre + up * axes[0] * 0.55
    cv2.ellipse(out, tuple(int(v) for v in nail), (int(axes[0] * 0.3), int(axes[1] * 0.6)),
                angle, 0, 360, tuple(min(255, c + 40) for c in skin), -1, cv2.LINE_AA)


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
    if rng.random() < 0.35:
        _thumb(out, corners, rng)
    # Light falls off across the frame, and a hand or phone casts a soft shadow. Both are
    # smooth, so they are computed on a 1/8 grid and scaled up (a full-size blur is slow).
    sw, sh = ow // 8, oh // 8
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    gx, gy = rng.uniform(-0.35, 0.35, 2)
    light = 1.0 + gx * (xx / sw - 0.5) + gy * (yy / sh - 0.5)
    if rng.random() < 0.7:
        shadow = np.zeros((sh, sw), np.float32)
        p = rng.uniform([0, 0], [sw, sh], (1, 2)).astype(np.int32)
        side = int(rng.integers(4))
        edge = [[0, 0], [sw, 0], [sw, sh], [0, sh]]
        poly = np.vstack([edge[side], edge[(side + 1) % 4], p]).astype(np.int32)
        cv2.fillPoly(shadow, [poly], 1.0)
        shadow = cv2.GaussianBlur(shadow, (0, 0), sw / 25)
        light *= 1.0 - rng.uniform(0.2, 0.4) * shadow
    light = cv2.resize(light, (ow, oh), interpolation=cv2.INTER_LINEAR)
    light = cv2.merge([(light * rng.uniform(0.85, 1.05)).astype(np.float32)] * 3)
    out = cv2.convertScaleAbs(cv2.multiply(out.astype(np.float32), light))
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.3))
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
    # Local thresholding, as archive scanners do: a global (Otsu) split would separate a
    # white label from the paper instead of ink from paper.
    block = max(31, out.shape[1] // 30) | 1
    bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                               block, int(rng.integers(18, 30)))
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
