"""Find rows of printed red/orange code boxes (France, China, Japan) in the working view.

A box is the hole inside a red/orange outline; a code field is a row of 4-8 such holes of
similar size, evenly spaced (one wider gap allowed: Japan's 3 + 4 grouping). Filled red
shapes (stamps, logos) and tick marks have no box-like holes, so they never form a row.
"""

from __future__ import annotations

import cv2
import numpy as np

from postread.field_view import Found, View

Rect = tuple[int, int, int, int]

MIN_CELLS, MAX_CELLS = 4, 8
"""Box rows outside this count are not postal-code fields."""
LINE_GAP = 15
"""Longest gap (working pixels) bridged in a box outline, e.g. where a digit crosses it."""
PALE_INK = 30
"""Darkness below the paper (levels) that counts as ink inside a box."""
OUTLINE_SUPPORT = 0.6
"""Share of a box's outline the colour mask must show for a box whose hole was lost."""
HOLE_FILL = 0.6
"""A hole in the box print must fill this share of its bounding rectangle."""
INK_HOLE_FILL = 0.85
"""Without colour, a hole in the ink itself is a box when it fills this share of its
rectangle: printed boxes are square-cornered, while the holes of 0, 6, 8, O or D are
round (an ellipse fills 0.79)."""
CUT_SHORT = 0.85
"""A hole narrower than this share of its row's boxes was cut short by a stroke on a side."""
INK_ROW_SEED = 3
"""Square ink holes side by side that start a box row (the lines' rows start from one)."""


def _holes(mask: np.ndarray, fill: float) -> list[Rect]:
    """Box-shaped holes in ``mask``: upright, box-sized, filling ``fill`` of their rectangle."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    holes = []
    max_height = mask.shape[0] * 0.3
    for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
        if parent < 0:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        if not (10 <= h <= max_height and 0.45 <= w / h <= 1.7):
            continue
        if cv2.contourArea(contour) < fill * w * h:
            continue
        holes.append((x, y, w, h))
    return holes


def box_holes(view: View) -> list[Rect]:
    """Rectangular holes in the red/orange print: candidate code boxes."""
    # Ink crossing a box line interrupts it in the colour mask. Closing along straight
    # lines only (a thin horizontal, then vertical kernel) bridges those gaps without
    # filling the boxes, which are much larger than the kernel.
    mask = cv2.morphologyEx(view.boxes, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((1, LINE_GAP), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((LINE_GAP, 1), np.uint8))
    return _holes(mask, HOLE_FILL)


def ink_holes(view: View) -> list[Rect]:
    """Without colour: square holes in the ink itself, candidate boxes the lines missed.

    Without colour the boxes are sought as long straight lines; a small box row (the
    sender's) has shorter sides, and its frames would pass for a row of 0s.
    """
    return _holes(view.ink, INK_HOLE_FILL) if view.colourless else []


def widest_holes(holes: list[Rect], wider: list[Rect]) -> list[Rect]:
    """Each hole replaced by the largest of ``wider`` that contains it (2 px leeway).

    Without colour a digit's straight stroke that touches a box's line is taken for
    an outline too, and the box's hole in the lines ends at the stroke: boxes read
    too short or narrow, and the row's cells took that size (a 2's base left the
    bottom lines in every box of a row, read 5262297 as 5362227). The hole in the
    ink around the same box is the box's whole inside, the digit an island within it.
    No hole in ink can hold a box line, so a hole that contains a box's hole is that box.
    """
    def contains(outer: Rect, inner: Rect) -> bool:
        ox, oy, ow, oh = outer
        ix, iy, iw, ih = inner
        return (ox - 2 <= ix and oy - 2 <= iy
                and ix + iw <= ox + ow + 2 and iy + ih <= oy + oh + 2)

    widened = []
    for hole in holes:
        around = [w for w in wider if contains(w, hole)]
        widened.append(max(around, key=lambda r: r[2] * r[3]) if around else hole)
    return widened


def _neighbours(a: Rect, b: Rect) -> bool:
    """True when box b can follow box a in the same row (b to the right of a)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    size_ok = 0.75 < bh / ah < 1.33 and 0.6 < bw / aw < 1.66
    aligned = abs((ay + ah / 2) - (by + bh / 2)) < 0.3 * max(ah, bh)
    gap = bx - (ax + aw)
    return size_ok and aligned and -0.2 * aw <= gap <= 2.2 * aw


def group_rows(holes: list[Rect]) -> list[list[Rect]]:
    """Chain holes left to right into rows of similar, aligned, closely spaced boxes."""
    holes = sorted(holes)
    rows: list[list[Rect]] = []
    used: set[int] = set()
    for start in range(len(holes)):
        if start in used:
            continue
        row, last = [holes[start]], start
        for index in range(start + 1, len(holes)):
            if index not in used and _neighbours(holes[last], holes[index]):
                row.append(holes[index])
                used.add(index)
                last = index
        used.add(start)
        rows.append(row)
    return rows


def _evenly_spaced(row: list[Rect]) -> bool:
    """True when the pitch is regular, allowing one wider group gap (Japan's 3 + 4)."""
    pitches = np.diff([x + w / 2 for x, _, w, _ in row])
    typical = float(np.median(pitches))
    odd = np.sum(np.abs(pitches - typical) > 0.25 * typical)
    return odd <= 1 and float(pitches.max()) < 2.2 * typical


class _Outlines:
    """Where box outlines may run (``near``) and where print is solid, counted fast.

    A row is completed by trying ~100 candidate boxes per step; running sums answer each
    candidate's counts in a few lookups instead of slicing and averaging the masks.
    """

    def __init__(self, near: np.ndarray, solid: np.ndarray):
        # Summed-area tables: [y, x] holds the mask's count over [:y, :x].
        self.near = cv2.integral(near.view(np.uint8))
        self.solid = cv2.integral(solid.view(np.uint8))
        self.shape = near.shape

    def support(self, xs: np.ndarray, ys: np.ndarray, w: int, h: int) -> np.ndarray:
        """For boxes (xs, ys, w, h), the share of each outline that ``near`` covers.

        0 for a box too near the image's edge, or not hollow (its middle a quarter print
        or more: a stamp, a coloured desk at a photo's edge).
        """
        height, width = self.shape
        inside = (xs >= 2) & (ys >= 2) & (xs + w + 2 < width) & (ys + h + 2 < height)
        x, y = np.where(inside, xs, 0), np.where(inside, ys, 0)
        # The outline: rows y and y + h over columns x..x+w-1, columns x and x + w over
        # rows y..y+h-1.
        near = self.near
        covered = (_count(near, y, y + 1, x, x + w) + _count(near, y + h, y + h + 1, x, x + w)
                   + _count(near, y, y + h, x, x + 1) + _count(near, y, y + h, x + w, x + w + 1))
        share = np.where(inside, covered / (2 * w + 2 * h), 0.0)
        return np.where(self._hollow(xs, ys, w, h), share, 0.0)

    def _hollow(self, xs: np.ndarray, ys: np.ndarray, w: int, h: int) -> np.ndarray:
        """Whether the middle of each box is mostly free of print (a box, not a colour patch).

        The middle is ``solid[y + h//5 : y + h - h//5, x + w//5 : x + w - w//5]`` with
        starts clipped at 0, as numpy slices it (a negative stop counts from the end).
        """
        height, width = self.shape
        r0, r1 = _slice_bounds(ys + h // 5, ys + h - h // 5, height)
        c0, c1 = _slice_bounds(xs + w // 5, xs + w - w // 5, width)
        size = np.maximum(r1 - r0, 0) * np.maximum(c1 - c0, 0)
        printed = _count(self.solid, r0, np.maximum(r1, r0), c0, np.maximum(c1, c0))
        return (size > 0) & (printed < 0.25 * np.maximum(size, 1))


def _count(table: np.ndarray, r0: np.ndarray, r1: np.ndarray, c0: np.ndarray,
           c1: np.ndarray) -> np.ndarray:
    """The mask's count over rows r0..r1-1 and columns c0..c1-1, from its summed-area table."""
    return table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]


def _slice_bounds(start: np.ndarray, stop: np.ndarray, length: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The rows (or columns) ``a[max(0, start):stop]`` takes from an axis of ``length``."""
    start = np.minimum(np.maximum(start, 0), length)
    stop = np.clip(np.where(stop < 0, stop + length, stop), 0, length)
    return start, stop


def _outline_evidence(view: View) -> np.ndarray:
    """Where a box outline may run (2 px tolerance): the print, or without colour any ink.

    A binarised scan's thin box lines come out dotted and broken wherever a digit
    crosses them, so only a part survives as straight lines; the ink itself still
    shows the whole outline.
    """
    mask = view.boxes | view.ink if view.colourless else view.boxes
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0


def _step(outlines: _Outlines, edge: Rect, pitch: float, side: int) -> Rect | None:
    """The box one step left or right of ``edge`` whose outline the mask shows best.

    The step is searched from a little under the pitch to half a box over it, which
    also crosses a wider group gap (Japan's 3 + 4, with its hyphen mark). A place whose
    middle is print too (a stamp, a coloured desk at a photo's edge) is no box.
    """
    x, y, w, h = edge
    steps = np.arange(int(pitch - 0.1 * w), int(pitch + 0.5 * w) + 1)
    # One row of candidates per vertical offset dy = -2..2.
    support = outlines.support((x + side * steps)[None, :],
                               np.arange(y - 2, y + 3)[:, None], w, h)
    dy, _ = np.unravel_index(int(np.argmax(support)), support.shape)
    best = float(support.max())
    if best < OUTLINE_SUPPORT:
        return None
    # The outline lines have a width and the mask is dilated: the support has a plateau,
    # whose middle is the box.
    plateau = steps[support[dy] >= best - 0.02]
    return (int(x + side * int(np.median(plateau))), y + int(dy) - 2, w, h)


def _between(outlines: _Outlines, left: Rect, right: Rect, pitch: float) -> Rect | None:
    """The next box after ``left`` when the gap to ``right`` is whole pitches, else None.

    Such a gap holds no group gap, so its boxes are evenly spaced. Searched for instead,
    a binarised scan's box is pulled toward a stroke across its side (without colour
    all ink counts as outline) and its cell cut the digit.
    """
    x, y, w, h = left
    count = round((right[0] - x) / pitch)
    if count < 2 or abs(right[0] - x - count * pitch) > 0.15 * w:
        return None
    at = x + int(round((right[0] - x) / count))
    support = outlines.support(np.array([at]), np.array([y]), w, h)
    return (at, y, w, h) if support[0] >= OUTLINE_SUPPORT else None


def _pitch(outlines: _Outlines, row: list[Rect], w: int, h: int) -> float:
    """Distance between neighbouring boxes: from adjacent holes, else from the outlines."""
    steps = [b[0] - a[0] for a, b in zip(row[:-1], row[1:], strict=True)]
    adjacent = [s for s in steps if 0.8 * w < s < 1.45 * w]
    if adjacent:
        shortest = min(adjacent)
        return float(np.median([s for s in adjacent if s < 1.15 * shortest]))
    seed = (row[0][0], row[0][1], w, h)
    found = _step(outlines, seed, 1.0 * w, 1) or _step(outlines, seed, 1.0 * w, -1)
    return float(abs(found[0] - seed[0])) if found else 0.0


def complete_row(view: View, row: list[Rect], outlines: _Outlines) -> list[Rect]:
    """Add boxes whose hole was lost (heavy ink across the outline) but whose outline is there.

    Ink crossing a box's outline breaks its hole, so a row may arrive with boxes
    missing anywhere. The pitch comes from neighbouring holes (or the outlines); gaps
    are filled and the row is extended left and right, one box at a time, while the
    colour mask shows a box outline at about the next pitch.
    """
    w = int(np.median([b[2] for b in row]))
    h = int(np.median([b[3] for b in row]))
    # A hole cut short (a stroke taken for an outline, ink across a line) would put its
    # cell off the row: every cell gets the row's size and top (the view is upright).
    top = int(np.median([b[1] for b in row if abs(b[3] - h) <= 0.1 * h] or [row[0][1]]))
    # A hole cut short at a side is no guide to where its box is (an 8 across a side
    # moved its box and gave the row a pitch 20% short); its box is found like a lost one.
    row = [(x, top, w, h) for x, _, hole_w, _ in row if hole_w >= CUT_SHORT * w]
    pitch = _pitch(outlines, row, w, h)
    if pitch <= 0:
        return row
    filled = [row[0]]
    for box in row[1:]:
        while box[0] - filled[-1][0] > 1.6 * pitch and len(filled) < MAX_CELLS:
            guess = _between(outlines, filled[-1], box, pitch) \
                or _step(outlines, (filled[-1][0], top, w, h), pitch, 1)
            if guess is None or guess[0] + 0.5 * w > box[0]:
                break
            filled.append(guess)
        filled.append(box)
    for side in (-1, 1):
        while len(filled) < MAX_CELLS:
            edge = filled[0] if side < 0 else filled[-1]
            guess = _step(outlines, (edge[0], top, w, h), pitch, side)
            if guess is None:
                break
            filled = [guess, *filled] if side < 0 else [*filled, guess]
    if view.colourless:
        filled = [_snap(view.boxes, box) for box in filled]
    return filled


def _snap(lines: np.ndarray, box: Rect) -> Rect:
    """Move a box sideways onto the straight lines of its outline, where they show.

    Without colour the row is completed on all ink, digits included, so a box may sit
    a few pixels off; its surviving outline lines say exactly where it is.
    """
    x, y, w, h = box
    near = cv2.dilate(lines[max(0, y - 4):y + h + 5], np.ones((3, 3), np.uint8)) > 0
    shifts = np.arange(-(w // 6), w // 6 + 1)
    sides = np.array([near[:, x + d].mean() + near[:, x + w + d].mean()
                      if 0 <= x + d and x + w + d < near.shape[1] else 0.0 for d in shifts])
    if sides.max() < 0.6:
        return box
    plateau = shifts[sides >= sides.max() - 0.05]
    return (x + int(np.median(plateau)), y, w, h)


def cell_ink(view: View, cell: Rect) -> float:
    """Share of a box's inner area covered by ink (the outline's own pixels excluded).

    Pale ink (pencil on a faint envelope) counts: the image-wide ink mask can miss it
    when dark print sets its threshold, so the darkness itself is read where there is one.
    """
    x, y, w, h = cell
    inset_x, inset_y = max(1, w // 8), max(1, h // 8)
    rows, cols = slice(y + inset_y, y + h - inset_y), slice(x + inset_x, x + w - inset_x)
    inner = view.ink[rows, cols] > 0
    if view.darkness is not None and not view.colourless:
        inner |= (view.darkness[rows, cols] > PALE_INK) & (view.boxes[rows, cols] == 0)
    return float(np.mean(inner)) if inner.size else 0.0


def _describe(view: View, row: list[Rect], largest: float) -> Found:
    xs = [x for x, _, _, _ in row] + [x + w for x, _, w, _ in row]
    ys = [y for _, y, _, _ in row] + [y + h for _, y, _, h in row]
    height = float(np.median([h for _, _, _, h in row]))
    width = float(np.median([w for _, _, w, _ in row]))
    filled = sum(cell_ink(view, cell) > 0.02 for cell in row)
    image_h, image_w = view.ink.shape
    top = 1.0 - (min(ys) + max(ys)) / (2 * image_h)
    size = height / largest
    score = 0.3 + 0.45 * filled / len(row) + 0.15 * size + 0.1 * top
    # Ink crossing the box edges must be kept: the field reaches beyond the boxes.
    pad_x, pad_y = int(0.3 * width), int(0.45 * height)
    x0, y0 = max(0, min(xs) - pad_x), max(0, min(ys) - pad_y)
    x1, y1 = min(image_w, max(xs) + pad_x), min(image_h, max(ys) + pad_y)
    where = "upper" if top > 0.5 else "lower"
    side = "left" if (min(xs) + max(xs)) / 2 < image_w / 2 else "right"
    evidence = (
        f"row of {len(row)} printed boxes ({filled} with ink), {height:.0f} px tall "
        f"({size:.0%} of the largest row), {where} {side} of the envelope"
    )
    return Found(
        rect=(x0, y0, x1 - x0, y1 - y0),
        kind="boxes",
        score=round(min(score, 1.0), 3),
        evidence=evidence,
        cells=tuple(row),
    )


def _inside(box: Rect, row: list[Rect]) -> bool:
    """True when ``box`` is (about) one of the row's boxes."""
    x, y, w, h = box
    return any(abs(x - bx) < 0.5 * w and abs(y - by) < 0.5 * h for bx, by, _, _ in row)


def find_box_rows(view: View) -> list[Found]:
    """Every plausible code-box row in the view, scored (unsorted)."""
    # Longest first; a lone hole is completed too (its neighbours' holes may all be
    # broken by ink), unless it already sits in a completed row.
    in_ink = ink_holes(view)
    seeds = sorted(group_rows(widest_holes(box_holes(view), in_ink)), key=len, reverse=True)
    # Rows the lines found come first: the ink's holes only add rows they missed, and
    # only from a few square holes in a row (one is a letter's or a stamp's frame).
    seeds += sorted((row for row in group_rows(in_ink) if len(row) >= INK_ROW_SEED),
                    key=len, reverse=True)
    rows: list[list[Rect]] = []
    outlines = _Outlines(_outline_evidence(view), view.boxes > 0) if seeds else None
    for seed in seeds:
        if any(_inside(seed[0], row) for row in rows):
            continue
        rows.append(complete_row(view, seed, outlines))
    rows = [row for row in rows if MIN_CELLS <= len(row) <= MAX_CELLS and _evenly_spaced(row)]
    if not rows:
        return []
    largest = max(float(np.median([h for _, _, _, h in row])) for row in rows)
    return [_describe(view, row, largest) for row in rows]
