"""Find free-form postal codes: runs of 4-9 digit-sized ink marks on one text line.

Ink components are grouped into characters (pieces of a broken stroke that overlap
horizontally are one character), characters into words (small gaps on one line), and a
word of 4-9 digit-sized characters - or two words joined by a hyphen, ZIP+4 - is a
candidate. The score prefers the recipient's block (centre/lower right), larger and
irregular (handwritten) marks, and codes that end their line; it penalises the sender's
corner (top left), marks inside a postmark ring and rows of uniform printed characters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

import cv2
import numpy as np

from postread.field_view import Found, View, components_with_stats, long_runs, mend_across
from postread.records import RowTraits
from postread.segment import digits_in, lifted_bar

MIN_DIGITS, MAX_DIGITS = 4, 9
SMALL_PRINT = 0.05
"""Rows shorter than this share of the envelope's height may be sender or postage print."""
PRINT_EVENNESS = 0.045
"""Marks whose heights and baselines vary less than this (times their height) are type."""
MIN_ZIP = 5
"""Digits before a ZIP+4's hyphen."""
ZIP4_EXTRA_MARKS = 2
"""Marks a ZIP+4 may have beyond its 9 digits: pieces of broken digits that did not
overlap their digit (a bold 2's detached stem), which segmentation joins or skips. The
hyphen between 5 and 4 written digit-sized marks is evidence enough of a code."""
HYPHEN_GAP = 2.0
"""Widest gap (times the digits' height) between the halves of a ZIP+4, hyphen in it; a
line goes on across such a gap."""
ZIP_SMALLEST = 0.6
"""A mark taken back into a ZIP's first five is at least this tall (times the digits')."""
ZIP_REACH = 1.2
"""How far (times the digits' height) a ZIP's cut-off first digit may stand from the rest."""
WORD_GAPS = (0.45, 0.7, 1.0)
"""Gaps (times the marks' height) at which a line is cut into words."""
RULE_BRIDGE = 130
"""Ink within a 130th of the view's width across a removed rule (its width and soft
edges) is one mark."""
FLAT_PIECE = 1.0
"""Marks wider than tall (this many times), one above the other, are pieces of one
character: a whole digit or letter is about as tall as it is wide, or taller."""
X_HEIGHT_DROP = 0.2
"""A lowercase letter's top lies at least this far (times the tallest mark) below an
ascender's or a capital's."""


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
    def cx(self) -> float:
        """Horizontal centre."""
        return self.x + self.w / 2

    @property
    def right(self) -> int:
        """Right edge."""
        return self.x + self.w


def _components(ink: np.ndarray) -> list[Mark]:
    count, _, stats, _ = components_with_stats(ink)
    return [
        Mark(int(x), int(y), int(w), int(h))
        for x, y, w, h, area in stats[1:count]
        if area >= 6
    ]


def _encloses(big: Mark, small: Mark) -> bool:
    """True when ``big`` is much larger than ``small`` and its box holds it whole."""
    inside = (big.x <= small.x and big.y <= small.y and small.right <= big.right
              and small.y + small.h <= big.y + big.h)
    return inside and big.h > 1.3 * small.h and big.w > 1.5 * small.w


def _join_pieces(marks: list[Mark]) -> list[Mark]:
    """Merge marks that overlap horizontally and sit close vertically (broken strokes)."""
    marks = sorted(marks, key=lambda m: m.x)
    # Two whole characters, one above the other (a letter of the line above, a tall
    # handwritten digit reaching up to it), are not pieces of one: pieces are smaller,
    # or all but touch (a digit written twice the text's size, broken by a pale gap).
    whole = 0.8 * float(np.median([m.h for m in marks if m.h >= 6] or [0]))
    merged: list[Mark] = []
    # Marks come left to right, so a merged mark that ends before this one starts can
    # overlap no later mark either: only the still-open ones are compared (in the same
    # order as before, so the first match is the same), which keeps this near linear.
    open_at: list[int] = []
    for mark in marks:
        open_at = [i for i in open_at if merged[i].right > mark.x]
        for index in open_at:
            other = merged[index]
            overlap = min(mark.right, other.right) - mark.x  # other.x <= mark.x (sorted)
            narrow = min(mark.w, other.w)
            gap_y = max(mark.y, other.y) - min(mark.y + mark.h, other.y + other.h)
            # Two flat marks one above the other are the halves of one large character all
            # the same: a big handwritten 5 broken under its flag, beside small printed text
            # that sets ``whole``. One flat mark over an upright one is not: a word of
            # joined letters above a digit.
            halves = min(mark.w / mark.h, other.w / other.h) > FLAT_PIECE
            if gap_y > 0.1 * max(mark.h, other.h) and min(mark.h, other.h) >= whole > 0 \
                    and not halves:
                continue
            tall = max(mark.h, other.h)
            # Long flat strokes (underlines, a label's shadow) are not pieces of a digit.
            flat = max(mark.w, other.w) > 2.5 * tall
            # A label's outline or shadow around the digits is a frame, not a piece of one.
            frame = _encloses(mark, other) or _encloses(other, mark)
            # A 5's flag or a 7's bar drawn apart sits above the body, overlapping it less:
            # the same rule as segmentation's (``lifted_bar``). Segmentation's other rule, a
            # 2's base under its hook (``dropped_base``), is not needed here to find the row
            # and, tried here too, changed one read in 5,800, for the worse.
            upper, lower = (mark, other) if mark.y < other.y else (other, mark)
            bar = lifted_bar((upper.x, upper.y, upper.right, upper.y + upper.h),
                             (lower.x, lower.y, lower.right, lower.y + lower.h), lower.h)
            # Pieces that touch (a thin stroke broken where it turns: a 5's bowl under its
            # top) need less overlap than pieces a gap apart.
            stacked = (overlap > 0.5 * narrow and gap_y < 0.35 * tall) or \
                bar or (overlap > 0.3 * narrow and gap_y <= 1)
            if stacked and not flat and not frame:
                x0, y0 = min(mark.x, other.x), min(mark.y, other.y)
                x1 = max(mark.right, other.right)
                y1 = max(mark.y + mark.h, other.y + other.h)
                merged[index] = Mark(x0, y0, x1 - x0, y1 - y0)
                break
        else:
            open_at.append(len(merged))
            merged.append(mark)
    return merged


def _is_hyphen(mark: Mark, height: float) -> bool:
    return mark.w >= 1.3 * mark.h and mark.h < 0.35 * height and 0.2 * height < mark.w < height


def _digit_count(mark: Mark) -> int:
    """How many digits a mark may hold (touching digits make wide marks).

    Generous on purpose: a mark a little wider than tall may be two digits when looking
    for rows that can hold a code. Segmentation's own count (``segment.digits_in``) takes
    such a mark for one round digit; counting with it here lost messy 4-digit codes
    written as two wide marks (tune600: 3 reads, one accepted right).
    """
    return max(1, int(round(mark.w / (0.7 * mark.h))))


def _lines(marks: list[Mark], min_h: float, max_h: float,
           hyphens: Sequence[Mark] = ()) -> list[list[Mark]]:
    """Chains of aligned, character-sized marks, left to right (one text line each).

    A line goes on across a gap of up to 1.6 times its height, or ``HYPHEN_GAP`` where a
    hyphen stands in the gap at the line's middle (a ZIP+4 written ``12345 - 6789``).
    """
    tall = sorted((m for m in marks if min_h <= m.h <= max_h and m.w <= 3.5 * m.h),
                  key=lambda m: m.x)
    lines: list[list[Mark]] = []
    # Each line's recent marks, not just its last: one broken or small mark (a digit's
    # detached stroke) must not end the line. Their median height and centre and their
    # right edge, kept per line (a page has hundreds of marks and lines).
    ends: list[tuple[float, float, int]] = []
    # Marks come left to right and a line takes a mark less than 1.6 x 2.2 of its height
    # after its end: a line further behind than that (3.6, with room) is closed for good.
    open_at: list[int] = []
    for mark in tall:
        open_at = [i for i in open_at if mark.x - ends[i][2] < 3.6 * ends[i][0]]
        for index in open_at:
            last_h, last_cy, right = ends[index]
            gap = mark.x - right
            # Level with the line's recent marks, or with its last one: handwriting may
            # slope, and the recent marks' centre lags a steady slope.
            reach = 0.4 * max(mark.h, last_h)
            same_line = (abs(mark.cy - last_cy) < reach
                         or abs(mark.cy - lines[index][-1].cy) < reach)
            similar = 0.45 < mark.h / last_h < 2.2
            size = max(mark.h, last_h)
            # Across a hyphen only between marks of one size: the two halves of a ZIP+4
            # are one hand's writing (a printed state before a code is not).
            near = gap < 1.6 * size or (
                gap < HYPHEN_GAP * size and 0.8 < mark.h / last_h < 1.25
                and _dash_between(right, mark.x, lines[index][-1].cy, size, hyphens))
            if same_line and similar and -0.3 * last_h < gap and near:
                lines[index].append(mark)
                ends[index] = _line_end(lines[index])
                break
        else:
            open_at.append(len(lines))
            lines.append([mark])
            ends.append(_line_end(lines[-1]))
    return lines


def _dash_between(left: int, right: int, cy: float, height: float,
                  hyphens: Sequence[Mark]) -> bool:
    """True when a hyphen for marks ``height`` tall lies between ``left`` and ``right``."""
    return any(left - 2 <= h.x and h.right <= right + 2 and _is_hyphen(h, height)
               and abs(h.cy - cy) < 0.4 * height for h in hyphens)


def _line_end(line: list[Mark]) -> tuple[float, float, int]:
    """Median height and centre and the right edge of a line's last three marks."""
    recent = line[-3:]
    return (float(median([m.h for m in recent])), float(median([m.cy for m in recent])),
            max(m.right for m in recent))


def _words(line: list[Mark], gap: float) -> list[list[Mark]]:
    """Split a line at gaps wider than ``gap`` times the neighbouring marks' height.

    A small gap where the writing grows or shrinks by a third also ends a word: a
    handwritten code often follows the printed state ("TX") closer than a word gap. The
    size must jump between the two marks and between the taller of two marks on each
    side: a short digit (a broken 5 or 7, a small 3) inside a handwritten code is not
    the end of a word, as one broken digit makes only marks shorter than its neighbours.
    """
    words = [[line[0]]]
    for index in range(1, len(line)):
        prev, mark = line[index - 1], line[index]
        space = mark.x - prev.right
        tall = max(mark.h, prev.h)
        before = max(m.h for m in line[max(0, index - 2):index])
        after = max(m.h for m in line[index:index + 2])
        grows = (tall > 1.3 * min(mark.h, prev.h)
                 and max(before, after) > 1.3 * min(before, after))
        if space > gap * tall or (space > 0.2 * tall and grows):
            words.append([mark])
        else:
            words[-1].append(mark)
    return words


def _fits(word: list[Mark], most: int = MAX_DIGITS) -> bool:
    """True when the word may hold 4-9 digits (a wide mark may be one digit or two).

    Generous in a row of three marks or more: a mark at least as wide as tall may be two
    touching digits (a messy 9 and 7 run together are one mark about square); the
    classifier decides the cut. More than ``most`` marks are no code.
    """
    if len(word) > most:
        return False
    count = _digit_count if len(word) < 3 else (
        lambda m: max(_digit_count(m), int(m.w / (0.5 * m.h))))
    return sum(count(m) for m in word) >= MIN_DIGITS


def _zip4(words: list[list[Mark]], hyphens: list[Mark]) -> list[list[Mark]]:
    """5 + 4 digit words joined by a hyphen on one line (ZIP+4), hyphen left out."""
    joined = []
    for index, (first, second) in enumerate(zip(words[:-1], words[1:], strict=True)):
        height = float(median([m.h for m in first + second]))
        left, right = first[-1].right, second[0].x
        # A dash is judged against these digits' height, not the envelope's text size.
        if _dash_between(left, right, first[-1].cy, height, hyphens) and \
                right - left < HYPHEN_GAP * height:
            before = words[index - 1] if index else []
            joined.append(_five_before(first, before, height) + second)
    return joined


def _five_before(first: list[Mark], before: list[Mark], height: float) -> list[Mark]:
    """The ZIP's five digits before the hyphen, taking back any cut off into the word before.

    A first digit set a little apart, or written close to the state (``OR 9`` then
    ``6457``), ends up in the word before; read without it, the five digits are four and
    a touching pair is invented to make nine.
    """
    # Counted as segmentation will cut them: a round digit a little wider than tall (a 3,
    # a 0) is one here; counted as two it hid the cut-off first digit (935365190 read
    # 135365190).
    need = MIN_ZIP - sum(digits_in(m.w, m.h) for m in first)
    taken: list[Mark] = []
    for mark in reversed(before):
        # A handwritten digit may be two thirds of its neighbours' height (a small 5 in
        # 96587-2195, which at 0.7 stopped the taking and left 87-21 to be read).
        if len(taken) >= need or mark.h < ZIP_SMALLEST * height:
            break
        if (taken or first)[0].x - mark.right >= ZIP_REACH * height:
            break
        taken.insert(0, mark)
    return taken + first


def _printed(word: list[Mark]) -> bool:
    """True when every mark has the same height on one baseline, as type does.

    Handwriting varies a few percent in both; printed words (a name, a town) do not.
    """
    heights = [m.h for m in word]
    bottoms = [m.y + m.h for m in word]
    height = float(median(heights))
    return (max(heights) - min(heights) <= PRINT_EVENNESS * height
            and max(bottoms) - min(bottoms) <= PRINT_EVENNESS * height)


def _lowercase(word: list[Mark]) -> bool:
    """True when small marks sit on the baseline under one common top, as lowercase does.

    In a word ("Budapest", "Gyor") letters without ascenders share the x-height line,
    well below the capitals and ascenders, and the baseline with them. Handwritten digits
    are all about one height: a shorter one has no shelf of others at its height.
    """
    tallest = max(m.h for m in word)
    top = min(m.y for m in word)
    baseline = float(median([m.y + m.h for m in word]))
    tolerance = PRINT_EVENNESS * 2 * tallest
    small = [m for m in word if m.y - top >= X_HEIGHT_DROP * tallest
             and abs(m.y + m.h - baseline) <= tolerance]
    return len(small) >= 2 and max(m.y for m in small) - min(m.y for m in small) <= tolerance


def _inside_ring(rect: tuple[int, int, int, int], rings: list[Mark]) -> bool:
    x, y, w, h = rect
    return any(r.x <= x and r.y <= y and x + w <= r.right and y + h <= r.y + r.h for r in rings)


@dataclass(frozen=True)
class _Context:
    """What the scorer knows about the whole view."""

    width: int
    height: int
    text_h: float
    """Median height of character-sized marks: the envelope's text size."""
    rings: list[Mark]
    """Postmark rings and stamp frames."""
    marks: list[Mark]
    """Every character-sized mark (for what lies below a row)."""
    hyphens: list[Mark]
    """Flat marks that may be dashes."""


def _lines_below(rect: tuple[int, int, int, int], height: float, ctx: _Context) -> bool:
    """True when text-sized marks sit under the row: it is not its block's last line.

    Addresses end with the code (ZIP after the town, a Hungarian code under it); a name
    or street line always has more of the address below it. Ticks along the bottom edge
    do not count.
    """
    x0, y0, x1, y1 = rect
    for m in ctx.marks:
        below = y1 + 0.15 * height < m.y < y1 + 2.2 * height
        beside = x0 - 2 * height < m.cx < x1 + 2 * height
        if below and beside and m.h > 0.5 * ctx.text_h and m.w > 0.3 * m.h \
                and m.y + m.h < 0.93 * ctx.height:
            return True
    return False


def _hyphen_beside(word: list[Mark], ctx: _Context) -> bool:
    """True when a dash sits just before or after the row with digit-sized marks beyond it.

    That row is one half of a ZIP+4 whose other half was not joined to it.
    """
    height = float(median([m.h for m in word]))
    first, last = word[0], word[-1]
    for dash in ctx.hyphens:
        if abs(dash.cy - (first.cy + last.cy) / 2) > 0.45 * height or \
                not _is_hyphen(dash, height):
            continue
        before = 0 <= first.x - dash.right < 0.7 * height
        after = 0 <= dash.x - last.right < 0.7 * height
        if not (before or after):
            continue
        edge = dash.x if before else dash.right
        for m in ctx.marks:
            near = (edge - m.right if before else m.x - edge)
            if 0 <= near < 1.5 * height and abs(m.cy - dash.cy) < 0.6 * height \
                    and m.h > 0.3 * height and m not in word:
                return True
    return False


def _mark_after(word: list[Mark], ctx: _Context) -> bool:
    """True when a mark nearly as tall as the row's digits follows it within a digit's width.

    A code ends its line; a row that is followed so closely by more of the same size was
    probably cut short by a wide gap between two of its digits, or before a digit drawn
    so pale that it came apart (its largest piece is 0.6 of the digits' height or more).
    """
    height = float(median([m.h for m in word]))
    last = word[-1]
    return any(0 <= m.x - last.right < 1.0 * height and abs(m.cy - last.cy) < 0.4 * height
               and m.h > 0.6 * height and m not in word for m in ctx.marks)


def _score(word: list[Mark], last: bool, alone: bool, ctx: _Context, bonus: float) -> Found:
    x0, y0 = min(m.x for m in word), min(m.y for m in word)
    x1, y1 = max(m.right for m in word), max(m.y + m.h for m in word)
    height = float(median([m.h for m in word]))
    cx, cy = (x0 + x1) / 2 / ctx.width, (y0 + y1) / 2 / ctx.height
    score, notes = 0.4 + bonus, []
    if bonus > 0:
        notes.append("5 + 4 digits joined by a hyphen (ZIP+4)")
    size = float(np.clip((height / ctx.text_h - 0.8) / 0.6, 0, 1))
    score += 0.15 * size
    notes.append(f"{height / ctx.text_h:.1f}x the text height")
    if alone:
        score, notes = score + 0.15, notes + ["alone on its line"]
    elif last:
        score, notes = score + 0.1, notes + ["ends its line"]
    else:
        score, notes = score - 0.05, notes + ["followed by more text (a street number?)"]
    if _lines_below((x0, y0, x1, y1), height, ctx):
        score, notes = score - 0.1, notes + ["more address lines below it"]
    else:
        score, notes = score + 0.05, notes + ["last line of its block"]
    # Sender blocks and postage imprints are small print; a large handwritten row is a
    # code wherever it sits (a lone code on a label can be anywhere).
    small = height < SMALL_PRINT * ctx.height
    places = (
        (small and cx < 0.4 and cy < 0.3, 0.25, "in the sender's corner"),
        (small and cy < 0.22, 0.15, "in the postage band at the top"),
        (_inside_ring((x0, y0, x1 - x0, y1 - y0), ctx.rings), 0.25, "inside a postmark ring"),
    )
    misplaced = ", ".join(note for hit, _, note in places if hit)
    wordlike = _lowercase(word)
    penalties = places + (
        (y1 > 0.94 * ctx.height, 0.2, "on the bottom edge (barcode ticks?)"),
        (median([m.w / m.h for m in word]) < 0.3, 0.2, "all marks thin like ticks"),
        (min(m.h for m in word) < 0.7 * height, 0.1, "uneven heights (letters?)"),
        (len(word) == MAX_DIGITS and bonus <= 0, 0.1, "9 marks with no ZIP+4 hyphen (a word?)"),
        (_printed(word), 0.1, "even heights and baseline (printed text?)"),
        (wordlike, 0.1, "small marks under one x-height (a word?)"),
    )
    for hit, cost, note in penalties:
        if hit:
            score, notes = score - cost, notes + [note]
    partial = bonus <= 0 and _hyphen_beside(word, ctx)
    if partial:
        score, notes = score - 0.2, notes + ["a hyphen ties it to more digits (half a ZIP+4?)"]
    elif _mark_after(word, ctx):
        partial, notes = True, notes + ["a digit-sized mark follows close by (cut short?)"]
    digits = sum(_digit_count(m) for m in word)
    pad = int(0.25 * height)
    bx0, by0 = max(0, x0 - pad), max(0, y0 - pad)
    rect = (bx0, by0, min(ctx.width, x1 + pad) - bx0, min(ctx.height, y1 + pad) - by0)
    evidence = f"free-form row of {digits} digit-sized marks, " + ", ".join(notes)
    return Found(rect=rect, kind="freeform", score=round(float(np.clip(score, 0.01, 0.85)), 3),
                 evidence=evidence, cells=tuple((m.x, m.y, m.w, m.h) for m in word),
                 row=RowTraits(zip4=bonus > 0, partial=partial, line_end=last and not alone,
                               misplaced=misplaced, wordlike=wordlike))


def _without_rules(ink: np.ndarray) -> np.ndarray:
    """The ink less long straight rules (a label's edge or shadow, an underline).

    Only runs longer than any digit is tall are taken: a rule touching a digit would
    otherwise make one mark of the digit and the label around it.
    """
    height, width = ink.shape
    rest = ink.copy()
    span = max(9, width // RULE_BRIDGE)
    upright, level = long_runs(ink, int(0.2 * height), 0), long_runs(ink, int(0.1 * width), 1)
    taken = []
    # An upright rule goes with its soft edges (two pixels either side): a sliver left
    # beside it would later look like ink on both sides of it. A level "rule" may be a
    # digit's long stroke (a 2's tail on a small view), which its edges keep joined to it.
    for run, across, edges in ((upright, (1, span), (1, 5)), (level, (span, 1), None)):
        x, y, w, h = cv2.boundingRect(run)
        if w == 0:
            continue
        window = (slice(max(0, y - span), y + h + span), slice(max(0, x - span), x + w + span))
        rule = run[window]
        if edges:
            rule = cv2.dilate(rule, np.ones(edges, np.uint8)) & ink[window]
        rest[window] = cv2.subtract(rest[window], rule)
        taken.append((window, rule, across))
    # A digit a rule runs through comes apart where the rule was (a label's edge through
    # a code's last digit left it out of the row, and the code was read short and sure).
    for window, rule, across in taken:
        mend_across(rest[window], rule, across)
    return rest


def find_freeform(view: View) -> list[Found]:
    """Every plausible free-form code in the view, scored (unsorted)."""
    marks = _join_pieces(_components(_without_rules(view.ink)))
    image_h, image_w = view.ink.shape
    min_h, max_h = 0.012 * image_h, 0.2 * image_h
    sized = [m.h for m in marks if min_h <= m.h <= max_h]
    if not sized:
        return []
    text_h = float(np.median(sized))
    ctx = _Context(image_w, image_h, text_h,
                   [m for m in marks if m.h > 3 * text_h and 0.6 < m.w / m.h < 1.6],
                   [m for m in marks if min_h <= m.h <= max_h],
                   [m for m in marks if m.w >= 1.3 * m.h])
    hyphens = ctx.hyphens
    found = []
    for line in _lines(marks, min_h, max_h, hyphens):
        seen: set[tuple[int, ...]] = set()
        # Handwriting spaces digits unevenly: words are cut at a few gap sizes and the
        # scorer and the classifier choose among them.
        for gap in WORD_GAPS:
            words = _words(line, gap)
            joined = _zip4(words, hyphens)
            # A word that is half of a hyphenated ZIP+4 is not a code on its own.
            halves = {id(m) for w in joined for m in w}
            # (word, ends its line, score bonus, most marks it may have)
            options = [(w, i == len(words) - 1, 0.0 if id(w[0]) not in halves else -0.15,
                        MAX_DIGITS) for i, w in enumerate(words)]
            options += [(w, w[-1] is line[-1], 0.05, MAX_DIGITS + ZIP4_EXTRA_MARKS)
                        for w in joined]
            for word, last, bonus, most in options:
                key = tuple(id(m) for m in word)
                if _fits(word, most) and key not in seen:
                    seen.add(key)
                    found.append(_score(word, last, len(words) == 1, ctx, bonus))
    return found
