"""Field location on generated envelopes: the recipient's field wins over the distractors."""

import cv2
import numpy as np
import pytest

from pipelines.synth_envelopes import make_envelope
from postread.field import locate
from postread.field_view import (
    box_colour_mask,
    find_paper,
    ink_darkness,
    ink_mask,
    is_binarised_negative,
    skew_angle,
)
from postread.records import FieldKind


def overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    return 0.0 if w <= 0 or h <= 0 else w * h / min(aw * ah, bw * bh)


@pytest.mark.parametrize("convention, code", [("fr", "69003"), ("cn", "100080"),
                                              ("jp", "1234567")])
def test_box_row_of_the_recipient_comes_first(convention, code):
    # Sender boxes, stamps, postmarks and ticks are switched on: they must lose.
    env = make_envelope(code, convention, 3, sender=True, sender_boxes="printed", stamp=True,
                        postmark=True, barcode=True)
    best = locate(env.image)[0]
    assert best.kind is FieldKind.BOXES
    assert len(best.cells) == len(code)
    assert overlap(best.box, env.field_box) > 0.8
    assert "boxes" in best.evidence


def test_every_candidate_cuts_its_ink_when_asked_and_keeps_it():
    # Candidates are cut only when read (most never are); what is cut covers the field
    # and holds ink, and asking again gives the same mask without cutting again.
    env = make_envelope("02139", "us", 4, sender=True, postmark=True, street_numbers=True)
    fields = locate(env.image)
    assert len(fields) > 1 and all(f.ink is None for f in fields)
    for f in fields:
        ink = f.ink_mask()
        assert ink.shape == (f.box[3], f.box[2]) and ink.dtype == np.uint8
        assert (ink > 128).any()
        assert f.ink_mask() is ink


@pytest.mark.parametrize("convention, code", [("us", "02139"), ("hu", "1051"),
                                              ("us4", "12345-6789"), ("digits", "4711")])
def test_free_form_code_is_among_the_best_candidates(convention, code):
    env = make_envelope(code, convention, 4, sender=True, postmark=True, street_numbers=True)
    fields = locate(env.image)
    # The classifier breaks near ties in assemble; location must put it in the top two.
    assert any(overlap(f.box, env.field_box) > 0.7 for f in fields[:2])
    assert all(f.evidence for f in fields)


@pytest.mark.parametrize("convention, code, seed", [("us", "02139", 0), ("hu", "1051", 0),
                                                    ("us4", "12345-6789", 1)])
def test_a_pencil_code_beside_bold_print_is_found(convention, code, seed):
    # Bold black print sets the image-wide ink level above pale pencil: the code must
    # still be seen (before pale strokes were kept, 27 of 36 such envelopes lost it).
    env = make_envelope(code, convention, seed, condition="faint", ink="pencil",
                        address_style="printed")
    fields = locate(env.image)
    assert any(overlap(f.box, env.field_box) > 0.7 for f in fields[:2])


@pytest.mark.parametrize("convention, code", [("us", "02139"), ("fr", "75011")])
def test_a_pale_watermark_along_the_border_does_not_move_the_field(convention, code):
    # Security paper's pale print (with digits) is pale ink, as pencil is, where no code is.
    env = make_envelope(code, convention, 2, sender=True)
    marked = env.image.copy()
    height = marked.shape[0]
    for y in (int(0.04 * height), int(0.97 * height)):
        cv2.putText(marked, "SECURITY PAPER 0123456789 " * 6, (10, y), cv2.FONT_HERSHEY_SIMPLEX,
                    height / 1000, (200, 200, 200), 2, cv2.LINE_AA)
    plain_best, marked_best = locate(env.image)[0], locate(marked)[0]
    assert overlap(marked_best.box, env.field_box) > 0.7
    assert marked_best.box == plain_best.box


def test_pale_strokes_join_the_ink_but_paper_noise_and_print_rims_do_not():
    rng = np.random.default_rng(0)
    image = np.full((400, 900, 3), 235, np.uint8)
    cv2.putText(image, "AUSTIN TX", (40, 200), cv2.FONT_HERSHEY_DUPLEX, 2.0, (20, 20, 20), 7)
    cv2.circle(image, (700, 175), 30, (160, 160, 160), 4)  # a pencil "0"
    cv2.rectangle(image, (300, 300), (340, 340), (207, 207, 207), -1)  # a faint smudge
    grain = rng.normal(0, 4, image.shape[:2]).astype(np.int16)[..., None]
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    darkness = ink_darkness(image[:, :, 2])
    no_boxes = np.zeros_like(darkness)
    plain, with_pale = ink_mask(no_boxes, darkness, pale=False), ink_mask(no_boxes, darkness)
    assert not plain[145:206, 669:732].any()  # Otsu alone loses the pencil
    assert with_pale[145:206, 669:732].sum() / 255 > 0.8 * np.pi * 60 * 4
    assert (with_pale[:, :600] == plain[:, :600]).all()  # print keeps its weight
    assert not with_pale[290:350, 290:350].any()  # no dark core: not a stroke


@pytest.mark.parametrize("condition", ["rotated", "binarised", "lowres", "photo", "faint"])
def test_box_row_found_under_hard_conditions(condition):
    env = make_envelope("75011", "fr", 5, condition=condition)
    best = locate(env.image)[0]
    assert overlap(best.box, env.field_box) > 0.6


def test_cells_are_left_to_right_in_scan_coordinates():
    env = make_envelope("1234567", "jp", 6, condition="rotated")
    cells = locate(env.image)[0].cells
    xs = [x for x, _, _, _ in cells]
    assert xs == sorted(xs)
    height, width = env.image.shape[:2]
    assert all(0 <= x < width and 0 <= y < height for x, y, _, _ in cells)


@pytest.mark.parametrize("degrees", [-7.0, -2.4, 0.0, 3.2, 9.0])
def test_skew_is_measured_as_the_turn_that_levels_the_lines(degrees):
    ink = np.zeros((500, 1200), np.uint8)
    for y in range(100, 450, 40):
        cv2.putText(ink, "Mary Johnson 1167 Pine Rd 12345", (60, y), cv2.FONT_HERSHEY_SIMPLEX,
                    1.0, 255, 2)
    turned = cv2.warpAffine(ink, cv2.getRotationMatrix2D((600, 250), degrees, 1.0), (1200, 500),
                            flags=cv2.INTER_NEAREST)
    assert skew_angle(turned) == pytest.approx(-degrees, abs=0.21)


def test_no_ink_is_not_turned():
    assert skew_angle(np.zeros((300, 800), np.uint8)) == 0.0


def test_binarised_negative_is_detected():
    env = make_envelope("4025", "hu", 7, condition="binarised")
    assert is_binarised_negative(env.image)
    assert not is_binarised_negative(make_envelope("4025", "hu", 7).image)


def test_blank_paper_has_no_field():
    assert locate(np.full((300, 500, 3), 240, np.uint8)) == []


def paper(width=1600, height=900) -> np.ndarray:
    return np.full((height, width, 3), 245, np.uint8)


def draw_boxes(image, x, y, count, w, h, gap, colour, thick, group_after=None) -> list:
    cells = []
    for i in range(count):
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, thick)
        cells.append((x, y, w, h))
        x += w + gap
        if group_after is not None and i == group_after - 1:
            cv2.line(image, (x + gap, y + h // 2), (x + 2 * gap, y + h // 2), colour, thick)
            x += 3 * gap
    return cells


def test_box_row_completed_when_ink_breaks_most_holes():
    # Japan's 3 + 4 row with heavy strokes across the outlines of four boxes: their holes
    # are lost, the outlines are still there, and the row keeps all seven boxes.
    image = paper()
    cells = draw_boxes(image, 900, 60, 7, 66, 90, 8, (45, 40, 215), 3, group_after=3)
    for index in (1, 3, 4, 5):
        x, y, w, h = cells[index]
        cv2.line(image, (x + w // 2, y - 15), (x + w // 2, y + h + 15), (35, 30, 30), 24)
    best = locate(image)[0]
    assert best.kind is FieldKind.BOXES
    assert len(best.cells) == 7
    assert overlap(best.box, (900, 60, 7 * 74 + 24, 90)) > 0.9


def test_binarised_box_row_with_straight_bars_inside_boxes():
    # A binarised negative: dotted outlines, and digits with long straight bars (a 7's
    # top, a 2's base) that are not box outlines and must neither split a box nor vanish.
    image = paper()
    cells = draw_boxes(image, 600, 450, 5, 70, 90, 8, (60, 60, 60), 2)
    for x, y, w, h in cells:
        image[y - 2:y + h + 3, x + 3:x + w - 3:9] = 245  # dotted outlines
    bars = {1: 25, 3: 70}
    for index, (x, y, w, _) in enumerate(cells):
        cv2.line(image, (x + 20, y + 20), (x + 45, y + 70), (30, 30, 30), 5)
        if index in bars:
            cv2.line(image, (x + 6, y + bars[index]), (x + w - 6, y + bars[index]),
                     (30, 30, 30), 5)
    negative = 255 - np.where(image < 128, 0, 255).astype(np.uint8)
    best = locate(negative)[0]
    assert best.kind is FieldKind.BOXES and len(best.cells) == 5
    x, y, w, h = best.cells[1]
    fx, fy = best.box[:2]
    inner = best.ink_mask()[y - fy + 15:y - fy + 35, x - fx + 10:x - fx + w - 10]
    assert (inner > 128).mean(axis=1).max() > 0.8  # the 7's bar is still ink


def test_a_stroke_written_along_a_box_side_stays_when_the_outline_goes():
    # A binarised scan: a 0 whose left side runs down the box's left outline. The
    # outline goes (no colour tells it from the pen), the 0's side stays.
    image = paper()
    cells = draw_boxes(image, 600, 450, 5, 70, 90, 8, (40, 40, 40), 2)
    for index, (x, y, _, _) in enumerate(cells):
        if index == 2:
            cv2.ellipse(image, (x + 22, y + 45), (21, 32), 0, 0, 360, (30, 30, 30), 7)
        else:
            cv2.line(image, (x + 30, y + 15), (x + 40, y + 75), (30, 30, 30), 7)
    binarised = np.where(image < 128, 0, 255).astype(np.uint8)
    best = locate(binarised)[0]
    assert best.kind is FieldKind.BOXES and len(best.cells) == 5
    ink = best.ink_mask()
    x, y, _, h = best.cells[2]
    fx, fy = best.box[:2]
    side = ink[y - fy:y - fy + h, x - fx - 2:x - fx + 3].max(axis=1) > 128
    assert side[35:55].all()  # the 0's left side, on the outline
    assert not side[:5].any() and not side[-5:].any()  # the outline above and below it


def test_binarised_boxes_keep_their_size_when_bars_touch_their_sides():
    # A binarised scan where three of five digits have a base bar from a box's side to
    # near the other (a 2's): the bar passes for an outline, and the lines' holes end at
    # it. The boxes keep their whole height, and their bottom outlines are dropped.
    image = paper()
    cells = draw_boxes(image, 600, 450, 5, 70, 90, 8, (40, 40, 40), 2)
    for index, (x, y, w, _) in enumerate(cells):
        cv2.line(image, (x + 25, y + 15), (x + 40, y + 60), (30, 30, 30), 6)
        if index in (1, 2, 3):
            cv2.line(image, (x, y + 62), (x + w - 14, y + 62), (30, 30, 30), 6)
    binarised = np.where(image < 128, 0, 255).astype(np.uint8)
    best = locate(binarised)[0]
    assert best.kind is FieldKind.BOXES and len(best.cells) == 5
    assert all(abs(h - 90) <= 6 for _, _, _, h in best.cells)
    fx, fy = best.box[:2]
    bottom = best.ink_mask()[450 + 86 - fy:450 + 95 - fy, 600 - fx:600 + 5 * 78 - fx]
    assert (bottom > 128).mean() < 0.02  # no outline left under the digits


def test_a_binarised_box_cut_short_by_a_stroke_on_its_side_stays_in_place():
    # A straight stroke across a box near its left side passes for its outline without
    # colour: the box's hole starts at the stroke, and the stroke's ink pulls the box
    # toward it. The box stays where it is, evenly spaced between its neighbours.
    image = paper()
    cells = draw_boxes(image, 600, 450, 6, 70, 90, 8, (40, 40, 40), 2)
    for index, (x, y, _, _) in enumerate(cells):
        if index == 4:
            cv2.line(image, (x + 14, y - 8), (x + 14, y + 98), (30, 30, 30), 5)
        else:
            cv2.line(image, (x + 25, y + 15), (x + 40, y + 70), (30, 30, 30), 6)
    binarised = np.where(image < 128, 0, 255).astype(np.uint8)
    best = locate(binarised)[0]
    assert best.kind is FieldKind.BOXES and len(best.cells) == 6
    for (x, _, _, _), (found_x, _, _, _) in zip(cells, best.cells, strict=True):
        assert abs(found_x - x) <= 4


def test_binarised_small_empty_box_row_is_a_box_row():
    # A binarised negative with the sender's small empty boxes: their sides are shorter
    # than the straight lines sought without colour, and their frames are no row of 0s.
    image = paper()
    draw_boxes(image, 60, 60, 6, 70, 90, 10, (60, 60, 60), 3)
    draw_boxes(image, 1200, 700, 6, 36, 40, 8, (60, 60, 60), 2)
    negative = 255 - np.where(image < 128, 0, 255).astype(np.uint8)
    fields = locate(negative)
    row = (1200, 700, 6 * 44, 40)
    assert any(f.kind is FieldKind.BOXES and len(f.cells) == 6 and overlap(f.box, row) > 0.9
               for f in fields)
    assert not any(f.kind is FieldKind.FREEFORM and overlap(f.box, row) > 0.3 for f in fields)


@pytest.mark.parametrize("convention, code", [("fr", "75011"), ("jp", "1234567")])
def test_pale_pencil_in_faint_boxes_counts_as_written(convention, code):
    # Dark printed address text sets the image-wide ink threshold above faint pencil.
    env = make_envelope(code, convention, 1, condition="faint", ink="pencil",
                        address_style="printed")
    best = locate(env.image)[0]
    assert best.kind is FieldKind.BOXES
    assert f"({len(code)} with ink)" in best.evidence


def test_buff_envelope_on_a_desk_is_not_red_print():
    # A photo where a grey-green desk fills most of the frame: the buff paper's own
    # redness is not print, the red box lines on it are.
    image = np.full((900, 1200, 3), (120, 140, 128), np.uint8)
    image[300:650, 350:900] = (196, 222, 238)
    draw_boxes(image, 400, 340, 6, 50, 62, 10, (45, 40, 215), 2)
    mask = box_colour_mask(image, 8) > 0
    paper_only = mask[420:630, 370:880]  # the paper below the boxes, 20 px from its edge
    assert paper_only.mean() < 0.01
    assert mask[340, 400:450].mean() > 0.9


def _sheet_on(background: int, sheet: int, rect: tuple[int, int, int, int]) -> np.ndarray:
    image = np.full((700, 1200, 3), background, np.uint8)
    x, y, w, h = rect
    image[y:y + h, x:x + w] = sheet
    return image


def test_an_envelope_half_in_a_shadow_is_cut_out_by_its_outline():
    # The shadowed paper (235 x 0.45) is darker than the lit desk (130): no brightness
    # level splits paper from desk, but the sheet's edge is sharp and the shadow's soft.
    image = _sheet_on(130, 235, (200, 150, 800, 400)).astype(np.float32)
    shade = np.zeros(image.shape[:2], np.float32)
    cv2.circle(shade, (350, 650), 420, 1.0, -1)
    shade = cv2.GaussianBlur(shade, (0, 0), 40)
    image = (image * (1 - 0.55 * shade)[..., None]).astype(np.uint8)
    corners = find_paper(image)
    assert corners is not None
    assert np.allclose(corners, [[200, 150], [999, 150], [999, 549], [200, 549]], atol=8)


def test_an_envelope_on_a_desk_is_cut_out_but_a_label_on_an_envelope_is_not():
    # A photo: an envelope-shaped sheet (2:1) on a darker desk is the paper.
    corners = find_paper(_sheet_on(90, 235, (200, 150, 800, 400)))
    assert corners is not None
    assert np.allclose(corners, [[200, 150], [999, 150], [999, 549], [200, 549]], atol=6)
    # A scan of a grey envelope with a white address label (4.5:1) filling 20% of it:
    # the label is brighter than the paper, but it is no envelope, so nothing is cut.
    assert find_paper(_sheet_on(170, 245, (200, 300, 810, 180))) is None
