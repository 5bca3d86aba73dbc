"""terminal_image.py: half-block cells keep the picture's shape and colours."""

import re

import numpy as np

from postread.terminal_image import UPPER_HALF, fit, render


def test_fit_keeps_the_aspect_ratio_with_two_pixels_per_cell():
    assert fit(200, 100, 80, 40) == (80, 20)  # width-bound: 80 x 40 pixels
    assert fit(100, 200, 80, 10) == (10, 10)  # height-bound: 10 x 20 pixels
    assert fit(5000, 10, 80, 40) == (80, 1)  # never zero rows
    assert fit(0, 10, 80, 40) == (0, 0)


def test_render_draws_the_upper_and_lower_pixel_of_each_cell():
    image = np.full((40, 80, 3), 255, np.uint8)
    image[20:, :40] = (0, 0, 255)  # red (BGR) lower-left quarter
    image[:2, 78:] = (255, 0, 0)  # a blue dot top right
    lines = render(image, 80, 40)
    assert len(lines) == 20
    assert all(line.count(UPPER_HALF) == 80 and line.endswith("\x1b[0m") for line in lines)
    assert "\x1b[48;2;255;0;0m" in lines[15] and "\x1b[38;2;255;0;0m" in lines[15]
    assert "\x1b[48;2;255;0;0m" not in lines[5]
    top = re.findall(r"\x1b\[38;2;(\d+;\d+;\d+)m", lines[0])
    assert top[-1] == "0;0;255"  # foreground = the upper pixel, RGB order


def test_render_grayscale_and_sends_each_colour_once_per_run():
    lines = render(np.zeros((10, 50), np.uint8), 50, 5)
    assert lines[0].count("\x1b[38;2;0;0;0m") == 1  # a run of one colour costs one escape
