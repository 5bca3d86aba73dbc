"""Segmentation and MNIST-style normalisation on generated envelopes and drawn ink."""

import cv2
import numpy as np
import pytest

from pipelines.synth_envelopes import make_envelope
from postread.field import locate
from postread.field_view import soft_ink
from postread.normalise import MNIST_STROKE, stroke_width, to_mnist
from postread.records import CodeField, DigitCrop, FieldKind
from postread.segment import segment, segment_boxes
from postread.segment_lattice import SPLIT_COST, Arc, Lattice, best_paths


def ink_canvas(width=300, height=100) -> np.ndarray:
    return np.zeros((height, width), np.uint8)


def freeform_field(ink: np.ndarray) -> CodeField:
    return CodeField(box=(10, 20, ink.shape[1], ink.shape[0]), kind=FieldKind.FREEFORM,
                     score=0.5, evidence="drawn", ink=ink)


def assert_mnist_like(pixels: np.ndarray) -> None:
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    ys, xs = np.nonzero(pixels)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (19, 20, 21)
    moments = cv2.moments(pixels.astype(np.float32))
    assert abs(moments["m10"] / moments["m00"] - 14) <= 1
    assert abs(moments["m01"] / moments["m00"] - 14) <= 1
    assert pixels[0].max() == 0 and pixels[-1].max() == 0  # white on black, margin kept


@pytest.mark.parametrize("convention, code, condition", [
    ("fr", "69003", "scan"), ("cn", "100080", "messy"), ("jp", "1234567", "rotated"),
    ("cn", "518000", "binarised"),
])
def test_box_rows_give_one_crop_per_box_left_to_right(convention, code, condition):
    env = make_envelope(code, convention, 8, condition=condition)
    field = locate(env.image)[0]
    crops = segment(env.image, field)
    assert len(crops) == len(code)
    assert not any(c.empty for c in crops)
    xs = [c.box[0] for c in crops]
    assert xs == sorted(xs)
    for crop in crops:
        assert_mnist_like(crop.pixels)


def test_empty_box_is_flagged():
    ink = ink_canvas(330, 110)
    cells = tuple((20 + 100 * i, 25, 80, 80) for i in range(3))
    cv2.putText(ink, "4", (40, 95), cv2.FONT_HERSHEY_SIMPLEX, 2.2, 255, 6)
    cv2.putText(ink, "2", (240, 95), cv2.FONT_HERSHEY_SIMPLEX, 2.2, 255, 6)
    field = CodeField(box=(0, 0, 330, 110), kind=FieldKind.BOXES, score=0.9, evidence="drawn",
                      cells=cells, ink=ink)
    crops = segment(np.zeros((110, 330, 3), np.uint8), field)
    assert [c.empty for c in crops] == [False, True, False]
    assert crops[1].pixels.max() == 0


def test_free_form_digits_come_left_to_right():
    env = make_envelope("02139", "us", 4, sender=False, postmark=False, street_numbers=False)
    field = next(f for f in locate(env.image) if f.kind is FieldKind.FREEFORM)
    crops = segment(env.image, field)
    assert len(crops) == 5
    assert [c.box[0] for c in crops] == sorted(c.box[0] for c in crops)


def test_touching_digits_are_split():
    ink = ink_canvas()
    cv2.putText(ink, "00", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.5, 255, 7)
    ink = cv2.dilate(ink, np.ones((1, 9), np.uint8))  # make the two zeros touch
    assert cv2.connectedComponents(ink)[0] - 1 == 1
    assert len(segment(None, freeform_field(ink))) == 2


def test_broken_digit_is_joined():
    ink = ink_canvas()
    cv2.putText(ink, "7", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.5, 255, 7)
    ink[45:50] = 0  # a gap across the stem: two pieces, one digit
    assert cv2.connectedComponents(ink)[0] - 1 == 2
    crops = segment(None, freeform_field(ink))
    assert len(crops) == 1


def test_a_flag_drawn_apart_stays_with_its_digit_but_a_hyphen_does_not():
    # A 5 whose flag was lifted off the body and drawn to its right, then a hyphen at
    # mid-height and a 1: the flag is too short for a digit and overlaps the body too
    # little to be grouped with it, but it is the top of the 5.
    ink = ink_canvas(400)
    cv2.line(ink, (50, 20), (46, 48), 255, 6)  # the 5's stem
    cv2.ellipse(ink, (60, 62), (18, 16), 0, -150, 140, 255, 6)  # its bowl
    cv2.line(ink, (72, 22), (112, 20), 255, 6)  # the flag, apart, reaching to the right
    cv2.line(ink, (130, 52), (160, 52), 255, 6)  # a hyphen
    cv2.line(ink, (200, 20), (200, 82), 255, 6)  # a 1
    crops = segment(None, freeform_field(ink))
    assert len(crops) == 2
    five = crops[0].box
    assert five[0] + five[2] - 10 >= 110 and five[1] - 20 <= 20  # the flag's end and top


def test_a_base_drawn_apart_stays_with_its_2_but_a_hyphen_does_not():
    # A 2 whose base was drawn apart under its hook (the pen lifted at the turn), then a
    # hyphen at mid-height and a 1: the base is too short for a digit and the hook is
    # only half one; dropped as a hyphen, the base left the hook to be read as a sure 7.
    ink = ink_canvas(400)
    cv2.ellipse(ink, (62, 36), (16, 14), 0, -170, 100, 255, 6)  # the hook, to half height
    cv2.line(ink, (20, 66), (58, 64), 255, 6)  # the base, apart, reaching to the left
    cv2.line(ink, (92, 50), (116, 50), 255, 6)  # a hyphen
    cv2.line(ink, (200, 20), (200, 78), 255, 6)  # a 1
    assert cv2.connectedComponents(ink)[0] - 1 == 4
    crops = segment(None, freeform_field(ink))
    assert len(crops) == 2
    two, one = (crop.box for crop in crops)
    assert two[0] - 10 <= 20 and two[1] + two[3] - 20 >= 66  # the base's left end and bottom
    assert two[0] + two[2] - 10 < 92 and one[0] - 10 > 116  # the hyphen in neither


def test_forced_digit_count_splits_or_joins():
    ink = ink_canvas(400)
    cv2.putText(ink, "123", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.5, 255, 7)
    field = freeform_field(ink)
    assert len(segment(None, field, digits=4)) == 4
    assert len(segment(None, field, digits=2)) == 2


@pytest.mark.parametrize("pen", [3, 30])
def test_stroke_width_is_brought_toward_mnist(pen):
    ink = ink_canvas(200, 200)
    cv2.circle(ink, (100, 100), 70, 255, pen)
    pixels = to_mnist(ink)
    assert_mnist_like(pixels)
    relative = stroke_width((pixels >= 128).astype(np.uint8)) / 20
    assert abs(relative - MNIST_STROKE) < 0.08


def drawn_digit(digit: int, pen: int) -> np.ndarray:
    """One anti-aliased digit about 190 px tall, cut to its ink."""
    ink = ink_canvas(200, 260)
    cv2.putText(ink, str(digit), (20, 230), cv2.FONT_HERSHEY_SIMPLEX, 7, 255, pen, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(ink)
    return ink[y:y + h, x:x + w]


@pytest.mark.parametrize("height", [13, 16])
def test_a_digit_from_a_low_resolution_scan_looks_like_the_same_digit_written_large(height):
    differences = []
    for digit in range(10):
        for pen in (14, 22):
            large = drawn_digit(digit, pen)
            width = max(1, round(large.shape[1] * height / large.shape[0]))
            small = cv2.resize(large, (width, height), interpolation=cv2.INTER_AREA)
            pixels = to_mnist(small)
            assert_mnist_like(pixels)
            differences.append(np.abs(pixels.astype(int) - to_mnist(large).astype(int)).mean())
    # Stretched straight into 20 x 20, the small digits differed by 11.5 (13 px) and 13.4
    # (16 px) levels on average: blurred, strokes matched to the nearest whole pixel.
    assert np.mean(differences) < 10


def box_field(ink: np.ndarray, cells) -> CodeField:
    return CodeField(box=(0, 0, ink.shape[1], ink.shape[0]), kind=FieldKind.BOXES, score=0.9,
                     evidence="drawn", cells=tuple(cells), ink=ink)


def test_pale_stroke_stays_with_its_digit_in_a_box():
    # A 9 whose loop is drawn pale (a pen running dry): the loop is connected to the
    # strong stem and must be in the crop, or the 9 becomes a 1.
    ink = ink_canvas(220, 140)
    cells = [(20, 20, 80, 100), (120, 20, 80, 100)]
    cv2.circle(ink, (55, 50), 18, 70, 4)
    cv2.line(ink, (73, 50), (66, 105), 255, 6)
    cv2.line(ink, (160, 35), (160, 105), 255, 6)
    crops = segment(np.zeros((140, 220, 3), np.uint8), box_field(ink, cells))
    nine = crops[0].pixels
    assert nine[:, :12].max() > 0  # the loop's left side, left of the stem
    assert crops[0].box[2] >= 35


def test_piece_broken_off_below_the_box_joins_its_digit():
    # A 3 whose lower hook, cut off by a pen skip, hangs below the box: it is part of the
    # digit; a mark from the line below, away from the digit, is not.
    ink = ink_canvas(220, 200)
    cells = [(20, 40, 80, 100), (120, 40, 80, 100)]
    cv2.ellipse(ink, (60, 80), (22, 20), 0, -160, 90, 255, 6)
    cv2.ellipse(ink, (60, 135), (22, 14), 0, -90, 150, 255, 6)  # from y 121 to 149
    ink[141:147] = 0  # the skip, just above the box's bottom edge at 140
    cv2.line(ink, (150, 185), (175, 185), 255, 6)  # the town line's stroke below box 2
    crops = segment(np.zeros((200, 220, 3), np.uint8), box_field(ink, cells))
    assert crops[0].box[1] + crops[0].box[3] >= 148
    assert crops[1].empty


def test_a_digit_leaning_into_the_next_box_stays_whole():
    # A messy 9 in the second box whose loop runs back over the edge into the first: no
    # wider than a box, so one digit, not a piece for each box.
    ink = ink_canvas(220, 140)
    cells = [(20, 20, 80, 100), (120, 20, 80, 100)]
    cv2.circle(ink, (106, 50), 20, 255, 5)  # the loop, most of it left of x = 110
    cv2.line(ink, (125, 50), (128, 110), 255, 5)  # the stem, in the second box
    crops = segment(np.zeros((140, 220, 3), np.uint8), box_field(ink, cells))
    assert crops[0].empty
    assert crops[1].box[0] <= 90  # the loop's left side is in the second box's crop


def test_touching_digits_across_boxes_are_cut_where_the_classifier_is_surest():
    # Two rings touching across the edge between two boxes: cut at the thinnest ink near
    # the edge, unless the classifier reads both halves more surely a step to one side.
    ink = ink_canvas(220, 140)
    cells = [(20, 20, 80, 100), (120, 20, 80, 100)]
    cv2.ellipse(ink, (78, 70), (32, 38), 0, 0, 360, 255, 6)
    cv2.ellipse(ink, (142, 70), (32, 38), 0, 0, 360, 255, 6)
    field = box_field(ink, cells)
    plain = segment_boxes(ink, field)
    seen = []

    def judge(crops):  # surest of the third option: the cut one step right
        seen.append(len(crops))
        out = np.full((len(crops), 10), 0.05)
        out[:, 3] = 0.55
        out[4:6, 3] = 0.99
        return out

    judged = segment_boxes(ink, field, judge)
    # Three cuts and the printed edge (not among them here), two halves each.
    assert seen == [8]
    plain_cut = plain[0].box[0] + plain[0].box[2]
    judged_cut = judged[0].box[0] + judged[0].box[2]
    assert judged_cut - plain_cut == max(2, int(0.12 * 80))
    assert judged[0].doubt == judged[1].doubt == ""  # every cut reads 33

    def torn(crops):  # the plain cut reads 38, nearly as surely as the chosen 33
        out = judge(crops)
        out[3, 3], out[3, 8] = 0.05, 0.9
        return out

    doubted = segment_boxes(ink, field, torn)
    assert doubted[0].doubt == doubted[1].doubt == "touching digits across two boxes also read 38"


def test_touching_digits_across_boxes_may_be_cut_at_the_printed_edge():
    # A U-shaped 0 (thin at its base) touching a ring across the edge between two boxes:
    # the thinnest ink near the edge is the U's base, and every cut near it halves the U.
    # The printed edge between the boxes is one more cut for the classifier to judge.
    ink = ink_canvas(260, 140)
    cells = [(20, 20, 80, 100), (120, 20, 80, 100)]  # the printed edge: x = 110
    cv2.line(ink, (40, 30), (40, 90), 255, 6)
    cv2.line(ink, (108, 30), (108, 90), 255, 6)
    cv2.ellipse(ink, (74, 90), (34, 24), 0, 0, 180, 255, 2)  # the U's thin base
    cv2.ellipse(ink, (146, 70), (32, 38), 0, 0, 360, 255, 6)
    field = box_field(ink, cells)
    plain = segment_boxes(ink, field)
    assert plain[0].box[0] + plain[0].box[2] < 100  # the thinnest cut halves the U
    seen = []

    def judge(crops):  # surest of the last option (the printed edge)
        seen.append(len(crops))
        out = np.full((len(crops), 10), 0.05)
        out[:, 1] = 0.55
        out[-2:, 0] = 0.99
        return out

    judged = segment_boxes(ink, field, judge)
    assert seen == [8]  # the thinnest column, a step to each side, and the printed edge
    assert judged[0].box[0] + judged[0].box[2] >= 108  # the U whole in its own crop
    assert judged[1].box[0] >= 108


def test_background_caught_in_a_box_field_is_no_digit():
    # Empty boxes near a photo's edge: the field's margin holds the dark desk beside the
    # envelope, one blob taller than the row that reaches into the first boxes.
    ink = ink_canvas(420, 240)
    cells = [(20 + 100 * i, 80, 80, 100) for i in range(4)]
    cv2.rectangle(ink, (0, 0), (170, 239), 255, -1)
    cv2.line(ink, (350, 100), (350, 160), 255, 6)  # a 1 in the last box
    crops = segment(np.zeros((240, 420, 3), np.uint8), box_field(ink, cells))
    assert [c.empty for c in crops] == [True, True, True, False]


def test_field_ink_follows_a_shadow_across_the_field():
    # A photographed field half in shadow: the shaded paper is darker than the lit
    # paper by more than the ink's contrast, and must still read as paper.
    width, height = 400, 160
    light = np.tile(np.interp(np.arange(width), [0, 150, 250, width], [150, 150, 240, 240]),
                    (height, 1))
    crop = np.repeat(light[:, :, None], 3, axis=2).astype(np.uint8)
    strokes = np.zeros((height, width), np.uint8)
    cv2.putText(strokes, "47", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, 255, 7)
    cv2.putText(strokes, "35", (260, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, 255, 7)
    crop[strokes > 0] = (crop[strokes > 0] * 0.45).astype(np.uint8)
    ink = soft_ink(crop)
    assert np.mean(ink[strokes == 0] > 64) < 0.01  # shaded paper is not ink
    assert np.mean(ink[strokes > 0] > 128) > 0.8  # strokes on both sides are


def test_a_faint_shadow_beside_a_box_outline_is_not_ink_but_pencil_is():
    # An empty box in a phone photo: JPEG ringing beside the printed outline leaves a line
    # ~20 levels darker than the paper, read as a sure 1 when taken for ink.
    crop = np.full((80, 70, 3), (164, 186, 200), np.uint8)
    crop[10:70, 60:62] = (162, 184, 180)
    assert soft_ink(crop).max() == 0
    # A pencil stroke (60 levels down) is ink.
    crop[10:70, 30:33] = (110, 120, 140)
    assert soft_ink(crop)[10:70, 30:33].min() > 128


def test_a_mark_the_pair_judge_calls_two_digits_is_cut_in_two():
    # One wide mark: read whole as a sure 8 (the digit model alone), or cut as 8 and 9.
    crop = DigitCrop((0, 0, 10, 10), np.zeros((28, 28), np.uint8))
    lat = Lattice(1, (Arc(0, 1, (crop,), 0.0, "one digit"),
                      Arc(0, 1, (crop, crop), SPLIT_COST, "one mark cut in 2")))
    sure_eight = np.eye(10)[[8]] * 0.998 + 0.0002
    eight_nine = np.eye(10)[[8, 9]] * 0.99 + 0.001
    cheapest = min(best_paths(lat, [sure_eight, eight_nine], (1, 2)).values(),
                   key=lambda p: p.cost)
    assert cheapest.code == "8"
    judged = best_paths(lat, [sure_eight, eight_nine], (1, 2), [np.array([0.999]),
                                                                np.array([0.01, 0.01])])
    assert min(judged.values(), key=lambda p: p.cost).code == "89"
    # A judge that sees one digit changes nothing.
    unsure = best_paths(lat, [sure_eight, eight_nine], (1, 2), [np.array([0.02]),
                                                                np.array([0.01, 0.01])])
    assert min(unsure.values(), key=lambda p: p.cost).code == "8"
