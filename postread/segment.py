"""Cut a field into digit crops, left to right, each normalised MNIST-style to 28 x 28.

Box rows give one crop per printed box: every ink component is given to the box it
mostly covers and kept whole, so a digit that crosses a box edge is not cut. Free-form
fields are cut by connected components: pieces of one broken digit (overlapping
horizontally) are joined, dots and hyphens are dropped, and marks too wide for one digit
are split at the ink's thinnest columns. ``segment(..., digits=N)`` forces N crops, which
lets the caller try alternatives and keep the one the classifier is surest of.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from postread.field_view import soft_ink
from postread.normalise import to_mnist
from postread.records import Box, CodeField, DigitCrop, FieldKind

INK_LEVEL = 96
"""Soft-ink level above which a pixel counts as ink for component analysis."""
JUDGED_MARGIN = 1.0
"""Another judged cut reading the pair differently within this (log units) is a doubt.
Free-form rows use 1.5 (``assemble.CUT_MARGIN``) because their cuts also pay a split
cost (1.5) that box cuts do not; 1.0 is what this margin was measured at."""
JUDGED_STEP = 0.12
"""How far (in box widths) to each side of the thinnest column a judged cut also tries."""
ONE_DIGIT_WIDTH = 0.9
"""Ink no wider than this many boxes is one digit, wherever it crosses a box edge."""
TALLER_THAN_BOX = 1.6
"""Ink this many box heights tall is no digit (a digit crossing its box edge is less)."""
FAINT_INK_LEVEL = 32
"""In box rows, paler ink still belongs to a digit when it is connected to ink above INK_LEVEL."""
PIECE_REACH = 0.1
"""A piece beyond the box row joins a digit this close to it (times the box height)."""
ONE_DIGIT_MAX_RATIO = 1.25
"""A free-form mark wider than this times its height holds two or more digits."""
BASE_MAX_WIDTH = 1.2
"""A 2's base drawn apart is at most this wide (times a digit's height); a longer flat
stroke under a digit is an underline."""


@dataclass(frozen=True)
class _Piece:
    """Part of the field's ink: which pixels, and their column range."""

    mask: np.ndarray
    x0: int
    x1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0


def _field_ink(image_bgr: np.ndarray, field: CodeField) -> np.ndarray:
    ink = field.ink_mask()
    if ink is not None:
        return ink
    x, y, w, h = field.box
    return soft_ink(image_bgr[y:y + h, x:x + w])


def _crop(ink: np.ndarray, mask: np.ndarray, origin: tuple[int, int]) -> DigitCrop | None:
    # The mask's bounding box, without listing its pixels (np.nonzero): a mask spans
    # the whole field, and crops are cut many times per field.
    x0, y0, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return None
    x1, y1 = x0 + w, y0 + h
    digit = np.where(mask[y0:y1, x0:x1], ink[y0:y1, x0:x1], 0).astype(np.uint8)
    box = (int(x0 + origin[0]), int(y0 + origin[1]), int(x1 - x0), int(y1 - y0))
    return DigitCrop(box=box, pixels=to_mnist(digit))


def _empty(box: Box) -> DigitCrop:
    return DigitCrop(box=box, pixels=np.zeros((28, 28), np.uint8), empty=True)


def _components(ink: np.ndarray, low: int | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """Connected ink components; with ``low``, by hysteresis (faint strokes joined to strong).

    A thin, pale stroke (a pen running dry, MNIST's grey loops) stays below INK_LEVEL and
    would be cut off its digit; with ``low`` a component is everything above ``low``
    that is connected to ink above INK_LEVEL, and wholly faint components count as empty.
    """
    binary = (ink >= (low or INK_LEVEL)).astype(np.uint8)
    # Anti-aliased halos count as part of the stroke they surround, not as separate specks.
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if low is not None:
        strong = np.zeros(count, bool)
        strong[np.unique(labels[ink >= INK_LEVEL])] = True
        stats[~strong, cv2.CC_STAT_AREA] = 0
    halo = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
    labels = np.where((labels == 0) & (ink > 0), halo, labels)
    return count, labels, stats


def _columns(cells: list[Box], width: int) -> list[tuple[int, int]]:
    """Each box's column range, the gaps between boxes shared at their middle."""
    bounds = [0]
    for (ax, _, aw, _), (bx, _, _, _) in zip(cells[:-1], cells[1:], strict=True):
        bounds.append((ax + aw + bx) // 2)
    bounds.append(width)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _cut_columns(pixels: np.ndarray, columns: list[tuple[int, int]],
                 cell_w: int) -> list[tuple[int, int]]:
    """Column ranges with each boundary moved to the thinnest ink near it (touching digits)."""
    profile = pixels.sum(axis=0).astype(np.float64)
    bounds = [columns[0][0]]
    for _, boundary in columns[:-1]:
        lo, hi = max(0, boundary - int(0.3 * cell_w)), boundary + int(0.3 * cell_w) + 1
        window = profile[lo:hi]
        # Ties (empty columns) go to the column nearest the printed boundary.
        best = np.flatnonzero(window == window.min()) + lo if window.size else [boundary]
        bounds.append(int(min(best, key=lambda c: abs(c - boundary))))
    bounds.append(columns[-1][1])
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _join_pieces(labels: np.ndarray, stats: np.ndarray, outside: list[int],
                 owned: list[np.ndarray], columns: list[tuple[int, int]], cell_h: int) -> None:
    """Give a box the small pieces beyond the row that nearly touch its digit (a pen skip)."""
    reach = max(2, int(round(PIECE_REACH * cell_h)))
    near = [cv2.dilate(mask.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) > 0
            if mask.any() and outside else None for mask in owned]
    for label in outside:
        if stats[label][cv2.CC_STAT_HEIGHT] > 0.6 * cell_h:
            continue
        pixels = labels == label
        mass = [float(pixels[:, a:b].sum()) for a, b in columns]
        best = int(np.argmax(mass))
        if near[best] is not None and mass[best] >= 0.75 * sum(mass) and near[best][pixels].any():
            owned[best] |= pixels


Judge = Callable[[np.ndarray], np.ndarray]
"""N x 28 x 28 crops -> N x 10 probabilities: the classifier, to check a cut."""


def segment_boxes(ink: np.ndarray, field: CodeField, judge: Judge | None = None
                  ) -> list[DigitCrop]:
    """One crop per box.

    A component whose ink lies mostly (75%) in one box's columns belongs to it whole,
    however far it crosses the box edge; one that straddles two boxes (touching digits)
    is cut at the boundary between them: at the thinnest ink near it, or, with a
    ``judge``, wherever of there, a little to each side and the printed edge both halves
    read surest.
    Marks mostly above or below the boxes (the address line above, the town line) are
    ignored.
    """
    origin = field.box[:2]
    cells = [(x - origin[0], y - origin[1], w, h) for x, y, w, h in field.cells]
    columns = _columns(cells, ink.shape[1])
    top = min(y for _, y, _, _ in cells)
    bottom = max(y + h for _, y, _, h in cells)
    count, labels, stats = _components(ink, FAINT_INK_LEVEL)
    owned = [np.zeros(ink.shape, bool) for _ in cells]
    doubts: dict[int, str] = {}
    outside = []
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        inside = min(y + h, bottom) - max(y, top)
        if area < 0.01 * cells[0][2] * cells[0][3]:
            continue
        # Far taller than the boxes: the photo's background or the paper's edge caught in
        # the field, cut into every box it crosses it would read as digits.
        if h > TALLER_THAN_BOX * cells[0][3]:
            continue
        # Marks mostly outside the row's height are not this row's digits, unless they
        # are a broken-off piece touching a digit (checked below).
        if inside < 0.3 * h:
            outside.append(label)
            continue
        pixels = labels == label
        mass = [float(pixels[:, a:b].sum()) for a, b in columns]
        best = int(np.argmax(mass))
        # Mostly in one box, or no wider than one box: one digit crossing the edge, whole.
        if mass[best] >= 0.75 * sum(mass) or w <= ONE_DIGIT_WIDTH * cells[0][2]:
            owned[best] |= pixels
            continue
        cuts = _cut_columns(pixels, columns, cells[0][2])
        shared = [i for i, m in enumerate(mass) if m > 0.1 * sum(mass)]
        if judge is not None and len(shared) == 2 and shared[1] == shared[0] + 1:
            left = shared[0]
            column, doubt = _judged_cut(ink, pixels, cuts[left][1], columns[left][1],
                                        cells[0][2], judge)
            cuts[left], cuts[left + 1] = (cuts[left][0], column), (column, cuts[left + 1][1])
            if doubt:
                doubts[left] = doubts[left + 1] = doubt
        for index, (a, b) in enumerate(cuts):
            if mass[index] > 0.1 * sum(mass):
                owned[index][:, a:b] |= pixels[:, a:b]
    _join_pieces(labels, stats, outside, owned, columns, cells[0][3])
    crops = []
    for index, ((cx, cy, cw, ch), mask) in enumerate(zip(cells, owned, strict=True)):
        crop = _crop(ink, mask, origin) if mask.sum() > 0.01 * cw * ch else None
        crop = crop or _empty((cx + origin[0], cy + origin[1], cw, ch))
        crops.append(replace(crop, doubt=doubts[index]) if index in doubts else crop)
    return crops


def _judged_cut(ink: np.ndarray, pixels: np.ndarray, column: int, printed: int, cell_w: int,
                judge: Judge) -> tuple[int, str]:
    """The column near ``column`` that cuts two touching digits into the surest pair.

    The thinnest ink is often not where two digits meet (a 9's loop against a 3), and may
    lie inside one of them (the thin base of a U-shaped 0); the classifier's confidence
    in both halves decides among it, a step to each side and the ``printed`` edge
    between the two boxes.
    Choosing the surest cut also makes its reading look surer than it is: when another
    cut reads the pair differently and nearly as surely, that is said (a doubt).
    """
    step = max(2, int(JUDGED_STEP * cell_w))
    xs = np.flatnonzero(pixels.any(axis=0))
    options = [c for c in (column - step, column, column + step) if xs[0] < c <= xs[-1]]
    if xs[0] < printed <= xs[-1] and all(abs(printed - c) > 2 for c in options):
        options.append(printed)
    if len(options) < 2:
        return column, ""
    crops = []
    # Not ``_crop``: to_mnist pads by its input's size, so these halves differ slightly
    # from the final crops, and the margin below was measured with them as they are.
    for c in options:
        left = np.where(pixels[:, :c], ink[:, :c], 0).astype(np.uint8)
        right = np.where(pixels[:, c:], ink[:, c:], 0).astype(np.uint8)
        crops += [to_mnist(left), to_mnist(right)]
    probabilities = judge(np.stack(crops))
    surest = np.log(np.clip(probabilities.max(axis=1), 1e-9, 1.0))
    scores = surest[0::2] + surest[1::2]
    labels = probabilities.argmax(axis=1)
    pairs = [f"{labels[2 * k]}{labels[2 * k + 1]}" for k in range(len(options))]
    best = int(np.argmax(scores))
    rivals = [k for k in range(len(options))
              if pairs[k] != pairs[best] and scores[best] - scores[k] < JUDGED_MARGIN]
    doubt = f"touching digits across two boxes also read {pairs[rivals[0]]}" if rivals else ""
    return options[best], doubt


def _marks(ink: np.ndarray) -> list[_Piece]:
    """Character marks: components with broken pieces joined and specks and hyphens dropped."""
    count, labels, stats = _components(ink)
    boxes = [tuple(int(v) for v in stats[i][:4]) + (i,) for i in range(1, count)]
    if not boxes:
        return []
    tallest = max(h for _, _, _, h, _ in boxes)
    groups: list[list[tuple[int, int, int, int, int]]] = []
    for box in sorted(boxes):
        x, _, w, _, _ = box
        for group in groups:
            gx0 = min(b[0] for b in group)
            gx1 = max(b[0] + b[2] for b in group)
            if min(x + w, gx1) - max(x, gx0) > 0.5 * min(w, gx1 - gx0):
                group.append(box)
                break
        else:
            groups.append([box])
    groups = _bars_joined(groups, tallest)
    pieces = []
    for group in groups:
        y0 = min(b[1] for b in group)
        y1 = max(b[1] + b[3] for b in group)
        x0 = min(b[0] for b in group)
        x1 = max(b[0] + b[2] for b in group)
        if y1 - y0 < 0.4 * tallest:  # a dot, a hyphen or dust
            continue
        ids = [b[4] for b in group]
        # One component (most marks): a comparison, several times quicker than np.isin.
        mask = labels == ids[0] if len(ids) == 1 else np.isin(labels, ids)
        pieces.append(_Piece(mask, x0, x1))
    return pieces


Extent = tuple[float, float, float, float]
"""(x0, y0, x1, y1) of a mark."""


def _flat_beside(bar: Extent, body: Extent, height: float) -> bool:
    """``bar`` is a short flat stroke over ``body``'s columns (or within a tenth of a digit)."""
    x0, y0, x1, y1 = bar
    bx0, _, bx1, _ = body
    reach = 0.1 * height
    return (y1 - y0 < 0.4 * height and x1 - x0 >= 1.5 * (y1 - y0)
            and bx0 - reach <= x1 and x0 <= bx1 + reach)


def lifted_bar(bar: Extent, body: Extent, height: float) -> bool:
    """Whether ``bar`` is a 5's flag or a 7's bar drawn apart at the top of ``body``.

    ``height`` is a whole digit's. The bar is flat and short, the body whole-height; the
    bar overlaps the body's columns (or lies within a tenth of a digit) and its bottom is
    in the body's upper third. A ZIP+4's hyphen sits at mid-height between digits, below
    their tops, and is no bar.
    """
    _, y0, _, y1 = bar
    _, by0, _, by1 = body
    return (_flat_beside(bar, body, height) and by1 - by0 >= 0.6 * height
            and by0 - 0.25 * height <= y0 and y1 <= by0 + 0.35 * (by1 - by0))


def dropped_base(bar: Extent, body: Extent, height: float) -> bool:
    """Whether ``bar`` is a 2's base drawn apart under ``body`` (its hook); see ``lifted_bar``.

    The base is flat and no wider than a digit (an underline is longer); the hook above
    it is nearly half a digit tall or more, and the two make most of one. The base
    overlaps the hook's columns (or lies within a tenth of a digit) and starts in the
    hook's lower third or just under it. Dropped as a hyphen, it left the hook to be read
    as a sure 7 (in 4,800 envelopes 6236 read 6736 at 0.997, accepted, and 20974327 read
    20974377 at 0.979).
    """
    x0, y0, x1, y1 = bar
    _, by0, _, by1 = body
    return (_flat_beside(bar, body, height) and x1 - x0 <= BASE_MAX_WIDTH * height
            and by1 - by0 >= 0.45 * height and max(y1, by1) - by0 >= 0.75 * height
            and by1 - 0.35 * (by1 - by0) <= y0 <= by1 + 0.15 * height)


def _bars_joined(groups: list[list[tuple[int, int, int, int, int]]], tallest: int
                 ) -> list[list[tuple[int, int, int, int, int]]]:
    """Groups with a flat stroke drawn apart at the top or bottom of a digit given to it.

    A 5's flag or a 7's bar lifted off the body overlaps it too little to be grouped with
    it, and alone it is too short for a digit: dropped as a hyphen, it leaves a 5 read
    as a sure 1. A flat group whose bottom is in the upper part of a whole-height group
    beside it (overlapping or within a tenth of a digit) joins it; so does a 2's base
    drawn apart under its hook (``dropped_base``). A ZIP+4's hyphen sits at mid-height
    between digits, below their tops and above their bottoms, and stays apart.
    """
    def extent(group):
        return (min(b[0] for b in group), min(b[1] for b in group),
                max(b[0] + b[2] for b in group), max(b[1] + b[3] for b in group))

    boxes = [extent(g) for g in groups]
    keep = [True] * len(groups)
    for i, bar in enumerate(boxes):
        bodies = [j for j, body in enumerate(boxes)
                  if j != i and keep[j] and (lifted_bar(bar, body, tallest)
                                             or dropped_base(bar, body, tallest))]
        if bodies:
            j = min(bodies, key=lambda k: abs((boxes[k][0] + boxes[k][2]) - (bar[0] + bar[2])))
            groups[j] = groups[j] + groups[i]
            boxes[j] = extent(groups[j])
            keep[i] = False
    return [g for g, kept in zip(groups, keep, strict=True) if kept]


def _height(piece: _Piece) -> int:
    # The mask's bounding box (the mask spans the whole field; asked ~150 times per scan).
    return int(cv2.boundingRect(piece.mask.view(np.uint8))[3])


def _split(piece: _Piece, parts: int, ink: np.ndarray) -> list[_Piece]:
    """Cut a wide mark into ``parts`` at the columns with the least ink near equal spacing."""
    profile = np.where(piece.mask, ink, 0).sum(axis=0).astype(np.float64)
    profile = np.convolve(profile, np.ones(3) / 3, mode="same")
    step = piece.width / parts
    cuts = [piece.x0]
    for k in range(1, parts):
        centre = piece.x0 + k * step
        lo, hi = int(centre - 0.3 * step), int(centre + 0.3 * step) + 1
        cuts.append(lo + int(np.argmin(profile[lo:hi])))
    cuts.append(piece.x1)
    result = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        mask = np.zeros_like(piece.mask)
        mask[:, a:b] = piece.mask[:, a:b]
        if mask.any():
            result.append(_Piece(mask, a, b))
    return result


def digits_in(width: float, height: float) -> int:
    """How many digits a mark this wide for its height holds, as segmentation cuts it.

    Touching digits make wide marks; a round digit a little wider than tall is still one.
    """
    ratio = width / height
    return 1 if ratio <= ONE_DIGIT_MAX_RATIO else max(2, int(round(ratio / 0.75)))


def _fit_count(pieces: list[_Piece], digits: int, ink: np.ndarray) -> list[_Piece]:
    """Split the widest marks or join the narrowest neighbours until there are ``digits``."""
    while len(pieces) < digits:
        widest = max(range(len(pieces)), key=lambda i: pieces[i].width / _height(pieces[i]))
        halves = _split(pieces[widest], 2, ink)
        if len(halves) < 2:
            break  # nothing left that can be cut
        pieces[widest:widest + 1] = halves
    while len(pieces) > digits:
        pair = min(range(len(pieces) - 1),
                   key=lambda i: pieces[i + 1].x1 - pieces[i].x0)
        a, b = pieces[pair], pieces[pair + 1]
        pieces[pair:pair + 2] = [_Piece(a.mask | b.mask, a.x0, b.x1)]
    return pieces


def segment_freeform(ink: np.ndarray, field: CodeField, digits: int | None) -> list[DigitCrop]:
    """Crops of a free-form row: components, broken pieces joined, touching digits split."""
    pieces = _marks(ink)
    if not pieces:
        return []
    height = float(np.median([_height(p) for p in pieces]))
    split = [part for p in pieces for part in _split(p, digits_in(p.width, height), ink)]
    if digits:
        split = _fit_count(sorted(split, key=lambda p: p.x0), digits, ink)
    crops = [_crop(ink, p.mask, field.box[:2]) for p in sorted(split, key=lambda p: p.x0)]
    return [c for c in crops if c is not None]


def segment(image_bgr: np.ndarray, field: CodeField, digits: int | None = None,
            judge: Judge | None = None) -> list[DigitCrop]:
    """Digit crops of a field, left to right (box rows: one per box, empty ones flagged).

    Args:
        image_bgr: The scan the field was found on.
        field: The field to cut.
        digits: For free-form fields, force this many crops (split or join marks).
        judge: For box rows, the classifier that checks where touching digits are cut.
    """
    ink = _field_ink(image_bgr, field)
    if field.kind is FieldKind.BOXES and field.cells:
        return segment_boxes(ink, field, judge)
    return segment_freeform(ink, field, digits)
