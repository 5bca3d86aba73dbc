"""Pick the recipient's field, apply the code format, and decide the read's status.

Each candidate field is cut and classified; for free-form fields a few segmentations
(the natural one, and ones forced to each digit count the format allows) are tried and
the one the classifier is surest of is kept. The best field is the one whose location
score and digit confidence together are highest. Confidence is the product of the
digits' calibrated probabilities; the read is accepted only when it reaches the review
threshold and the digit count fits the format, and otherwise says why it needs review.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from postread.classify import DigitClassifier, judge_crops, to_predictions
from postread.field import locate
from postread.orientation import SURE_TURNED, read_any_way_up
from postread.records import CodeField, CodeRead, DigitCrop, DigitPrediction, FieldKind, Status
from postread.segment import segment
from postread.segment_lattice import Lattice, Path, best_paths, lattice

DEFAULT_REVIEW_BELOW = 0.99
"""Reads less confident than this need a person: the lowest threshold at which accepted
reads are at least 99.5% right on the development sets and on fresh sets made after the
choice. Measured with model 1.2.0 on generated envelopes with MNIST-test digits
(pipelines/evaluate_reads.py): on 1,200 (seeds 909 and 4242) 0.97 accepts 70% with 0.60%
of them wrong, 0.98 68% with 0.49% (just inside the limit), 0.99 63% with 0.40%; with two
more sets (tune600 and val1000, 2,800 in all) 0.98 accepts 68% with 0.37% wrong (7 of
1,921), 0.99 63% with 0.34% (6 of 1,762). On fresh sets 0.98 fails: 0.69% wrong on
thr1000a (seed 60606), 0.43% on fresh1000c (seed 90909); 0.99 gives 0.45% and none. On the
1,000 of the reporting set (seed 777) 0.97 accepts 73% with 0.41% wrong, 0.99 66% with
none. Most of the last errors are MNIST digits the model misreads even as clean images,
or touching digits read as one."""
NAMED_FORMATS = {"us": (5, 9), "fr": (5,), "cn": (6,), "jp": (7,), "hu": (4,)}
"""Digit counts each named format allows."""
AUTO_BOXES = range(4, 8)
AUTO_FREEFORM = range(4, 10)
BOX_CONVENTIONS = {5: "fr", 6: "cn", 7: "jp"}
"""What a full box row of this many boxes is called in the read's format column."""
MAX_FREEFORM = 12
"""Longest free-form reading considered (longer ones are text, not codes)."""
CUT_MARGIN = 1.5
"""A different cut of the row within this cost (log units) of the best, whose digits the
classifier reads at least as surely, needs a person: the shape priors alone chose between
them. It is half a unit wider than the 1.0 it was when cutting a mark cost 1.0
(``SPLIT_COST`` is now 1.5): a cut-in-two rival (a touching 21 read as one sure 2) keeps
the window it had. A rival read less surely is not a doubt: classifier and priors agree
(on 2,800 development envelopes, 36 right reads at 0.99 or more were sent to review for such
rivals, and no wrong one)."""
ODD_SHAPE = 2.5
"""A mark read whose shape cost reaches this is unlike one digit (one cut, ``SPLIT_COST``,
plus a whole unit more). Measured per mark: summed over the row, two ordinary touching pairs
(1.5 each), or a pair and a wide digit, were a doubt too, and on six evaluation sets (5,200
envelopes) that sent 13 more right reads at 0.99 or more to review, and no wrong one."""
LEFTOVER = 0.25
"""Ink in the row outside every digit, in digits' worth, that may be part of a digit."""
LEFT_OUT_DIGIT = (0.5, 0.9)
"""A mark left out of a free-form reading that is this tall (times the digits read) and read
this surely as a digit on its own needs a person. Marks under 0.6 of the row are taken for
pieces and specks (``segment_lattice.FRAGMENT``), and a short 1 between two digits was
dropped so: 24299 for 241299, accepted at 0.999. Taking such marks for digits instead
(FRAGMENT 0.5) broke 6 reads to mend 1; as a doubt, on six evaluation sets (5,200
envelopes) it held 2 reads, both with that digit lost, and no right one."""
SURE_PAIR = 0.99
"""A digit read from a mark the model's pair judge gives this chance of holding two touching
digits needs a person. Its cost in the lattice (``PAIR_WEIGHT``) cuts most such marks; one
kept whole when its halves read badly is a digit lost (1409972 for 14099721 at 0.996,
accepted). On six evaluation sets (5,200 envelopes) this sent 1 of 7 reads accepted wrong
at 0.99 to review and no right one. At 0.9 it also took 3 right ones, at 0.5 8 (the judge
takes some blurred lowres and messy digits for pairs)."""
LARGER_ROW = 1.2
"""A box row whose boxes are this much taller than another's is the recipient's, the other
the sender's."""
MIN_BOX_SHARE = 0.035
"""An empty box row less tall than this share of the image is no code field (the sender's
boxes are about 0.05 of an envelope's height, the recipient's 0.1; a photo shrinks both)."""
BOX_ASPECT = (0.6, 1.2)
"""A one-digit box is about as wide as tall (width / height; printed rows are 0.7-0.9): an
empty "row" of boxes half as wide as tall was the texture of a photo's background."""
ZIP4_DIGITS = 9
"""A free-form field of two hyphenated groups (ZIP+4) holds 5 + 4 digits."""
LINE_END_DIGITS = (5, 9)
"""A code ending a line of writing is a US ZIP (``CITY ST 12345``); the other conventions
write it alone (Hungary's under the town, a label's). On 600 generated envelopes every
line-end read of another length was wrong (a touching pair read as one digit)."""
READ_AT_MOST = 4
"""Candidate fields classified per scan (the best by location score)."""
DISAGREE_MARGIN = 0.05
"""Two fields whose ranks are this close and whose codes differ need a person."""
RIVAL_CONFIDENCE = 0.5
"""A rival field read less surely than this is text or scribble, not a competing code."""
RIVAL_HEIGHT = 0.7
"""A rival whose digits are smaller than this share of the best's is print, not a code."""
MIN_FREEFORM_CONFIDENCE = 0.5
"""A best free-form candidate read less surely than this is taken for no code at all."""
WORDLIKE_CONFIDENCE = 0.9
"""The same for a row whose marks stand like lowercase letters: printed town names
("Budapest", "Gyor") read as digits at 0.5-0.9, written codes that look so mostly above.
Asking it also of rows of uneven heights (a photo's "Szeged" whose letters ran together
into 4 marks, read 520900 at 0.54) was tried: over the six development and fresh sets it
failed 8 right reads (6 of them messy, at 0.54-0.89: a broken digit's piece is short too)
to mend 1."""
MIN_RANK = 0.3
"""Below this rank the best candidate is not taken for a code at all (text, numbers)."""


@dataclass(frozen=True)
class CodeFormat:
    """Which digit counts a read may have."""

    name: str
    """As given: auto, us, fr, cn, jp, hu or digits:N."""
    boxes: tuple[int, ...]
    """Allowed digit counts in a box row."""
    freeform: tuple[int, ...]
    """Allowed digit counts in a free-form field."""

    def counts_for(self, field: CodeField) -> tuple[int, ...]:
        """The digit counts this field may hold: in auto, a line-end code is a US ZIP."""
        if field.kind is FieldKind.BOXES:
            return self.boxes
        if self.name == "auto" and field.row.line_end:
            return tuple(n for n in self.freeform if n in LINE_END_DIGITS)
        return self.freeform

    def fits(self, field: CodeField, count: int) -> bool:
        """True when ``count`` digits fit this format for this field."""
        return count in self.counts_for(field)

    def label(self, field: CodeField, count: int) -> str:
        """The format name stored with a read of ``count`` digits from ``field``."""
        if self.name == "us":
            return "us+4" if count == ZIP4_DIGITS else "us"
        if self.name != "auto":
            return self.name
        if field.kind is FieldKind.BOXES and count in BOX_CONVENTIONS:
            return BOX_CONVENTIONS[count]
        if count == ZIP4_DIGITS:
            return "us+4"
        # A line-end row is read as a US ZIP (``counts_for``), so it is stored as one.
        return "us" if field.row.line_end and count in LINE_END_DIGITS else f"digits:{count}"


def parse_format(name: str) -> CodeFormat:
    """A CodeFormat from ``auto``, ``us``, ``fr``, ``cn``, ``jp``, ``hu`` or ``digits:N``."""
    name = name.strip().lower()
    if name == "auto":
        return CodeFormat(name, tuple(AUTO_BOXES), tuple(AUTO_FREEFORM))
    if name in NAMED_FORMATS:
        counts = NAMED_FORMATS[name]
        return CodeFormat(name, counts, counts)
    if name.startswith("digits:") and name[7:].isdigit() and 1 <= int(name[7:]) <= 12:
        count = (int(name[7:]),)
        return CodeFormat(name, count, count)
    raise ValueError(f"unknown code format {name!r} (auto, us, fr, cn, jp, hu or digits:N)")


@dataclass(frozen=True)
class FieldRead:
    """One candidate field, cut and classified."""

    field: CodeField
    digits: tuple[DigitPrediction, ...]
    empty_inside: bool
    """A box row with an empty box between written ones (or before them)."""
    doubts: tuple[str, ...] = ()
    """Free-form: why the cut into digits is uncertain (another cut reads as well, ...)."""

    @property
    def code(self) -> str:
        """The digits read, in order."""
        return "".join(str(d.label) for d in self.digits)

    @property
    def confidence(self) -> float:
        """Product of the digits' probabilities (0 for no digits)."""
        return float(np.prod([d.probability for d in self.digits])) if self.digits else 0.0

    @property
    def typical(self) -> float:
        """Geometric mean of the digits' probabilities: compares codes of different length."""
        return self.confidence ** (1 / len(self.digits)) if self.digits else 0.0


def _classify(crops: list[DigitCrop], classifier: DigitClassifier) -> list[DigitPrediction]:
    written = [c for c in crops if not c.empty]
    if not written:
        return []
    probabilities = classifier.probabilities(np.stack([c.pixels for c in written]))
    return to_predictions(probabilities, [c.box for c in written])


def _read_boxes(image: np.ndarray, field: CodeField, classifier: DigitClassifier) -> FieldRead:
    crops = segment(image, field, judge=classifier.probabilities)
    written = [i for i, c in enumerate(crops) if not c.empty]
    # Trailing empty boxes are normal (a 7-box row holding a 5-digit code); gaps are not.
    empty_inside = bool(written) and any(crops[i].empty for i in range(written[-1]))
    doubts = tuple(dict.fromkeys(c.doubt for c in crops if c.doubt))
    return FieldRead(field, tuple(_classify(crops, classifier)), empty_inside, doubts)


def _read_freeform(image: np.ndarray, field: CodeField, classifier: DigitClassifier,
                   fmt: CodeFormat) -> FieldRead:
    lat = lattice(image, field)
    crops = [c for arc in lat.arcs for c in arc.crops]
    if not crops:
        return FieldRead(field, (), False)
    probabilities, pair_chances = judge_crops(classifier, np.stack([c.pixels for c in crops]))
    per_arc, pairs, at = [], [], 0
    for arc in lat.arcs:
        per_arc.append(probabilities[at:at + len(arc.crops)])
        pairs.append(pair_chances[at:at + len(arc.crops)])
        at += len(arc.crops)
    counts = fmt.counts_for(field)
    # Readings weighed against the chosen one: every count the format allows, also where
    # the row's place narrows the choice (a line-end ZIP read 5 digits over a cheaper 4).
    weighed = fmt.freeform
    if field.row.zip4 and ZIP4_DIGITS in counts:
        # 5 + 4 digits around the hyphen, whatever the ink suggests
        counts = weighed = (ZIP4_DIGITS,)
    paths = best_paths(lat, per_arc, tuple(range(1, MAX_FREEFORM + 1)), pairs)
    if not paths:
        return FieldRead(field, (), False)
    # The cheapest cut that fits the format; the cheapest of all when none does.
    pool = {n: p for n, p in paths.items() if n in counts} or paths
    best = min(pool.values(), key=lambda p: p.cost)
    doubts = []
    # A different reading that also fits the format, nearly as cheap (or cheaper, where
    # the row's place ruled out its count): a person decides.
    rivals = [p for n, p in paths.items() if n in weighed or n in pool]
    other = min((p for p in rivals if p.code != best.code), key=lambda p: p.cost, default=None)
    if other is not None and other.cost - best.cost < CUT_MARGIN \
            and other.confidence >= best.confidence:
        doubts.append(f"another cut of the row reads {other.code} "
                      f"(cost {other.cost - best.cost:+.1f})")
    if lat.leftover >= LEFTOVER:
        doubts.append(f"ink beside the digits left unread ({lat.leftover:.2f} of a digit)")
    if best.oddest >= ODD_SHAPE:
        doubts.append("a mark that does not look like one digit")
    if _cut_by_edge(best.crops, field):
        doubts.append("a digit cut off by the field's edge")
    if max(float(pairs[k].max(initial=0.0)) for k in best.arcs) >= SURE_PAIR:
        doubts.append("a mark read as one digit looks like two touching digits")
    if _sure_digit_left_out(lat, per_arc, best):
        doubts.append("a mark left out of the code reads as a digit")
    digits = to_predictions(best.probabilities, [c.box for c in best.crops])
    return FieldRead(field, tuple(digits), False, tuple(doubts))


def _sure_digit_left_out(lat: Lattice, per_arc: list[np.ndarray], path: Path) -> bool:
    """True when a mark the path leaves out is tall and read surely as one digit."""
    left_out = {lat.arcs[k].start for k in path.arcs if not lat.arcs[k].crops}
    height = float(np.median([c.box[3] for c in path.crops]))
    tallest, surest = LEFT_OUT_DIGIT
    return any(arc.start in left_out and arc.end == arc.start + 1 and len(arc.crops) == 1
               and arc.crops[0].box[3] >= tallest * height and probabilities[0].max() >= surest
               for arc, probabilities in zip(lat.arcs, per_arc, strict=True))


def _cut_by_edge(crops: tuple[DigitCrop, ...], field: CodeField) -> bool:
    """True when a crop read as a digit reaches the free-form field's left or right edge.

    The field is the row padded by a quarter of a digit; ink that reaches its edge is a
    mark the locator left out of the row, cut where the field ends (a 9's stem without
    its loop reads as a sure 1).
    """
    left, right = field.box[0], field.box[0] + field.box[2]
    return any(c.box[0] <= left or c.box[0] + c.box[2] >= right for c in crops)


def read_field(image: np.ndarray, field: CodeField, classifier: DigitClassifier,
               fmt: CodeFormat) -> FieldRead:
    """Cut and classify one candidate field (trying segmentations for free-form ones)."""
    if field.kind is FieldKind.BOXES and field.cells:
        return _read_boxes(image, field, classifier)
    return _read_freeform(image, field, classifier, fmt)


def rank(read: FieldRead, fmt: CodeFormat) -> float:
    """Location score weighted by how sure the classifier is and whether the format fits."""
    if not read.digits:
        return 0.0
    fits = 1.0 if fmt.fits(read.field, len(read.digits)) else 0.6
    whole = 0.8 if read.empty_inside else 1.0
    return read.field.score * (0.5 + 0.5 * read.typical) * fits * whole


def _empty_recipient_boxes(reads: list[FieldRead], image_height: int) -> FieldRead | None:
    """The largest box row when it is empty and clearly larger than any written one.

    The recipient's boxes are the large ones (the sender's are smaller); when they are
    empty there is no code to read, whatever is written in the sender's boxes. A row of
    tiny boxes (a stamp's or an imprint's frames) is nobody's code field.
    """
    rows = _box_rows(reads)
    if not rows:
        return None
    largest = max(rows, key=_cell_height)
    written = [_cell_height(r) for r in rows if r.digits]
    if largest.digits or any(h > _cell_height(largest) / LARGER_ROW for h in written):
        return None
    narrowest, widest = BOX_ASPECT
    if not narrowest <= _cell_aspect(largest) <= widest:
        return None
    return largest if _cell_height(largest) >= MIN_BOX_SHARE * image_height else None


def _larger_written_boxes(best: FieldRead, reads: list[FieldRead]) -> FieldRead | None:
    """A box row clearly larger than the chosen one that has ink read as digits.

    The recipient's boxes are the large ones: when the chosen row is smaller, what it says
    is the sender's code, unless the large row's marks are not a code (a photo's print
    outline left in an empty row reads as a stray 1 or two); a person decides.
    """
    if not _box_rows([best]):
        return None
    height = _cell_height(best)
    return next((r for r in _box_rows(reads)
                 if r.digits and _cell_height(r) > LARGER_ROW * height), None)


def _box_rows(reads: list[FieldRead]) -> list[FieldRead]:
    return [r for r in reads if r.field.kind is FieldKind.BOXES and r.field.cells]


def _cell_height(read: FieldRead) -> float:
    return float(np.median([h for _, _, _, h in read.field.cells]))


def _cell_aspect(read: FieldRead) -> float:
    return float(np.median([w / h for _, _, w, h in read.field.cells]))


def _digit_height(read: FieldRead) -> float:
    return float(np.median([d.box[3] for d in read.digits]))


def _inside(inner: CodeField, outer: CodeField) -> bool:
    """True when most of ``inner``'s box lies in ``outer``'s (one row cut two ways)."""
    ax, ay, aw, ah = inner.box
    bx, by, bw, bh = outer.box
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    return w > 0 and h > 0 and w * h > 0.7 * aw * ah


def _rivals(best: FieldRead, other: FieldRead, fmt: CodeFormat) -> bool:
    """True when ``other`` is a code as plausible as ``best`` that says something else.

    Only a genuine competitor counts: close in rank, read as digits with some confidence,
    written about as large (a sender's printed code or a postmark's date is smaller),
    and not merely a part of the best field's own row (a ZIP+4's last four digits).
    """
    if not other.digits or other.code == best.code:
        return False
    if not fmt.fits(other.field, len(other.digits)):
        return False
    if rank(other, fmt) <= rank(best, fmt) - DISAGREE_MARGIN:
        return False
    if other.confidence < RIVAL_CONFIDENCE:
        return False
    if _digit_height(other) < RIVAL_HEIGHT * _digit_height(best):
        return False
    freeform = FieldKind.FREEFORM
    return not (best.field.kind is freeform and other.field.kind is freeform
                and _inside(other.field, best.field))


def _problems(best: FieldRead, rival: FieldRead | None, fmt: CodeFormat,
              review_below: float) -> list[str]:
    problems = []
    count, kind = len(best.digits), best.field.kind
    if not fmt.fits(best.field, count):
        counts = fmt.counts_for(best.field)
        if kind is FieldKind.FREEFORM and counts != fmt.freeform:
            problems.append(f"{count} digits at the end of an address line "
                            f"(a US ZIP has {' or '.join(str(n) for n in counts)})")
        else:
            expected = (f"{min(counts)}-{max(counts)}" if fmt.name == "auto"
                        else " or ".join(str(n) for n in counts))
            problems.append(f"{count} digits, format {fmt.name} expects {expected}")
    if best.empty_inside:
        problems.append("empty box in the field")
    problems.extend(best.doubts)
    if best.field.row.partial:
        problems.append("the row goes on past the field (cut short, or half a ZIP+4?)")
    if best.field.row.zip4 and count != ZIP4_DIGITS:
        problems.append(f"{count} digits in a hyphenated ZIP+4 field (9 expected)")
    if best.confidence < review_below:
        # Three decimals, cut rather than rounded: 0.9891 is "0.989 below 0.99", never
        # "0.99 below 0.99".
        shown = math.floor(best.confidence * 1000) / 1000
        problems.append(f"confidence {shown:.3f} below {review_below:.2f}")
    if rival is not None:
        problems.append(f"two candidate fields disagree: {best.code} vs {rival.code}")
    return problems


def _not_a_code(best: FieldRead) -> str:
    """Why the best free-form row is no code (the end of the failure's reason), or "".

    Words and street numbers read as digits only half-heartedly; a written code the
    classifier is this unsure of is rare, and a person sees the guess in the reason. (Five
    digits, a hyphen and four more are a ZIP+4 however unsure the digits: that goes to
    review with its reading.) A row that is the sender's or the postage's (small print top
    left, in the postage band, in a postmark ring) wins only where no recipient's row was
    seen: over seven evaluation sets (5,800 envelopes) none of the 10 such rows that won
    was the code; 6 were envelopes without one.
    """
    row = best.field.row
    least, kind_of_text = ((WORDLIKE_CONFIDENCE, "its marks stand like a word's letters")
                           if row.wordlike else (MIN_FREEFORM_CONFIDENCE, "text or numbers"))
    if not row.zip4 and best.confidence < least:
        return f": {kind_of_text}, not a code"
    if row.misplaced:
        return f", but it is {row.misplaced}: not the recipient's"
    return ""


def _read_candidates(image: np.ndarray, fields: list[CodeField],
                     classifier: DigitClassifier, fmt: CodeFormat) -> list[FieldRead]:
    """Read the candidate fields (best location score first) that can still matter.

    A field's rank is at most its location score, so a free-form field whose score is
    below the best rank so far by DISAGREE_MARGIN can neither win nor be a rival: it is
    not cut and classified (most of a scan's cutting and classifying goes to such rows of
    address text). Box rows are always read: an empty one says there is no code.
    """
    reads: list[FieldRead] = []
    best = 0.0
    for field in fields:
        if field.kind is FieldKind.FREEFORM and field.score <= best - DISAGREE_MARGIN:
            continue
        read = read_field(image, field, classifier, fmt)
        best = max(best, rank(read, fmt))
        reads.append(read)
    return reads


def assemble(image: np.ndarray, fields: list[CodeField], classifier: DigitClassifier,
             fmt: CodeFormat, review_below: float) -> CodeRead:
    """The CodeRead for a scan from its candidate fields (best first)."""
    if not fields:
        return CodeRead(Status.FAILED, "", 0.0, "no postal-code field found", fmt.name)
    considered = fields[:READ_AT_MOST]
    reads = _read_candidates(image, considered, classifier, fmt)
    ranked = sorted(reads, key=lambda r: rank(r, fmt), reverse=True)
    best = ranked[0]
    # An empty box row ranked below the classified ones still says "no code here" (its
    # empty boxes rank low), even beside a surely read free-form row: a printed "BP 14"
    # above a French envelope's empty boxes read as a sure 8814 (3 envelopes of 5,800;
    # no envelope with a code was lost to it).
    rows = [read_field(image, f, classifier, fmt) for f in fields[READ_AT_MOST:]
            if f.kind is FieldKind.BOXES and len(f.cells) in AUTO_BOXES]
    everything = reads + rows
    empty = _empty_recipient_boxes(everything, image.shape[0])
    if empty is not None:
        return CodeRead(Status.FAILED, "", 0.0, "the recipient's code boxes are empty",
                        fmt.name, field=empty.field, candidates=tuple(fields))
    if best.field.kind is FieldKind.FREEFORM and best.digits and (why := _not_a_code(best)):
        return CodeRead(Status.FAILED, "", 0.0, f"no postal code found (the likeliest "
                        f"free-form row reads {best.code} at confidence "
                        f"{best.confidence:.2f}{why})", fmt.name, candidates=tuple(fields))
    if not best.digits or rank(best, fmt) < MIN_RANK:
        return CodeRead(Status.FAILED, "", 0.0, "no postal-code field found (only empty "
                        "box rows or marks that do not read as a code)", fmt.name,
                        candidates=tuple(fields))
    rival = next((r for r in ranked[1:] if _rivals(best, r, fmt)), None)
    problems = _problems(best, rival, fmt, review_below)
    larger = _larger_written_boxes(best, everything)
    if larger is not None:
        problems.append(f"a larger box row (the recipient's?) reads {larger.code}")
    chosen = best.field
    evidence = f"{chosen.evidence}; chosen with rank {rank(best, fmt):.2f}"
    if len(considered) > 1:
        evidence += f" over {len(considered) - 1} other candidate(s)"
    chosen = replace(chosen, evidence=evidence)
    return CodeRead(
        status=Status.NEEDS_REVIEW if problems else Status.ACCEPTED,
        code=best.code,
        confidence=best.confidence,
        reason="; ".join(problems),
        format=fmt.label(best.field, len(best.digits)),
        field=chosen,
        digits=best.digits,
        candidates=tuple(fields),
    )


def read_image(image_bgr: np.ndarray, classifier: DigitClassifier, fmt: str = "auto",
               review_below: float = DEFAULT_REVIEW_BELOW) -> CodeRead:
    """Read the recipient's postal code from one BGR envelope image, any way up.

    Args:
        image_bgr: The scan, H x W x 3 uint8 BGR.
        classifier: Gives calibrated digit probabilities.
        fmt: auto, us, fr, cn, jp, hu or digits:N.
        review_below: Reads less confident than this need review.
    """
    code_format = parse_format(fmt)

    def read(image: np.ndarray, threshold: float) -> CodeRead:
        # Locate every candidate field (colour box rows, free-form digit rows), then cut,
        # classify and choose among them
        return assemble(image, locate(image), classifier, code_format, threshold)

    # An envelope the wrong way up is read again turned (only when it did not read upright);
    # a turned read is only a suggestion for a person, judged by SURE_TURNED at most.
    return read_any_way_up(image_bgr, functools.partial(read, threshold=review_below),
                           functools.partial(read, threshold=min(review_below, SURE_TURNED)))
