"""Free-form codes: location cues, the segmentation lattice, and the review rules they feed."""

import cv2
import numpy as np
import pytest

from pipelines.synth_envelopes import make_envelope
from postread.assemble import assemble, parse_format, read_field
from postread.classify import load_classifier
from postread.field import locate
from postread.field_freeform import Mark, _fits, _join_pieces, _lines, _zip4, find_freeform
from postread.field_view import View, long_runs
from postread.records import CodeField, FieldKind, RowTraits, Status
from postread.segment import _marks, _split
from postread.segment_lattice import _cuts, _digit_width, _row_height, _row_ink, best_paths, lattice


class SureClassifier:
    """Reads every crop as ``digit`` with probability ``p``: the shape prior decides cuts."""

    version = "sure"

    def __init__(self, digit: int = 3, p: float = 0.99):
        self.digit, self.p = digit, p

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        out = np.full((len(crops), 10), (1 - self.p) / 9)
        out[:, self.digit] = self.p
        return out


def field_of(ink: np.ndarray, **traits) -> CodeField:
    """A free-form field of ``ink`` whose row the locator saw with ``traits`` (RowTraits)."""
    return CodeField(box=(0, 0, ink.shape[1], ink.shape[0]), kind=FieldKind.FREEFORM,
                     score=0.7, evidence="drawn", ink=ink, row=RowTraits(**traits))


def row_ink(marks: str, width: int = 520, height: int = 120) -> np.ndarray:
    """A row drawn from ``marks``: 'o' a digit-sized ring, 'i' a fragment, ':' a dotted trail,
    'w' two rings touching (one wide mark), 'p' two rings just touching (a pair as wide as
    two digits), 'W' four rings touching, 'l' a tall stroke (a 1),
    '|' a line from edge to edge of the field (a frame's or the paper's edge)."""
    ink = np.zeros((height, width), np.uint8)
    x = 20
    for mark in marks:
        if mark == "o":
            cv2.ellipse(ink, (x + 25, 60), (22, 38), 0, 0, 360, 255, 7)
            x += 70
        elif mark == "w":
            cv2.ellipse(ink, (x + 25, 60), (22, 38), 0, 0, 360, 255, 7)
            cv2.ellipse(ink, (x + 66, 60), (22, 38), 0, 0, 360, 255, 7)
            x += 112
        elif mark == "p":
            cv2.ellipse(ink, (x + 25, 60), (22, 38), 0, 0, 360, 255, 7)
            cv2.ellipse(ink, (x + 73, 60), (22, 38), 0, 0, 360, 255, 7)
            x += 118
        elif mark == "W":
            for k in range(4):
                cv2.ellipse(ink, (x + 25 + 41 * k, 60), (22, 38), 0, 0, 360, 255, 7)
            x += 194
        elif mark == "l":
            cv2.line(ink, (x + 5, 24), (x + 5, 96), 255, 7)
            x += 30
        elif mark == "|":
            cv2.line(ink, (x + 5, 2), (x + 5, height - 3), 255, 7)
            x += 30
        elif mark == "i":
            cv2.line(ink, (x + 5, 70), (x + 5, 90), 255, 7)
            x += 30
        elif mark == ":":
            for y in range(25, 100, 12):
                cv2.line(ink, (x + 3, y), (x + 3, y + 4), 255, 4)
            x += 25
    return ink


def read(ink: np.ndarray, fmt: str = "auto", classifier=None, **extra):
    return read_field(None, field_of(ink, **extra), classifier or SureClassifier(),
                      parse_format(fmt))


def test_plain_row_reads_one_digit_per_mark():
    assert read(row_ink("oooo")).code == "3333"


def test_two_touching_digits_are_cut_apart():
    ink = row_ink("owo")
    assert cv2.connectedComponents(ink)[0] - 1 == 3
    assert read(ink).code == "3333"


def test_a_fragment_is_not_read_as_a_digit():
    result = read(row_ink("ooio"))
    assert result.code == "333"  # the short stroke is left out, not a fourth digit
    assert result.doubts == ()


def test_a_line_taller_than_the_row_is_not_read_as_a_one():
    # A binarised scan's paper edge beside the code: a confident 1 to the classifier.
    result = read(row_ink("oooo|", height=140), classifier=SureClassifier(digit=1))
    assert len(result.digits) == 4
    assert result.doubts == ()


def _code_across_a_labels_edge() -> tuple[np.ndarray, int]:
    """Ink of a handwritten-style code whose last digit a label's edge runs through."""
    ink = np.zeros((600, 1400), np.uint8)
    font = cv2.FONT_HERSHEY_SCRIPT_SIMPLEX
    cv2.putText(ink, "2967924", (500, 300), font, 3.0, 255, 6)
    x = 500 + cv2.getTextSize("296792", font, 3.0, 6)[0][0] + 20
    cv2.line(ink, (x, 150), (x + 5, 380), 255, 4)  # the edge, a little slanted, through the 4
    cv2.line(ink, (400, 380), (x + 5, 380), 255, 4)  # and the label's bottom, under the code
    return ink, x


def test_a_code_crossed_by_a_labels_edge_is_found_whole():
    ink, edge = _code_across_a_labels_edge()
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    best = max(find_freeform(view), key=lambda f: f.score)
    assert best.rect[0] + best.rect[2] > edge + 30  # the row goes on past the edge


def test_a_line_through_a_digit_is_taken_out_and_the_digit_read():
    # Left in, the digit and the line made one mark too tall to be a digit, and the row
    # was read without it (the sure 296792 of a 2967924).
    ink, edge = _code_across_a_labels_edge()
    image = cv2.cvtColor(255 - ink, cv2.COLOR_GRAY2BGR)
    field = CodeField(box=(470, 200, edge + 150 - 470, 130), kind=FieldKind.FREEFORM,
                      score=0.7, evidence="drawn")
    result = read_field(image, field, load_classifier(), parse_format("auto"))
    assert result.code == "2967924"


def test_a_digits_pale_stroke_stays_in_its_crop():
    # A 9 whose loop is pale (MNIST's grey strokes, a pen running dry): its mark is the
    # stem alone, but the crop the classifier sees must hold the loop too, or it is a 1.
    ink = row_ink("oo")
    cv2.ellipse(ink, (185, 45), (20, 22), 0, 0, 360, 70, 5)
    cv2.line(ink, (205, 40), (205, 98), 255, 7)
    stem = [a for a in lattice(None, field_of(ink)).arcs if a.start == 2 and len(a.crops) == 1]
    columns = np.nonzero(stem[0].crops[0].pixels.any(axis=0))[0]
    assert columns.max() - columns.min() > 10  # a loop and a stem, not a stroke


def test_a_zip_first_digit_set_apart_is_taken_back_into_the_zip4():
    # "OR 9 6457-2206": the 9 stands apart from 6457 (its own word); the ZIP+4 is the 9,
    # the four after it and the four after the hyphen, not the state's letters.
    def digits(x0, count):
        return [Mark(x0 + 25 * i, 0, 18, 30) for i in range(count)]

    state, nine = digits(0, 2), [Mark(80, 0, 18, 30)]
    first, second = digits(130, 4), digits(250, 4)
    hyphen = Mark(232, 14, 12, 3)
    (zip4,) = _zip4([state, nine, first, second], [hyphen])
    assert zip4 == nine + first + second
    far = [Mark(30, 0, 18, 30)]  # 82 px (2.7 digit heights) before the rest: another word
    (zip4,) = _zip4([far, first, second], [hyphen])
    assert zip4 == first + second
    # One of the four a round 3 a little wider than tall: still one digit, not two.
    wide = [*digits(130, 2), Mark(180, 0, 34, 30), Mark(225, 0, 18, 30)]
    after = digits(265, 4)
    (zip4,) = _zip4([state, nine, wide, after], [Mark(247, 14, 12, 3)])
    assert zip4 == nine + wide + after


def test_a_small_digit_cut_off_a_zip_is_taken_back_but_a_speck_is_not():
    # "965 87-2195": the first three digits stand apart, the 5 two thirds the others' height.
    def digits(x0, count, h=30):
        return [Mark(x0 + 25 * i, 30 - h, 18, h) for i in range(count)]

    before = digits(0, 2) + [Mark(50, 10, 18, 20)]
    first, second = digits(100, 2), digits(170, 4)
    hyphen = Mark(152, 14, 12, 3)
    (zip4,) = _zip4([before, first, second], [hyphen])
    assert zip4 == before + first + second
    speck = digits(0, 2) + [Mark(50, 15, 18, 15)]  # half their height: not a digit
    (zip4,) = _zip4([speck, first, second], [hyphen])
    assert zip4 == first + second


def test_a_thin_five_broken_where_it_turns_is_one_mark():
    # The top stroke and the bowl of a pale 5 touch at one row and overlap a little: one
    # mark. Left apart, the line's word is cut after the 5's top and the code not found.
    top, bowl = Mark(690, 512, 32, 18), Mark(678, 530, 23, 14)
    letters = [Mark(600 + 20 * i, 400, 16, 20) for i in range(12)]  # the text around
    joined = _join_pieces([top, bowl, *letters])
    assert Mark(678, 512, 44, 32) in joined
    assert len(joined) == 13


def test_a_big_five_broken_in_two_flat_halves_is_one_mark_but_a_word_over_a_digit_is_two():
    # A 5 written six times the size of the sender's print, broken under its flag a few
    # pixels apart: both halves are taller than a printed letter, but wider than tall, so
    # they are pieces, not two whole characters. Left apart, the code was not found.
    flag, bowl = Mark(715, 301, 67, 32), Mark(696, 338, 61, 25)
    letters = [Mark(40 + 10 * i, 54, 8, 13) for i in range(12)]  # the sender's print
    joined = _join_pieces([flag, bowl, *letters])
    assert Mark(696, 301, 86, 62) in joined and len(joined) == 13
    # Joined cursive letters (flat) just above a digit (upright) stay two characters.
    word, digit = Mark(540, 463, 63, 22), Mark(549, 496, 29, 32)
    joined = _join_pieces([word, digit, *letters])
    assert word in joined and digit in joined and len(joined) == 14


def test_a_row_written_sloping_down_is_one_line():
    # Each digit a quarter of its height lower than the one before (a code written downhill,
    # or a scan turned the wrong way): the line follows it. Measured against the centre of
    # its last three marks alone, it broke after every few digits and the code was not found.
    marks = [Mark(100 + 75 * k, 300 + 20 * k, 60, 80) for k in range(8)]
    assert _lines(marks, 10, 200) == [marks]


def test_a_zip4_with_a_spaced_hyphen_is_one_line_but_print_before_a_dash_is_not():
    # "68245 - 7405": the hyphen stands in a gap of 1.8 digit heights, wider than a line
    # takes; each half was read alone (68245, sure, and in review as half a ZIP+4).
    first = [Mark(100 + 36 * i, 0, 26, 33) for i in range(5)]
    second = [Mark(100 + 36 * 5 + 50 + 36 * i, 1, 26, 33) for i in range(4)]
    hyphen = Mark(first[-1].right + 18, 15, 20, 4)
    assert _lines(first + second, 10, 200) == [first, second]
    assert _lines(first + second, 10, 200, [hyphen]) == [first + second]
    # Print a third smaller than the code before it ("TX", then a flat 5 taken for a
    # dash): not the same hand, the line stops.
    printed = [Mark(100 + 26 * i, 6, 20, 25) for i in range(2)]
    code = [Mark(printed[-1].right + 56 + 36 * i, 0, 26, 34) for i in range(5)]  # 1.6x
    dash = Mark(printed[-1].right + 18, 15, 20, 4)
    assert _lines(printed + code, 10, 200, [dash]) == [printed, code]


def test_a_zip4_written_with_spaces_round_its_hyphen_is_read_whole():
    ink = np.zeros((300, 1400), np.uint8)
    # A gap of 1.8 digit heights between the halves, the hyphen in its middle.
    for text, x in (("12345", 100), ("-", 370), ("6789", 435)):
        cv2.putText(ink, text, (x, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 255, 6)
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    assert any(f.row.zip4 and len(f.cells) == 9 for f in find_freeform(view))


def test_a_flag_drawn_apart_joins_its_five_but_a_hyphen_joins_nothing():
    # The 5's flag, lifted off the body and drawn to the right, overlaps it too little to
    # be a piece of it; a ZIP+4 hyphen at mid-height between two digits is no flag.
    body, flag = Mark(100, 30, 30, 50), Mark(122, 22, 34, 7)
    hyphen, after = Mark(140, 52, 14, 5), Mark(160, 30, 30, 50)
    letters = [Mark(600 + 20 * i, 400, 16, 20) for i in range(12)]  # the text around
    joined = _join_pieces([body, flag, hyphen, after, *letters])
    assert Mark(100, 22, 56, 58) in joined
    assert hyphen in joined and after in joined and len(joined) == 15


def test_a_messy_code_of_three_marks_may_hold_four_digits():
    # 5, a 9 and a 7 run together (one mark about as wide as tall), 8: a candidate code.
    assert _fits([Mark(684, 509, 37, 43), Mark(722, 505, 46, 44), Mark(767, 509, 29, 38)])
    # Two such marks are not read as a four-digit code (a bar, a blot and a letter).
    assert not _fits([Mark(0, 0, 44, 44), Mark(50, 0, 44, 44)])


def test_a_dotted_trail_is_left_out():
    assert read(row_ink("oo:oo")).code == "3333"


def test_four_touching_digits_are_cut_apart():
    # A messy hand runs a whole group together: one mark, four digits.
    ink = row_ink("oWo", width=420)
    assert cv2.connectedComponents(ink)[0] - 1 == 3
    assert read(ink, "digits:6").code == "333333"


def test_slanted_touching_digits_are_cut_along_the_gap_between_them():
    # Two zeros leaning right, the second's foot under the first's head: one mark, and no
    # straight cut leaves each half one digit.
    first, second = np.zeros((120, 220), np.uint8), np.zeros((120, 220), np.uint8)
    cv2.ellipse(first, (60, 60), (18, 38), 20, 0, 360, 255, 7)
    cv2.ellipse(second, (108, 60), (18, 38), 20, 0, 360, 255, 7)
    ink = first | second
    [mark] = _marks(ink)

    def purity(halves):  # the smaller share of its own digit's ink in either half
        return min(max((h.mask & (digit > 0)).sum() for digit in (first, second))
                   / h.mask.sum() for h in halves)

    assert purity(_split(mark, 2, ink)) < 0.8
    assert max(purity(halves) for halves in _cuts(mark, 2, ink)) > 0.97


def test_a_row_of_ones_does_not_make_its_other_digits_look_like_pairs():
    pieces = _marks(row_ink("llllo"))
    row = _row_height(pieces)
    # The ring's width (50 px) is the row's digit width, not the strokes' (7 px).
    assert _digit_width(pieces, row) > 45


def test_every_cut_fitting_the_format_is_weighed():
    lat = lattice(None, field_of(row_ink("owo")))
    per_arc = [SureClassifier().probabilities(np.zeros((len(a.crops), 28, 28)))
               for a in lat.arcs]
    paths = best_paths(lat, per_arc, (3, 4))
    # The wide mark read whole or cut in two: the classifier's surprise and the shape
    # prior decide between them, and assemble sees both.
    assert set(paths) == {3, 4}
    assert [len(p.crops) for p in (paths[3], paths[4])] == [3, 4]
    assert paths[4].oddest == pytest.approx(1.5)  # the cut mark pays one split (SPLIT_COST)


def test_strokes_reaching_in_from_the_line_above_are_dropped():
    ink = row_ink("oooo")
    cv2.line(ink, (100, 0), (110, 12), 255, 5)  # a descender of the line above
    cleaned = _row_ink(ink)
    assert cleaned[0:8, 95:115].max() == 0
    assert cleaned[60].max() == 255


def test_a_rule_touching_the_digits_does_not_join_them():
    ink = row_ink("oooo")
    cv2.line(ink, (10, 20), (330, 20), 255, 3)  # an underline of the line above, on the tops
    assert cv2.connectedComponents(ink)[0] - 1 == 1
    result = read(ink)
    assert result.code == "3333"
    assert result.doubts == ()


def test_ink_left_unread_needs_review():
    ink = row_ink("oooo")
    for x in range(300, 400, 12):  # specks too small to be marks, together half a digit
        cv2.circle(ink, (x, 60), 5, 255, -1)
    assert any("left unread" in d for d in read(ink).doubts)


def test_a_hyphenated_field_must_read_nine_digits():
    result = assemble(np.zeros((200, 600, 3), np.uint8), [field_of(row_ink("oooooo"),
                                                                   zip4=True)],
                      SureClassifier(), parse_format("auto"), 0.5)
    assert result.status is Status.NEEDS_REVIEW
    assert "hyphenated ZIP+4" in result.reason


def test_a_code_ending_an_address_line_must_read_as_a_us_zip():
    image = np.zeros((200, 600, 3), np.uint8)
    lone = assemble(image, [field_of(row_ink("oooo"))], SureClassifier(),
                    parse_format("auto"), 0.5)
    assert (lone.status, lone.code) == (Status.ACCEPTED, "3333")  # a Hungarian code
    # After "CITY ST" the code is a ZIP: 5 digits are sought, and none are seen.
    zip_read = assemble(image, [field_of(row_ink("oooo"), line_end=True)], SureClassifier(),
                        parse_format("auto"), 0.5)
    assert zip_read.status is Status.NEEDS_REVIEW
    # A touching pair read whole would make 4: the ZIP's fifth digit is cut out of it,
    # and the 4-digit reading, nearly as cheap, still makes a person look.
    zip_cut = read(row_ink("owoo"), line_end=True)
    assert zip_cut.code == "33333"
    assert any("another cut of the row reads 3333 " in d for d in zip_cut.doubts)


class WholePairUnsureClassifier(SureClassifier):
    """As SureClassifier, but a crop wider than tall (a pair read whole) is unsure of all."""

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        out = super().probabilities(crops)
        flat = (crops.max(axis=1) > 0).sum(axis=1) > (crops.max(axis=2) > 0).sum(axis=1)
        out[flat] = 0.1
        return out


def test_only_a_mark_unlike_one_digit_is_a_doubt_not_a_row_of_ordinary_cuts():
    # Two touching pairs, each cut once: ordinary handwriting, though the row's shape costs
    # add up to more than one odd mark's (summed, they sent right reads to review).
    pairs = read(row_ink("oopoop", width=800), classifier=WholePairUnsureClassifier(p=0.999))
    assert pairs.code == "33333333"
    assert pairs.doubts == ()
    # One mark of four rings, cut into three digits: unlike one digit or an ordinary pair.
    run = read(row_ink("oWo"), classifier=WholePairUnsureClassifier(p=0.999))
    assert run.code == "33333"
    assert "a mark that does not look like one digit" in run.doubts


class FlatUnsureClassifier(SureClassifier):
    """As SureClassifier, but unsure (0.9) of a crop wider than tall: a wide mark read whole."""

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        out = super().probabilities(crops)
        flat = (crops.max(axis=1) > 0).sum(axis=1) > (crops.max(axis=2) > 0).sum(axis=1)
        out[flat, self.digit] = 0.9
        return out


def test_a_rival_cut_read_less_surely_than_the_chosen_one_is_no_doubt():
    # The same line-end ZIP; now the classifier reads the touching pair whole less surely
    # than its two halves. The 4-digit reading is still the cheaper by shape, but the
    # digits agree with the format: nothing for a person to decide.
    zip_cut = read(row_ink("owoo"), line_end=True, classifier=FlatUnsureClassifier(p=0.999))
    assert zip_cut.code == "33333"
    assert zip_cut.doubts == ()


def test_a_row_in_the_senders_corner_is_no_recipients_code():
    ink = np.zeros((900, 1600), np.uint8)
    for y, text in ((60, "Mary Johnson"), (90, "1167 Pine Rd"), (120, "Boston MA")):
        cv2.putText(ink, text, (60, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    cv2.putText(ink, "79226", (60, 160), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.0, 255, 2)
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    corner = [f for f in find_freeform(view) if len(f.cells) == 5 and f.rect[1] > 130]
    assert corner and all("in the sender's corner" in f.row.misplaced for f in corner)
    # Chosen for want of a recipient's row, it is still no code, however sure its digits;
    # the reason says what it reads and where it is.
    image = np.zeros((200, 600, 3), np.uint8)
    read = assemble(image, [field_of(row_ink("ooooo"), misplaced="in the sender's corner")],
                    SureClassifier(p=0.9999), parse_format("auto"), 0.5)
    assert read.status is Status.FAILED and read.code == ""
    assert "reads 33333 at confidence 1.00" in read.reason
    assert "in the sender's corner: not the recipient's" in read.reason


def test_a_row_after_words_on_its_line_ends_the_line():
    ink = np.zeros((300, 1200), np.uint8)
    cv2.putText(ink, "Austin TX 73301", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 255, 6)
    cv2.putText(ink, "4025", (700, 100), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 255, 6)
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    rows = {len(f.cells): f for f in find_freeform(view)}
    assert rows[5].row.line_end and not rows[4].row.line_end


def test_a_large_digit_broken_across_its_middle_stays_one_mark():
    # A code written twice the address's size, its first digit broken by a pale gap two
    # pixels high: each piece is as tall as the address text, but the two are one digit
    # (two whole characters, one above the other, lie a line gap apart). Left apart, the
    # 5 was dropped and 566363 was accepted as 66363.
    ink = np.zeros((400, 1400), np.uint8)
    for row in range(3):
        cv2.putText(ink, "Main Street 12", (60, 60 + 40 * row), cv2.FONT_HERSHEY_SIMPLEX,
                    1.0, 255, 2)
    cv2.putText(ink, "566363", (100, 320), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 255, 6)
    ink[292:294, 90:150] = 0  # the 5's bowl comes apart from its top
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    rows = [f.cells for f in find_freeform(view) if f.rect[1] > 200 and len(f.cells) == 6]
    assert rows and all(cells[0][3] > 0.9 * cells[1][3] for cells in rows)  # the whole 5


@pytest.mark.parametrize("short", [2, 3])
def test_one_short_digit_does_not_cut_a_handwritten_code(short):
    # One digit drawn small (or broken, a piece lost) inside 3974175: the code stays one
    # word, whether the short digit comes after the jump in size or before it.
    ink = np.zeros((300, 1400), np.uint8)
    x = 100
    for index, digit in enumerate("3974175"):
        scale = 1.4 if index == short else 2.6
        cv2.putText(ink, digit, (x, 200), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 6)
        x += 62 if scale > 2 else 40
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    assert 7 in {len(f.cells) for f in find_freeform(view)}


def test_unsure_free_form_row_is_no_code():
    result = assemble(np.zeros((200, 600, 3), np.uint8), [field_of(row_ink("oooo"))],
                      SureClassifier(p=0.7), parse_format("auto"), 0.9)
    assert (result.status, result.code) == (Status.FAILED, "")
    assert "no postal code found" in result.reason


def test_an_unsure_or_smaller_rival_does_not_block_the_read():
    image = np.zeros((400, 900, 3), np.uint8)
    best = field_of(row_ink("oooo"))
    small = CodeField(box=(0, 200, 260, 60), kind=FieldKind.FREEFORM, score=0.7,
                      evidence="small print", ink=cv2.resize(row_ink("ooooo"), (260, 60)))
    result = assemble(image, [best, small], SureClassifier(), parse_format("auto"), 0.9)
    assert result.status is Status.ACCEPTED, result.reason


def test_a_row_continued_past_a_hyphen_is_flagged():
    ink = np.zeros((300, 1200), np.uint8)
    cv2.putText(ink, "12345-6789", (100, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 255, 6)
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    found = find_freeform(view)
    assert any(f.row.zip4 and len(f.cells) == 9 for f in found)
    halves = [f for f in found if len(f.cells) in (4, 5) and not f.row.zip4]
    assert len(halves) == 2 and all(f.row.partial for f in halves)


def test_a_zip4_with_a_detached_stroke_among_its_digits_is_still_one_row():
    # A bold digit's stem left as a thin mark of its own: ten marks are still a ZIP+4,
    # not a row with one mark too many for a code that leaves only its halves to read.
    ink = np.zeros((300, 1200), np.uint8)
    cv2.putText(ink, "12345-6789", (100, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 255, 6)
    cv2.line(ink, (573, 150), (573, 198), 255, 2)  # a thin stroke just after the 9
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    assert any(f.row.zip4 and len(f.cells) == 10 for f in find_freeform(view))


@pytest.mark.parametrize("seed", [0, 5])
def test_digits_on_a_label_are_found(seed):
    # The label's edge and shadow enclose the digits: they must not swallow them.
    env = make_envelope("4711", "digits", seed, distractors=False)
    fields = locate(env.image)
    fx, fy, fw, fh = env.field_box
    assert any(f.kind is FieldKind.FREEFORM and abs(f.box[0] - fx) < 0.2 * fw
               and abs(f.box[1] - fy) < 0.5 * fh for f in fields[:2])


@pytest.mark.parametrize("seed", range(4))
def test_long_runs_are_the_whole_openings_pixel_for_pixel(seed):
    # Only rows (columns) with ink enough for a run are opened; runs reaching the image's
    # edge count from it, as the whole opening's do.
    rng = np.random.default_rng(seed)
    ink = np.where(rng.random((300, 500)) < 0.02, 255, 0).astype(np.uint8)
    for _ in range(6):
        y, x = int(rng.integers(300)), int(rng.integers(500))
        cv2.line(ink, (x, y), (min(499, x + int(rng.integers(20, 200))), y), 255, 1)
        cv2.line(ink, (x, y), (x, min(299, y + int(rng.integers(20, 150)))), 255, 1)
    cv2.line(ink, (0, 7), (30, 7), 255, 1)  # short, but reaching the left edge
    cv2.line(ink, (9, 299), (9, 270), 255, 1)  # short, reaching the bottom edge
    for length, axis, kernel in ((50, 1, (1, 50)), (61, 0, (61, 1))):
        whole = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones(kernel, np.uint8))
        assert (long_runs(ink, length, axis) == whole).all()
        assert whole.any()


def test_a_printed_town_name_stands_like_a_word_and_needs_a_sure_reading():
    ink = np.zeros((600, 1400), np.uint8)
    cv2.putText(ink, "Budapest", (700, 300), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 255, 4)
    cv2.putText(ink, "79226", (700, 420), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.6, 255, 3)
    view = View(to_scan=np.eye(3), inverted=False, notes=(), ink=ink, boxes=np.zeros_like(ink))
    rows = find_freeform(view)
    town = [f for f in rows if f.rect[1] < 300]
    code = [f for f in rows if f.rect[1] > 330]
    assert town and all(f.row.wordlike for f in town)
    assert code and not any(f.row.wordlike for f in code)
    # Read at 0.9 a digit (0.66 for four), a word-like row is no code; a plain row is one.
    image = np.zeros((200, 600, 3), np.uint8)
    word = assemble(image, [field_of(row_ink("oooo"), wordlike=True)],
                    SureClassifier(p=0.9), parse_format("auto"), 0.5)
    assert word.status is Status.FAILED
    assert "its marks stand like a word's letters" in word.reason
    plain = assemble(image, [field_of(row_ink("oooo"))], SureClassifier(p=0.9),
                     parse_format("auto"), 0.5)
    assert (plain.status, plain.code) == (Status.ACCEPTED, "3333")
    sure = assemble(image, [field_of(row_ink("oooo"), wordlike=True)],
                    SureClassifier(p=0.99), parse_format("auto"), 0.5)
    assert sure.code == "3333"


class PairJudgingClassifier(SureClassifier):
    """Sure of a 3 everywhere, with a pair judge that gives every crop the same chance."""

    def __init__(self, pair: float):
        super().__init__()
        self.pair = pair

    def probabilities_and_pairs(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.probabilities(crops), np.full(len(crops), self.pair)


def test_a_digit_the_pair_judge_is_sure_holds_two_needs_review():
    # Every cut of these rings is judged a pair alike, so the rings stay whole and are read
    # as four sure 3s: a digit may have been lost in one of them.
    sure = read(row_ink("oooo"), classifier=PairJudgingClassifier(0.995))
    assert sure.code == "3333"
    assert "a mark read as one digit looks like two touching digits" in sure.doubts
    unsure = read(row_ink("oooo"), classifier=PairJudgingClassifier(0.9))
    assert unsure.code == "3333" and not unsure.doubts


def test_a_mark_left_out_that_reads_as_a_sure_digit_needs_review():
    # A short 1 standing apart between two digits (0.55 of their height) is taken for a
    # piece of a digit and left out, yet it reads as surely as the rest: a digit may be lost.
    def row_with_stroke(top: int) -> np.ndarray:
        ink = np.zeros((120, 520), np.uint8)
        ink[:, :160] = row_ink("oo")[:, :160]
        ink[:, 230:] = row_ink("oo")[:, 20:310]
        cv2.line(ink, (195, top), (195, 96), 255, 7)
        return ink

    short = read(row_with_stroke(58))
    assert short.code == "3333"
    assert "a mark left out of the code reads as a digit" in short.doubts
    # A speck a quarter of the digits' height is left out without a doubt.
    speck = read(row_with_stroke(80))
    assert speck.code == "3333" and not speck.doubts
