"""Segmentation and MNIST-style normalisation on generated envelopes and drawn ink."""

import cv2
import numpy as np
import pytest

from pipelines.synth_envelopes import make_envelope
from postread.field import locate
from postread.normalise import MNIST_STROKE, stroke_width, to_mnist
from postread.records import CodeField, FieldKind
from postread.segment import segment


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
