"""Draw an image in a text terminal with Unicode half blocks and 24-bit colour.

Each character cell shows two pixels stacked: '▀' painted in the upper pixel's colour
(foreground) over the lower pixel's colour (background). Terminal cells are about twice
as tall as wide, so two pixels per cell keeps the image's proportions. This works in any
true-colour terminal, over SSH, with no window system and no image protocol.
"""

from __future__ import annotations

import cv2
import numpy as np

UPPER_HALF = "\u2580"
"""'▀': the upper half of the cell is foreground, the lower half background."""
RESET = "\x1b[0m"
"""Back to the terminal's own colours (ends every rendered line)."""


def fit(width: int, height: int, max_cols: int, max_rows: int) -> tuple[int, int]:
    """The largest (cols, rows) of cells that shows a width x height image undistorted.

    One cell is one pixel wide and two pixels tall, so the image is scaled to at most
    ``max_cols`` x ``2 * max_rows`` pixels keeping its aspect ratio (never to zero).
    """
    if width <= 0 or height <= 0 or max_cols <= 0 or max_rows <= 0:
        return 0, 0
    scale = min(max_cols / width, 2 * max_rows / height)
    cols = max(1, min(max_cols, round(width * scale)))
    rows = max(1, min(max_rows, round(height * scale / 2)))
    return cols, rows


def render(image_bgr: np.ndarray, max_cols: int, max_rows: int) -> list[str]:
    """The image as terminal lines (ANSI true-colour escapes), at most max_cols x max_rows.

    Args:
        image_bgr: H x W x 3 uint8 BGR, or H x W grayscale.
        max_cols: Widest the picture may be, in character cells.
        max_rows: Tallest the picture may be, in text lines.

    Returns:
        One string per text line, each ending with a colour reset.
    """
    if image_bgr.ndim == 2:
        image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    cols, rows = fit(image_bgr.shape[1], image_bgr.shape[0], max_cols, max_rows)
    if cols == 0:
        return []
    # INTER_AREA averages the pixels a cell covers: thin pen strokes stay visible as grey
    small = cv2.resize(image_bgr, (cols, rows * 2), interpolation=cv2.INTER_AREA)
    rgb = small[:, :, ::-1]
    lines = []
    for row in range(rows):
        top, bottom = rgb[2 * row], rgb[2 * row + 1]
        cells, fg, bg = [], None, None
        for t, b in zip(top.tolist(), bottom.tolist(), strict=True):
            # a colour is sent only when it changes: paper is mostly one colour, and this
            # keeps a screen to a few kilobytes over a slow SSH link
            if t != fg:
                cells.append(f"\x1b[38;2;{t[0]};{t[1]};{t[2]}m")
                fg = t
            if b != bg:
                cells.append(f"\x1b[48;2;{b[0]};{b[1]};{b[2]}m")
                bg = b
            cells.append(UPPER_HALF)
        lines.append("".join(cells) + RESET)
    return lines
