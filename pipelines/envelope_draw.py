"""Drawing primitives for synthetic envelopes: paper, text, ink, box rows and distractors.

Everything is drawn on a ``Canvas`` whose sizes are given at the reference resolution
(1600 px wide) and scaled by ``canvas.s``, so the same layout renders a thumbnail or a
4600 px scan. Handwritten digits are composited as ink (multiply blend), which is how
ink over a printed orange box really looks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

Box = tuple[int, int, int, int]

PRINTED_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX,
                 cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)
HAND_FONTS = (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
PAPERS = {"white": (244, 245, 246), "grey": (212, 214, 214), "buff": (196, 222, 238)}
INKS = {"black": (35, 30, 30), "blue": (150, 60, 25), "pencil": (105, 105, 110)}
ORANGE, RED = (40, 135, 245), (45, 40, 215)
_CAP = 22.0  # Hershey capital height at fontScale 1, in pixels
MESSY_MAX_WIDTH = 1.1
"""Widest a digit written in a box gets, relative to the box's width."""


class DigitSource(Protocol):
    """Anything that can hand out one handwritten digit as ink alpha."""

    last_source: str
    """Which stored glyph ``sample`` drew last ("test:660" for MNIST's test image 660), or
    '' for a source that draws its own (the procedural pen)."""

    def sample(self, digit: int, rng: np.random.Generator, height_px: int = 64,
               thickness: float | None = None, broken: float = 0.0) -> np.ndarray:
        """Tight uint8 ink alpha (255 = ink) of ``digit``, about ``height_px`` tall."""
        ...


@dataclass
class Canvas:
    """An envelope being drawn, with the style choices that stay fixed for one envelope."""

    img: np.ndarray
    s: float
    rng: np.random.Generator
    digits: DigitSource
    ink: tuple[int, int, int]
    pen: float
    hand_font: int
    messy: bool = False
    faint: bool = False
    addr_font: int = cv2.FONT_HERSHEY_SIMPLEX
    addr_color: tuple[int, int, int] = (35, 35, 35)
    digit_boxes: list[Box] = field(default_factory=list)
    digit_sources: list[str] = field(default_factory=list)
    """Where each code digit's glyph came from (``MnistDigits``: "test:660"), or ''."""

    @property
    def w(self) -> int:
        """Width in pixels."""
        return int(self.img.shape[1])

    @property
    def h(self) -> int:
        """Height in pixels."""
        return int(self.img.shape[0])

    def p(self, v: float) -> int:
        """A reference-resolution length in this canvas' pixels."""
        return int(round(v * self.s))


def new_canvas(width: int, height: int, paper: str, rng: np.random.Generator) -> np.ndarray:
    """Paper of one tint with low-frequency mottling, so flat-field tricks don't work."""
    base = np.array(PAPERS[paper], np.float32)
    low = np.clip(base + rng.normal(0, 2.5, (9, 16, 1)), 0, 255).astype(np.uint8)
    return cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)


def text(cv: Canvas, s: str, x: float, y: float, cap: float, *, font: int | None = None,
         color: tuple[int, int, int] | None = None, weight: float = 1.0) -> int:
    """Draw a line of text with its baseline at ``y``; returns the x where it ends."""
    font = cv.hand_font if font is None else font
    color = cv.ink if color is None else color
    scale = cv.p(cap) / _CAP
    thick = max(1, int(round(scale * 1.6 * weight)))
    cv2.putText(cv.img, s, (cv.p(x), cv.p(y)), font, scale, color, thick, cv2.LINE_AA)
    width = cv2.getTextSize(s, font, scale, thick)[0][0]
    return int(round(cv.p(x) + width) / cv.s)


def ink(cv: Canvas, alpha: np.ndarray, x: int, y: int, color: tuple[int, int, int],
        strength: float = 1.0) -> Box | None:
    """Multiply-blend ink alpha onto the canvas at pixel (x, y); returns its clipped box."""
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, cv.w), min(y + h, cv.h)
    if x1 <= x0 or y1 <= y0:
        return None
    a = alpha[y0 - y: y1 - y, x0 - x: x1 - x].astype(np.float32)[..., None] * (strength / 255)
    tint = np.array(color, np.float32) / 255
    region = cv.img[y0:y1, x0:x1].astype(np.float32)
    cv.img[y0:y1, x0:x1] = (region * (1 - a * (1 - tint))).astype(np.uint8)
    return (x0, y0, x1 - x0, y1 - y0)


def hand_digit(cv: Canvas, d: int, height: float) -> np.ndarray:
    """One handwritten digit from the source, in this envelope's pen."""
    pen = max(1.2, cv.pen * cv.s)
    return cv.digits.sample(d, cv.rng, max(8, cv.p(height)), pen, 0.2 if cv.messy else 0.0)


def _record(cv: Canvas, box: Box) -> None:
    """Note a code digit just drawn: its box, and which glyph the source drew it from."""
    cv.digit_boxes.append(box)
    # evaluate_reads compares the reader with the classifier on the very same glyphs.
    cv.digit_sources.append(cv.digits.last_source)


def ink_strength(cv: Canvas) -> float:
    """Pencil is lighter than pen; faint envelopes get lighter ink too."""
    strength = 0.75 if cv.ink == INKS["pencil"] else 1.0
    return strength * (0.8 if cv.faint else 1.0)


def freeform(cv: Canvas, digits: str, x: float, baseline: float, height: float,
             record: bool = True) -> float:
    """Handwrite a row of digits from (x, baseline); '-' draws a dash. Returns the end x.

    ``record`` adds each digit's box to ``cv.digit_boxes`` (off for street numbers).
    """
    px = cv.p(x)
    for ch in digits:
        if ch == "-":
            dash = cv.p(height * cv.rng.uniform(0.25, 0.4))
            y = cv.p(baseline - height * 0.5)
            cv2.line(cv.img, (px + cv.p(4), y), (px + cv.p(4) + dash, y), cv.ink,
                     max(1, int(cv.pen * cv.s)), cv2.LINE_AA)
            px += dash + cv.p(height * 0.25)
            continue
        a = hand_digit(cv, int(ch), height * cv.rng.uniform(0.92, 1.08))
        y = cv.p(baseline + cv.rng.normal(0, height * 0.04)) - a.shape[0]
        box = ink(cv, a, px, y, cv.ink, ink_strength(cv))
        if box and record:
            _record(cv, box)
        # Messy hands let digits touch and cross a little; much deeper and one digit's
        # strokes run through the next (a 0 drawn across a 9's stem), which no one reads.
        gap = cv.rng.uniform(-0.07, 0.02) if cv.messy else cv.rng.uniform(0.12, 0.32)
        px += a.shape[1] + cv.p(height * gap)
    return px / cv.s


def box_row(cv: Canvas, x: float, y: float, n: int, w: float, h: float, gap: float,
            color: tuple[int, int, int], *, hyphen_after: int | None = None,
            line: float = 2.5) -> list[Box]:
    """Print a row of empty boxes; returns each cell's box in pixels."""
    if cv.faint:
        mix = cv.rng.uniform(0.3, 0.5)  # a pale print: the colour mixed into the paper
        paper = cv.img[cv.p(y), cv.p(x)].astype(np.float32)
        color = tuple(int(c * mix + p * (1 - mix)) for c, p in zip(color, paper, strict=True))
        line = 1.0
    thick = max(1, cv.p(line))
    cells, cx = [], x
    for i in range(n):
        box = (cv.p(cx), cv.p(y), cv.p(w), cv.p(h))
        cv2.rectangle(cv.img, box[:2], (box[0] + box[2], box[1] + box[3]), color, thick)
        cells.append(box)
        cx += w + gap
        if hyphen_after is not None and i == hyphen_after - 1:
            mid = cv.p(y + h / 2)
            cv2.line(cv.img, (cv.p(cx + gap), mid), (cv.p(cx + 2.2 * gap), mid), color, thick)
            cx += 3 * gap
    return cells


def fill_boxes(cv: Canvas, cells: list[Box], code: str) -> None:
    """Handwrite one digit per cell; messy hands overflow and cross the printed edges."""
    for (bx, by, bw, bh), ch in zip(cells, code, strict=False):
        frac = cv.rng.uniform(0.85, 1.05) if cv.messy else cv.rng.uniform(0.58, 0.78)
        a = hand_digit(cv, int(ch), bh * frac / cv.s)
        if a.shape[1] > MESSY_MAX_WIDTH * bw:
            # A box holds the hand sideways: a writer who overflows it goes up and down
            # rather than writing on top of the next digit (a wide MNIST 0 or 2 at the
            # box's full height would cover half its neighbour, which nobody could read).
            f = MESSY_MAX_WIDTH * bw / a.shape[1]
            a = cv2.resize(a, (max(1, int(a.shape[1] * f)), max(1, int(a.shape[0] * f))),
                           interpolation=cv2.INTER_AREA)
        # Messy hands cross the printed edges but stay mostly in their own cell.
        ox, oy = (0.1, 0.15) if cv.messy else (0.05, 0.06)
        x = bx + (bw - a.shape[1]) // 2 + int(np.clip(cv.rng.normal(0, bw * ox), -bw / 4, bw / 4))
        y = by + (bh - a.shape[0]) // 2 + int(np.clip(cv.rng.normal(0, bh * oy), -bh / 4, bh / 4))
        box = ink(cv, a, x, y, cv.ink, ink_strength(cv))
        if box:
            _record(cv, box)


def printed_in_boxes(cv: Canvas, cells: list[Box], code: str) -> None:
    """A printed code in a box row (a sender's pre-printed code)."""
    font = cv.rng.choice(PRINTED_FONTS)
    for (bx, by, bw, bh), ch in zip(cells, code, strict=False):
        scale = bh * 0.55 / _CAP
        tw, th = cv2.getTextSize(ch, font, scale, 1)[0]
        cv2.putText(cv.img, ch, (bx + (bw - tw) // 2, by + (bh + th) // 2), font, scale,
                    (40, 40, 40), max(1, int(scale * 1.5)), cv2.LINE_AA)


def corner_marks(cv: Canvas, x0: float, y0: float, x1: float, y1: float,
                 color: tuple[int, int, int]) -> None:
    """The 「 」 marks that frame a French address zone."""
    t, arm = max(1, cv.p(4)), cv.p(40)
    a, b = (cv.p(x0), cv.p(y0)), (cv.p(x1), cv.p(y1))
    cv2.line(cv.img, a, (a[0] + arm, a[1]), color, t)
    cv2.line(cv.img, a, (a[0], a[1] + arm), color, t)
    cv2.line(cv.img, b, (b[0] - arm, b[1]), color, t)
    cv2.line(cv.img, b, (b[0], b[1] - arm), color, t)


def stamp(cv: Canvas, x: float, y: float, w: float = 130, h: float = 160) -> None:
    """A red postage stamp with a perforated edge and a printed value."""
    col = RED if cv.rng.random() < 0.7 else (60, 110, 40)
    p0, p1 = (cv.p(x), cv.p(y)), (cv.p(x + w), cv.p(y + h))
    cv2.rectangle(cv.img, p0, p1, col, -1)
    for k in np.arange(0, w, 12):
        for yy in (y, y + h):
            cv2.circle(cv.img, (cv.p(x + k), cv.p(yy)), max(1, cv.p(4)), (240, 240, 240), -1)
    cv2.rectangle(cv.img, (cv.p(x + 15), cv.p(y + 20)), (cv.p(x + w - 15), cv.p(y + h - 45)),
                  (200, 200, 230), -1)
    value = f"{cv.rng.integers(1, 3)}.{cv.rng.integers(10, 99)}"
    text(cv, value, x + 20, y + h - 12, 24, font=cv2.FONT_HERSHEY_DUPLEX, color=(245, 245, 245))


def postmark(cv: Canvas, x: float, y: float, town: str) -> None:
    """A round postmark with a town and a date, and the wavy cancellation lines."""
    col = (95, 70, 80)
    r = 75
    c = (cv.p(x), cv.p(y))
    cv2.circle(cv.img, c, cv.p(r), col, max(1, cv.p(3)), cv2.LINE_AA)
    cv2.circle(cv.img, c, cv.p(r - 12), col, max(1, cv.p(1.5)), cv2.LINE_AA)
    date = f"{cv.rng.integers(1, 29):02d}-{cv.rng.integers(1, 13):02d}-{cv.rng.integers(0, 25):02d}"
    text(cv, town[:10], x - 48, y - 18, 15, font=cv2.FONT_HERSHEY_SIMPLEX, color=col)
    text(cv, date, x - 50, y + 12, 18, font=cv2.FONT_HERSHEY_SIMPLEX, color=col)
    text(cv, str(cv.rng.integers(10, 99)), x - 12, y + 40, 14,
         font=cv2.FONT_HERSHEY_SIMPLEX, color=col)
    for k in range(4):
        xs = np.arange(x + r + 10, x + r + 330, 6.0)
        ys = y - 45 + 28 * k + 8 * np.sin(xs / 25.0)
        pts = np.column_stack([xs * cv.s, ys * cv.s]).astype(np.int32)
        cv2.polylines(cv.img, [pts], False, col, max(1, cv.p(2.5)), cv2.LINE_AA)


def ticks(cv: Canvas, color: tuple[int, int, int]) -> None:
    """A row of short barcode ticks along the bottom edge (sorting-machine marks)."""
    y = cv.h / cv.s - 40
    x = cv.rng.uniform(80, 400)
    end = x + cv.rng.uniform(500, 1000)
    while x < end:
        tall = cv.rng.random() < 0.5
        y0 = y - (28 if tall else 14)
        cv2.line(cv.img, (cv.p(x), cv.p(y0)), (cv.p(x), cv.p(y)), color, max(1, cv.p(4)))
        x += 11


def postage_text(cv: Canvas, x: float, y: float, label: str) -> None:
    """A printed franking/postage imprint with digits, e.g. 'LA POSTE 38909A'."""
    col = ORANGE if cv.rng.random() < 0.5 else (60, 60, 60)
    cv2.rectangle(cv.img, (cv.p(x), cv.p(y)), (cv.p(x + 260), cv.p(y + 110)), col,
                  max(1, cv.p(3)))
    code = f"{cv.rng.integers(10000, 99999)}{chr(65 + cv.rng.integers(26))}"
    text(cv, label, x + 15, y + 42, 24, font=cv2.FONT_HERSHEY_DUPLEX, color=col)
    text(cv, code, x + 15, y + 90, 28, font=cv2.FONT_HERSHEY_SIMPLEX, color=col)
