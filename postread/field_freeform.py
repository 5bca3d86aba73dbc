"""Find free-form postal codes: runs of 4-9 digit-sized ink marks on one text line.

Ink components are grouped into characters (pieces of a broken stroke that overlap
horizontally are one character), characters into words (small gaps on one line), and a
word of 4-9 digit-sized characters - or two words joined by a hyphen, ZIP+4 - is a
candidate. The score prefers the recipient's block (centre/lower right), larger and
irregular (handwritten) marks, and codes that end their line; it penalises the sender's
corner (top left), marks inside a postmark ring and rows of uniform printed characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postread.field_view import Found, View

MIN_DIGITS, MAX_DIGITS = 4, 9


@dataclass(frozen=True)
class Mark:
    """One character-sized blob of ink: a digit, a letter, or a hyphen."""

    x: int
    y: int
    w: int
    h: int

    @property
    def cy(self) -> float:
        """Vertical centre."""
        return self.y + self.h / 2

    @property
    def right(self) -> int:
        """Right edge."""
        return self.x + self.w


def _components(ink: np.ndarray) -> list[Mark]:
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return [
        Mark(int(x), int(y), int(w), int(h))
        for x, y, w, h, area in stats[1:count]
        if area >= 6
    ]


def _join_pieces(marks: list[Mark]) -> list[Mark]:
    """Merge marks that overlap horizontally and sit close vertically (broken strokes)."""
    marks = sorted(marks, key=lambda m: m.x)
    merged: list[Mark] = []
    for mark in marks:
        for index, other in enumerate(merged):
            overlap = min(mark.right, other.right) - max(mark.x, other.x)
            narrow = min(mark.w, other.w)
            gap_y = max(mark.y, other.y) - min(mark.y + mark.h, other.y + other.h)
            tall = max(mark.h, other.h)
            if overlap > 0.5 * narrow and gap_y < 0.35 * tall:
                x0, y0 = min(mark.x, other.x), min(mark.y, other.y)
                x1 = max(mark.right, other.right)
                y1 = max(mark.y + mark.h, other.y + other.h)
                merged[index] = Mark(x0, y0, x1 - x0, y1 - y0)
                break
        else:
            merged.append(mark)
    return merged


def _is_hyphen(mark: Mark, height: float) -> bool:
    return mark.w >= 1.3 * mark.h and mark.h < 0.35 * height and 0.2 * height < mark.w < height


def _digit_count(mark: Mark) -> int:
    """How many digits a mark probably holds (touching digits make wide marks)."""
    return max(1, int(round(mark.w / (0.7 * mark.h))))


def _words(marks: list[Mark], min_h: float, max_h: float) -> list[list[Mark]]:
    """Chains of aligned, digit-sized marks separated by small gaps, left to right."""
    tall = sorted((m for m in marks if min_h <= m.h <= max_h and m.w <= 3.5 * m.h),
                  key=lambda m: m.x)
    words: list[list[Mark]] = []
    open_words: list[list[Mark]] = []
    for mark in tall:
        for word in open_words:
            last = word[-1]
            gap = mark.x - last.right
            same_line = abs(mark.cy - last.cy) < 0.4 * max(mark.h, last.h)
            similar = 0.55 < mark.h / last.h < 1.8
            if same_line and similar and -0.3 * last.h < gap < 0.75 * max(mark.h, last.h):
                word.append(mark)
                break
        else:
            word = [mark]
            open_words.append(word)
            words.append(word)
    return words


def _join_zip4(words: list[list[Mark]], hyphens: list[Mark]) -> list[list[Mark]]:
    """Add 5 + hyphen + 4 combinations (ZIP+4) as extra words, hyphen left out."""
    joined = []
    for first in words:
        for second in words:
            if second is first or second[0].x <= first[-1].right:
                continue
            height = float(np.median([m.h for m in first + second]))
            gap = second[0].x - first[-1].right
            aligned = abs(first[-1].cy - second[0].cy) < 0.4 * height
            has_hyphen = any(
                first[-1].right - 2 <= h.x and h.right <= second[0].x + 2
                and abs(h.cy - first[-1].cy) < 0.4 * height for h in hyphens
            )
            if aligned and has_hyphen and gap < 2.5 * height:
                joined.append(first + second)
    return joined


def _ring_boxes(marks: list[Mark], text_h: float) -> list[Mark]:
    """Large roughly square marks: postmark rings and stamp frames, whose insides we distrust."""
    return [m for m in marks if m.h > 3 * text_h and 0.6 < m.w / m.h < 1.6]


def _printed(word: list[Mark]) -> bool:
    """Uniform heights and bottoms are typical of print; handwriting wanders."""
    heights = np.array([m.h for m in word], float)
    bottoms = np.array([m.y + m.h for m in word], float)
    spread = heights.std() / heights.mean() + bottoms.std() / heights.mean()
    return bool(spread < 0.06)


def _score(word: list[Mark], view: View, text_h: float, rings: list[Mark]) -> Found:
    image_h, image_w = view.image.shape[:2]
    x0, y0 = min(m.x for m in word), min(m.y for m in word)
    x1, y1 = max(m.right for m in word), max(m.y + m.h for m in word)
    height = float(np.median([m.h for m in word]))
    cx, cy = (x0 + x1) / 2 / image_w, (y0 + y1) / 2 / image_h
    notes = []
    score = 0.45 + 0.1 * min(height / text_h, 2.0) / 2
    if cx < 0.4 and cy < 0.35:
        score -= 0.2
        notes.append("in the sender's corner")
    elif cx > 0.3 and cy > 0.35:
        score += 0.1
        notes.append("in the recipient's block")
    if _printed(word):
        score -= 0.1
        notes.append("uniform like print")
    inside = [r for r in rings if r.x <= x0 and r.y <= y0 and x1 <= r.right and y1 <= r.y + r.h]
    if inside:
        score -= 0.25
        notes.append("inside a postmark ring")
    digits = sum(_digit_count(m) for m in word)
    pad = int(0.25 * height)
    rect = (max(0, x0 - pad), max(0, y0 - pad),
            min(image_w, x1 + pad) - max(0, x0 - pad), min(image_h, y1 + pad) - max(0, y0 - pad))
    evidence = f"free-form row of {digits} digit-sized marks, {height:.0f} px tall"
    if notes:
        evidence += ", " + ", ".join(notes)
    return Found(rect=rect, kind="freeform", score=round(float(np.clip(score, 0, 0.85)), 3),
                 evidence=evidence, cells=tuple((m.x, m.y, m.w, m.h) for m in word))


def find_freeform(view: View) -> list[Found]:
    """Every plausible free-form code in the view, scored (unsorted)."""
    marks = _join_pieces(_components(view.ink))
    image_h = view.image.shape[0]
    sized = [m.h for m in marks if 0.012 * image_h <= m.h <= 0.2 * image_h]
    if not sized:
        return []
    text_h = float(np.median(sized))
    words = _words(marks, 0.012 * image_h, 0.2 * image_h)
    hyphens = [m for m in marks if _is_hyphen(m, text_h * 1.5)]
    candidates = [
        word for word in words + _join_zip4(words, hyphens)
        if MIN_DIGITS <= sum(_digit_count(m) for m in word) <= MAX_DIGITS
    ]
    rings = _ring_boxes(marks, text_h)
    return [_score(word, view, text_h, rings) for word in candidates]
