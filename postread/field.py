"""Find the recipient's postal-code field: candidates (box rows, free-form rows), best first.

The scan is normalised into a working view (see ``field_view``), both locators run on it,
and every candidate is mapped back to scan coordinates; its ink is cut at the scan's own
resolution when it is first read. For a tilted or photographed envelope the field's ink
is straightened around the field's centre, so its positions are scan coordinates up to a
few pixels.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from postread.field_boxes import find_box_rows
from postread.field_freeform import find_freeform
from postread.field_view import Found, View, make_view, soft_ink
from postread.records import Box, CodeField, FieldKind

MAX_CANDIDATES = 6
"""Candidates handed on, best first: enough for the sender's code and a distractor or two."""


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    return width > 0 and height > 0 and width * height > 0.3 * min(aw * ah, bw * bh)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), matrix)[:, 0]


def _corners(rect: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = rect
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


class _Mapping:
    """Working-view rect -> scan box, and the warp that cuts its ink upright."""

    def __init__(self, view: View, rect: tuple[int, int, int, int], scan_shape: tuple[int, int]):
        quad = _apply(view.to_scan, _corners(rect))
        height, width = scan_shape
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))
        self.box: Box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        # Scan pixels per working pixel at this field (perspective makes it local).
        self.scale = float(np.sqrt(cv2.contourArea(quad.astype(np.float32)) / (rect[2] * rect[3])))
        x, y, w, h = rect
        self.centre = np.array([x + w / 2, y + h / 2])
        self.target = _apply(view.to_scan, self.centre[None])[0] - (x0, y0)

    def point(self, working: np.ndarray) -> np.ndarray:
        """A working-view point in field-canvas pixels (scan pixels minus the box origin)."""
        return (working - self.centre) * self.scale + self.target

    def cell(self, rect: tuple[int, int, int, int]) -> Box:
        """A working-view rect as a scan box."""
        (ax, ay), (bx, by) = self.point(_corners(rect)[[0, 2]])
        return (int(round(ax)) + self.box[0], int(round(ay)) + self.box[1],
                max(1, int(round(bx - ax))), max(1, int(round(by - ay))))

    def cut(self, view: View, image_bgr: np.ndarray) -> np.ndarray:
        """The field's pixels, upright, box-sized, at scan resolution."""
        to_working = np.linalg.inv(view.to_scan)
        shift_in = np.array([[1, 0, -self.centre[0]], [0, 1, -self.centre[1]], [0, 0, 1]])
        scale = np.diag([self.scale, self.scale, 1.0])
        shift_out = np.array([[1, 0, self.target[0]], [0, 1, self.target[1]], [0, 0, 1]])
        matrix = shift_out @ scale @ shift_in @ to_working
        size = (self.box[2], self.box[3])
        return cv2.warpPerspective(image_bgr, matrix, size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)


def _to_field(view: View, found: Found, image_bgr: np.ndarray) -> CodeField:
    mapping = _Mapping(view, found.rect, image_bgr.shape[:2])
    evidence = "; ".join((found.evidence, *view.notes))
    kind = FieldKind(found.kind)
    cells = tuple(mapping.cell(c) for c in found.cells) if kind is FieldKind.BOXES else ()

    @functools.cache
    def cut_ink() -> np.ndarray:
        pixels = mapping.cut(view, image_bgr)
        # Without colour, box outlines are dropped as straight lines where the outlines
        # run (a digit crossing the outline cuts it into pieces, so the pieces may be short).
        lines, outlines = None, None
        if cells and view.colourless:
            lines = int(0.4 * min(min(w, h) for _, _, w, h in cells))
            outlines = _outline_band(cells, mapping.box, pixels.shape[:2])
        return soft_ink(pixels, lines, outlines)

    return CodeField(box=mapping.box, kind=kind, score=found.score, evidence=evidence,
                     cells=cells, cut_ink=cut_ink, row=found.row)


def _outline_band(cells: tuple[Box, ...], origin: Box, shape: tuple[int, int]) -> np.ndarray:
    """Where the cells' printed outlines run in the field's pixels (a band for misplacement)."""
    band = np.zeros(shape, np.uint8)
    side = min(min(w, h) for _, _, w, h in cells)
    width = max(3, int(round(0.16 * side)))
    for x, y, w, h in cells:
        corner = (x - origin[0], y - origin[1])
        cv2.rectangle(band, corner, (corner[0] + w, corner[1] + h), 255, width)
    return band > 0


def locate(image_bgr: np.ndarray) -> list[CodeField]:
    """Candidate postal-code fields on a BGR scan, most likely recipient's field first."""
    view = make_view(image_bgr)
    rows = find_box_rows(view)
    # Digits written in boxes also look like a free-form row: the box row speaks for them.
    free = [f for f in find_freeform(view) if not any(_overlaps(f.rect, r.rect) for r in rows)]
    found = sorted(rows + free, key=lambda f: f.score, reverse=True)[:MAX_CANDIDATES]
    source = 255 - image_bgr if view.inverted else image_bgr
    return [_to_field(view, f, source) for f in found]
