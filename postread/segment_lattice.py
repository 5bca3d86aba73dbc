"""Every plausible way to cut a free-form row into digits, for the classifier to choose from.

A free-form row is a sequence of ink marks (components, with pieces that overlap
horizontally already joined). Most marks are one digit, but a wide mark may be two or
three touching digits and a short one may be a piece of a broken digit. The lattice
holds, for each mark or pair of neighbouring marks, every reading of it as 1, 2 or 3
digit crops, each with a prior cost from its shape alone (log units: 0 is as plain as a
digit gets). ``best_path`` then picks the cheapest way through the row, adding the
classifier's surprise (-log p) for every digit, so the choice of cut is made by the
digits the classifier is surest of. The shape prior matters because an MNIST-style crop
has lost its size: a stray fragment normalised to 28 x 28 can look like a confident 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postread.field_view import mend_across
from postread.records import CodeField, DigitCrop
from postread.segment import FAINT_INK_LEVEL, _crop, _field_ink, _height, _marks, _Piece, _split

BAND = (0.12, 0.88)
"""Where the row lies in a free-form field's height (the locator pads it by 1/4 digit)."""
DIGIT_WIDTH = 0.75
"""Typical digit width in row heights (MNIST digits are a little narrower than tall)."""
FRAGMENT = 0.6
"""A mark shorter than this share of the row's height is a piece of a digit, not a digit."""
FRAGMENT_COST = 3.0
"""Prior cost of reading a fragment as a digit of its own."""
SPLIT_COST = 1.5
"""Prior cost of cutting one mark into touching digits (per cut). The halves of one wide
digit (an open 3, a 2 with a long base) each read as a confident digit once normalised,
so a cut must cost more than the width prior such a digit pays read whole (at 1.0, an
open 3 cut in two beat it and 3986 read 73986)."""
JOIN_COST = 0.6
"""Prior cost of reading two neighbouring marks as one broken digit."""
SKIP_COST = 1.5
"""Prior cost of leaving a fragment (a speck, a dotted trail) out of the code."""
WIDE = 1.5
"""One digit is rarely wider than this many row heights (a 5's long flag, a flat 2)."""
WIDE_COST = 4.0
"""Prior cost per row height that one digit is wider than WIDE row heights."""
PAIR_WIDTH = 1.9
"""One mark this many of the row's usual digit widths wide is likely two touching digits."""
PAIR_COST = 3.0
"""Prior cost per digit width that one digit is wider than PAIR_WIDTH digit widths.
A width prior by the digit read instead (an 8 or a 9 is rarely wider than tall, a 2 or a
5 often is; MNIST's 95th-99.9th percentiles of width / height per digit, the tail's
-log share as cost, half-weighted) was tried against touching pairs read as one sure
digit: on the messy subsets it mended 9 reads and broke 5, but on all six sets
development fell 93.43% -> 93.14% exact (fresh 92.80% -> 93.00%): a wide 3, 0 or 2 was
cut in two. Envelope digits read right are as wide as MNIST's (within ~0.1 at the
95th percentile), so the tail that holds the pairs also holds real wide digits."""
TALL = 1.5
"""A mark this many times the row's height is a line (a frame's or the paper's edge, a
stroke of the envelope's print), not a digit: it costs TALL_COST as one and may be left out."""
TALL_COST = 6.0
MAX_PARTS = 4
"""Most touching digits one mark is cut into (a messy hand runs 4 digits together)."""
PATH_REACH = 0.2
"""How far (times the mark's width) a bent cut may stray from its column."""
PATH_STEP = 0.3
"""What a bent cut pays to move one column over (times the darkest pixel's ink)."""
PAIR_WEIGHT = 0.5
"""Cost of reading a crop as one digit when the model's pair judge says it holds two:
PAIR_WEIGHT * -log(1 - p_pair), added to the classifier's surprise. The digit model alone
is often sure of a touching pair (an 89 read as an 8 at 0.998), and shape priors cannot
tell a pair from a wide digit (see PAIR_COST). Weights 0.5, 1 and 2 mended 13-14 of the
2,800 development envelopes and broke 2-5; 0.5 broke fewest."""
PAIR_CHANCE_MAX = 0.999
"""The pair judge's chance is capped here, so that no one crop costs more than ~3.5."""
RULE_LENGTH = 1.0
"""A straight horizontal run of ink at least this many field heights long is a rule (an
underline, a label's edge), never a digit's stroke: a digit is narrower than the field
is tall (the field is the row plus a quarter of a digit above and below)."""


@dataclass(frozen=True)
class Arc:
    """One reading of marks ``start`` .. ``end - 1`` as digit crops, left to right."""

    start: int
    end: int
    crops: tuple[DigitCrop, ...]
    cost: float
    """Prior cost from shape alone (log units)."""
    note: str
    """What the reading is: one digit, split in k, or two pieces joined."""


@dataclass(frozen=True)
class Lattice:
    """A row's marks and every arc through them."""

    marks: int
    """How many marks the row has (nodes are 0 .. marks)."""
    arcs: tuple[Arc, ...]
    leftover: float = 0.0
    """Ink in the row that is in no mark (dropped as specks), in typical digits' worth."""


def _row_height(pieces: list[_Piece]) -> float:
    heights = [_height(p) for p in pieces]
    tallest = max(heights)
    return float(np.median([h for h in heights if h >= 0.5 * tallest]))


def _fragment(piece: _Piece, row: float) -> bool:
    """True for a piece of a digit or a speckle: short, or a dotted trail of small dashes."""
    if _height(piece) < FRAGMENT * row:
        return True
    # Only the piece's columns (its ink reaches a pixel past them at most: the halo): the
    # components are the same, found in a strip instead of the whole field.
    strip = piece.mask[:, max(0, piece.x0 - 2):piece.x1 + 2]
    count, _, stats, _ = cv2.connectedComponentsWithStats(strip.astype(np.uint8))
    return count - 1 >= 3 and int(stats[1:, cv2.CC_STAT_HEIGHT].max()) < 0.4 * row


def _digit_cost(piece: _Piece, row: float, digit_w: float, fragment: bool | None = None
                ) -> float:
    """Shape cost of one crop read as one digit (``digit_w``: the row's usual digit width).

    ``fragment``: ``_fragment(piece, row)`` where the caller already knows it.
    """
    if fragment is None:
        fragment = _fragment(piece, row)
    cost = FRAGMENT_COST if fragment else 0.0
    if _height(piece) > TALL * row:
        cost += TALL_COST
    if piece.width > WIDE * row:
        cost += WIDE_COST * (piece.width / row - WIDE)
    # The classifier reads two touching digits (04, 85) as one confident digit; a mark
    # this much wider than the row's other digits must win its place as one digit.
    if piece.width > PAIR_WIDTH * digit_w:
        cost += PAIR_COST * (piece.width / digit_w - PAIR_WIDTH)
    return cost


def _digit_width(pieces: list[_Piece], row: float,
                 fragments: list[bool] | None = None) -> float:
    """The row's usual width of one digit: one writer's digits are alike."""
    if fragments is None:
        fragments = [_fragment(p, row) for p in pieces]
    # A 1 is a stroke, far narrower than other digits: it would make wide digits look
    # like pairs.
    widths = [p.width for p, fragment in zip(pieces, fragments, strict=True)
              if not fragment and 0.4 * row <= p.width < 1.25 * row]
    typical = float(np.median(widths)) if widths else DIGIT_WIDTH * row
    return float(np.clip(typical, 0.5 * row, 0.9 * row))


def _crops(ink: np.ndarray, pieces: list[_Piece], origin: tuple[int, int]
           ) -> tuple[DigitCrop, ...] | None:
    crops = tuple(_crop(ink, p.mask, origin) for p in pieces)
    return None if any(c is None for c in crops) else crops


class _PaleInk:
    """The row's pale strokes, to give back to the digits they belong to.

    Marks are cut from ink above INK_LEVEL, and a pale stroke (MNIST's grey loops, a pen
    running dry) falls out of them: a 9 whose loop is lost reads as a sure 7, a 7 without
    its bar as a 1. A crop takes back the pale ink connected to its own mark (by strokes
    above FAINT_INK_LEVEL), where no other mark's ink is.
    """

    def __init__(self, ink: np.ndarray, pieces: list[_Piece], row: float):
        # A stem's lost loop or bar reaches about half a digit beside it
        self.reach = int(0.5 * row)
        _, self.labels = cv2.connectedComponents((ink >= FAINT_INK_LEVEL).astype(np.uint8))
        self.marks = np.zeros(ink.shape, bool)
        for piece in pieces:
            self.marks |= piece.mask

    def grow(self, piece: _Piece) -> _Piece:
        """``piece`` with the pale ink connected to it that belongs to no mark."""
        lo, hi = max(0, piece.x0 - self.reach), piece.x1 + self.reach
        window = self.labels[:, lo:hi]
        mask = piece.mask[:, lo:hi]
        connected = np.unique(window[mask])
        connected = connected[connected > 0]
        if not len(connected):
            return piece
        pale = np.isin(window, connected) & ~self.marks[:, lo:hi]
        if not pale.any():
            return piece
        grown = piece.mask.copy()
        grown[:, lo:hi] |= pale
        return _piece_of(grown)


def _piece_of(mask: np.ndarray) -> _Piece | None:
    """The piece holding ``mask``'s pixels, spanning its inked columns (None when empty)."""
    columns = np.flatnonzero(mask.any(axis=0))
    return _Piece(mask, int(columns[0]), int(columns[-1]) + 1) if len(columns) else None


def _cut_at(piece: _Piece, column: int) -> list[_Piece]:
    left, right = np.zeros_like(piece.mask), np.zeros_like(piece.mask)
    left[:, piece.x0:column] = piece.mask[:, piece.x0:column]
    right[:, column:piece.x1] = piece.mask[:, column:piece.x1]
    return [_Piece(left, piece.x0, column), _Piece(right, column, piece.x1)]


def _bent_cut(piece: _Piece, columns: list[int], ink: np.ndarray) -> list[_Piece]:
    """``piece`` cut at each of ``columns`` along the least-ink path from top to bottom."""
    parts, rest = [], piece
    for column in columns:
        halves = _bent_halves(rest, column, ink)
        if len(halves) < 2:
            return []
        parts.append(halves[0])
        rest = halves[1]
    return parts + [rest]


def _bent_halves(piece: _Piece, column: int, ink: np.ndarray) -> list[_Piece]:
    """The non-empty halves of ``piece`` either side of the least-ink path near ``column``."""
    mask = piece.mask
    rows = np.flatnonzero(mask[:, piece.x0:piece.x1].any(axis=1))
    reach = max(2, int(PATH_REACH * piece.width))
    lo, hi = max(piece.x0 + 1, column - reach), min(piece.x1 - 1, column + reach + 1)
    boundary = np.full(mask.shape[0], column)
    if len(rows) and hi - lo >= 2:
        top, bottom = rows[0], rows[-1] + 1
        weight = np.where(mask[top:bottom, lo:hi], ink[top:bottom, lo:hi], 0).astype(np.float32)
        boundary[top:bottom] = lo + _least_ink_path(weight, column - lo)
    left = mask & (np.arange(mask.shape[1])[None, :] < boundary[:, None])
    return [half for half in (_piece_of(left), _piece_of(mask & ~left)) if half is not None]


def _least_ink_path(weight: np.ndarray, start: int) -> np.ndarray:
    """The column in each row of the cheapest top-to-bottom path through ``weight``.

    The path moves at most one column a row, and each move costs PATH_STEP of the
    darkest pixel: it bends round a stroke, not round paper. Ties go nearest ``start``.
    """
    height, width = weight.shape
    step = PATH_STEP * float(weight.max() or 1.0)
    nearest = 1e-3 * np.abs(np.arange(width) - start)
    cost = weight[0] + nearest
    came = np.zeros((height, width), np.int8)
    # Arriving from the left or right neighbour; off the edge is never cheapest.
    left, right = np.full(width, np.inf), np.full(width, np.inf)
    for y in range(1, height):
        left[1:] = cost[:-1] + step
        right[:-1] = cost[1:] + step
        # Ties go left, then straight, then right (the first of the three, as argmin would
        # pick): a move is taken only when strictly cheaper than those before it.
        so_far = np.minimum(left, cost)
        came[y] = np.where(right < so_far, 1, np.where(cost < left, 0, -1))
        cost = np.minimum(so_far, right) + weight[y]
    path = np.empty(height, int)
    path[-1] = int(np.argmin(cost + nearest))
    for y in range(height - 1, 0, -1):
        path[y - 1] = path[y] + came[y, path[y]]
    return path


def _cuts(piece: _Piece, parts: int, ink: np.ndarray) -> list[list[_Piece]]:
    """Ways to cut a mark into ``parts``, for the classifier to judge.

    Straight down at the thinnest columns near equal spacing, and bent from there along
    the least ink: touching digits of a slanted or overlapping hand meet on a slope, and a
    straight cut gives each half a piece of the other. The bent cut mended 7 reads and
    broke 1 over the six development and fresh sets (93.43% -> 93.57% and 92.80% ->
    92.90% exact; on their messy envelopes, 380 and 241, 79.0% -> 80.0% and 74.7% ->
    75.9%), with no more accepted wrong. Bent cuts in place of the straight ones, or also
    from the side columns below, mended about as many but broke more.

    For two parts also straight at the thinnest column a little left and a little right
    of the middle (touching digits rarely meet exactly at the thinnest ink).
    Cuts near a side too, for a 1 touching its neighbour, were tried (offered only where the
    side part stands like a full-height stroke): over 4,800 envelopes they mended 7 messy
    reads, but cut a wide 2's end off as a 1 (5526, accepted, read 55216) and made printed
    rows on envelopes without a code read as codes; development -1, fresh +4. Not kept.
    """
    straight = _split(piece, parts, ink)
    cuts = [straight]
    if len(straight) == parts and (bent := _bent_cut(piece, [p.x1 for p in straight[:-1]], ink)):
        cuts.append(bent)
    if parts != 2:
        return cuts
    profile = np.where(piece.mask, ink, 0).sum(axis=0).astype(np.float64)
    profile = np.convolve(profile, np.ones(3) / 3, mode="same")
    centre, reach = (piece.x0 + piece.x1) // 2, max(2, int(0.2 * piece.width))
    seen = {straight[0].x1} if len(straight) == 2 else set()
    for lo, hi in ((centre - reach, centre), (centre, centre + reach)):
        lo, hi = max(piece.x0 + 2, lo), min(piece.x1 - 2, hi)
        if hi <= lo:
            continue
        column = lo + int(np.argmin(profile[lo:hi]))
        if all(abs(column - c) > 2 for c in seen):
            seen.add(column)
            cuts.append(_cut_at(piece, column))
    return cuts


def _row_ink(ink: np.ndarray) -> np.ndarray:
    """The field's ink less strokes from the lines above and below, and rules across it.

    The field is cut with a margin around its row, so descenders of the line above and
    ascenders of the line below reach in at the top and bottom edge; joined to a digit
    they would turn a 0 into a 6. Components that touch the top or bottom edge and lie
    mostly outside the middle band (where the row is) are dropped.
    """
    height = ink.shape[0]
    band = (int(BAND[0] * height), int(BAND[1] * height))
    out = ink.copy()
    # A rule across the row touches every digit it passes; left in, it joins them all
    # into one mark (and puts a bar on top of every crop).
    strong = (ink >= 64).astype(np.uint8)
    rule = cv2.morphologyEx(strong, cv2.MORPH_OPEN,
                            np.ones((1, max(3, int(RULE_LENGTH * height))), np.uint8))
    if rule.any():
        out[cv2.dilate(rule, np.ones((3, 3), np.uint8)) > 0] = 0
    _without_upright_rule(strong, out)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((out >= 64).astype(np.uint8))
    for label in range(1, count):
        _, y, _, h, _ = stats[label]
        if y > 1 and y + h < height - 1:
            continue
        inside = max(0, min(y + h, band[1]) - max(y, band[0]))
        if inside < 0.5 * h:
            out[labels == label] = 0
    return out


def _without_upright_rule(strong: np.ndarray, out: np.ndarray) -> None:
    """Take a line from top to bottom of the field out of ``out``, mending what it crossed.

    A label's or the paper's edge running through a digit made one mark with it, too
    tall to be a digit, and the row was read without that digit, surely. The digit's
    strokes on both sides of the line are joined again.
    """
    height = strong.shape[0]
    line = cv2.morphologyEx(strong, cv2.MORPH_OPEN, np.ones((height, 1), np.uint8))
    if not line.any():
        return
    gap = cv2.dilate(line, np.ones((3, 3), np.uint8))
    out[gap > 0] = 0
    mend_across(out, gap, (1, int(np.count_nonzero(gap, axis=1).max()) + 2))


def _leftover(ink: np.ndarray, pieces: list[_Piece]) -> float:
    """Row ink outside every mark, in units of the median mark's ink.

    Marks too short to be digits are dropped as specks; a digit whose strokes fell apart
    (a faint 4 whose stem alone is kept reads as a confident 1) leaves real ink behind.
    """
    covered = np.zeros(ink.shape, bool)
    for piece in pieces:
        covered |= piece.mask
    height = ink.shape[0]
    band = np.zeros(ink.shape, bool)
    band[int(BAND[0] * height):int(BAND[1] * height)] = True
    strong = ink >= 64
    near = cv2.dilate(covered.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rest = (strong & band & ~near).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(rest)
    row = _row_height(pieces)
    # A ZIP+4's hyphen (or a dash, an underline) is meant to be left out.
    left = float(sum(area for _, _, w, h, area in stats[1:count]
                     if not (w >= 1.3 * h and h < 0.4 * row)))
    typical = float(np.median([np.count_nonzero(p.mask & strong) for p in pieces]))
    return left / max(typical, 1.0)


def lattice(image_bgr: np.ndarray | None, field: CodeField) -> Lattice:
    """The free-form field's marks and every plausible reading of them as digits."""
    ink = _row_ink(_field_ink(image_bgr, field))
    pieces = sorted(_marks(ink), key=lambda p: p.x0)
    if not pieces:
        return Lattice(0, ())
    row = _row_height(pieces)
    # Each piece's fragment test counts components: done once, used three times
    fragments = [_fragment(p, row) for p in pieces]
    digit_w = _digit_width(pieces, row, fragments)
    origin = field.box[:2]
    pale = _PaleInk(ink, pieces, row)
    arcs = []
    for i, piece in enumerate(pieces):
        width = piece.width / row
        one = _crops(ink, [pale.grow(piece)], origin)
        if one:
            arcs.append(Arc(i, i + 1, one, _digit_cost(piece, row, digit_w, fragments[i]),
                            "one digit"))
        if fragments[i] or _height(piece) > TALL * row:
            arcs.append(Arc(i, i + 1, (), SKIP_COST, "a fragment or a line left out"))
        for parts in range(2, MAX_PARTS + 1):
            # Cutting a mark narrower than ~0.55 digit widths per part invents digits.
            if width < 0.55 * DIGIT_WIDTH * parts:
                continue
            # k touching digits are about k - 0.4 of this writer's digits wide.
            narrow = max(0.0, (parts - 0.4) - piece.width / digit_w)
            for halves in _cuts(piece, parts, ink):
                crops = _crops(ink, halves, origin) if len(halves) == parts else None
                if not crops:
                    continue
                cost = SPLIT_COST * (parts - 1) + 4.0 * narrow
                cost += sum(_digit_cost(h, row, digit_w) for h in halves)
                arcs.append(Arc(i, i + 1, crops, cost, f"one mark cut in {parts}"))
        if i + 1 < len(pieces):
            nxt = pieces[i + 1]
            joined = _Piece(piece.mask | nxt.mask, piece.x0, max(piece.x1, nxt.x1))
            gap = nxt.x0 - piece.x1
            if joined.width <= 1.1 * row and gap < 0.3 * row:
                crops = _crops(ink, [pale.grow(joined)], origin)
                if crops:
                    # Two whole-height marks are two digits far more often than one.
                    whole = not (fragments[i] or fragments[i + 1])
                    cost = JOIN_COST + (2.0 if whole else 0.0)
                    cost += _digit_cost(joined, row, digit_w)
                    arcs.append(Arc(i, i + 2, crops, cost, "two pieces joined"))
    return Lattice(len(pieces), tuple(arcs), _leftover(ink, pieces))


@dataclass(frozen=True)
class Path:
    """A way through the lattice: the crops read, and what each costs."""

    crops: tuple[DigitCrop, ...]
    probabilities: np.ndarray
    """One row of 10 probabilities per crop."""
    oddest: float
    """The largest shape cost of one mark read (0 for a row of plain digits)."""
    cost: float
    """Prior plus the classifier's surprise, -sum(log p) of the digits read."""
    arcs: tuple[int, ...] = ()
    """The arcs taken, as indices into the lattice's ``arcs``, left to right."""

    @property
    def code(self) -> str:
        """The digits read."""
        return "".join(str(int(np.argmax(p))) for p in self.probabilities)

    @property
    def confidence(self) -> float:
        """The classifier's alone: the product of the digits' probabilities (no shape prior)."""
        return float(np.prod(self.probabilities.max(axis=1)))


def best_paths(lat: Lattice, probabilities: list[np.ndarray], counts: tuple[int, ...],
               pairs: list[np.ndarray] | None = None) -> dict[int, Path]:
    """The cheapest path for each digit count in ``counts`` that the lattice allows.

    ``probabilities[k]`` holds one row per crop of ``lat.arcs[k]``; ``pairs[k]``, when
    given, each of those crops' chance of holding two touching digits (``PAIR_WEIGHT``).
    """
    if lat.marks == 0 or not counts:
        return {}
    most = max(counts)
    # best[node][n] = (cost, arcs taken) for reaching node with n digits
    best: list[dict[int, tuple[float, tuple[int, ...]]]] = [{} for _ in range(lat.marks + 1)]
    best[0][0] = (0.0, ())
    by_start: dict[int, list[int]] = {}
    for k, arc in enumerate(lat.arcs):
        by_start.setdefault(arc.start, []).append(k)
    surprise = [arc.cost - float(np.sum(np.log(np.clip(p.max(axis=1), 1e-9, 1.0))))
                if len(p) else arc.cost for arc, p in zip(lat.arcs, probabilities, strict=True)]
    if pairs is not None:
        surprise = [s - PAIR_WEIGHT * float(np.sum(np.log1p(-np.minimum(c, PAIR_CHANCE_MAX))))
                    for s, c in zip(surprise, pairs, strict=True)]
    for node in range(lat.marks):
        for n, (cost, taken) in best[node].items():
            for k in by_start.get(node, []):
                arc = lat.arcs[k]
                m = n + len(arc.crops)
                if m > most:
                    continue
                total = cost + surprise[k]
                if m not in best[arc.end] or total < best[arc.end][m][0]:
                    best[arc.end][m] = (total, taken + (k,))
    paths = {}
    for n, (cost, taken) in best[lat.marks].items():
        if n in counts:
            arcs = [lat.arcs[k] for k in taken]
            paths[n] = Path(
                crops=tuple(c for a in arcs for c in a.crops),
                probabilities=np.concatenate([probabilities[k] for k in taken]
                                             or [np.zeros((0, 10))]),
                oddest=max((a.cost for a in arcs if a.crops), default=0.0),
                cost=cost,
                arcs=taken,
            )
    return paths
