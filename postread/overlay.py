"""Draw what the reader saw on a copy of the scan (``postread show``).

Every candidate field is outlined (the chosen one thicker, in another colour), each digit
gets its box with its label and probability, and a banner above the scan states the
code, the status, the confidence, the reason and any person's decision. Small scans are
enlarged first so that the labels stay legible.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from postread.errors import UsageError
from postread.review import load_queue, resolve
from postread.store import ReviewRow, ScanRow, Store

CANDIDATE = (200, 130, 0)
"""BGR colour of candidate fields that were not chosen (blue)."""
CHOSEN = (0, 170, 0)
"""BGR colour of the chosen field (green)."""
DIGIT = (255, 0, 255)
"""BGR colour of digit boxes and their labels (magenta: never ink, paper or box print)."""
BANNER_TEXT = (255, 255, 255)
"""Text colour of the banner."""
BANNER_FILL = {"accepted": (60, 120, 0), "needs_review": (0, 120, 200), "failed": (0, 0, 170),
               "reviewed": (120, 60, 0), "unreadable": (90, 90, 90)}
"""Banner background by final status (BGR)."""
MIN_LONG_SIDE = 1200
"""Scans whose long side is smaller are enlarged by a whole factor up to about this."""
FONT = cv2.FONT_HERSHEY_SIMPLEX


def scale_for(width: int, height: int) -> int:
    """The whole-number enlargement applied to a width x height scan (1 for large ones)."""
    return max(1, MIN_LONG_SIDE // max(width, height, 1))


def banner_height(width: int) -> int:
    """Height in pixels of the banner above an annotated scan of this (enlarged) width."""
    return max(40, width // 25)


def annotate(image: np.ndarray, scan: ScanRow, review: ReviewRow | None = None) -> np.ndarray:
    """An annotated copy of ``image`` (the scan as it was read) for ``scan``'s read.

    The result is ``scale_for`` times the scan's size, plus ``banner_height`` rows on top.
    """
    k = scale_for(image.shape[1], image.shape[0])
    canvas = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST) if k > 1 \
        else image.copy()
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
    line = max(1, round(canvas.shape[1] / 600))
    read = scan.read
    if read is not None:
        for candidate in read.candidates or []:
            if candidate["box"] != read.field_box:
                _rect(canvas, candidate["box"], k, CANDIDATE, line)
                _label(canvas, f"{candidate['kind']} {candidate['score']:.2f}",
                       candidate["box"], k, CANDIDATE, line, below=True)
        if read.field_box:
            _rect(canvas, read.field_box, k, CHOSEN, 2 * line)
        for position, digit in enumerate(read.digits):
            _rect(canvas, digit.box, k, DIGIT, line)
            # labels alternate above and below: neighbouring digits' labels never collide
            text = f"{digit.label} {digit.probability:.2f}".replace(" 0.", " .")
            _label(canvas, text, digit.box, k, DIGIT, line, below=position % 2 == 1)
    return np.vstack([_banner(canvas.shape[1], scan, review), canvas])


def _rect(canvas: np.ndarray, box, k: int, colour, thickness: int) -> None:
    x, y, w, h = (int(v) * k for v in box)
    # drawn just outside the box so the ink inside stays visible
    cv2.rectangle(canvas, (x - thickness, y - thickness),
                  (x + w - 1 + thickness, y + h - 1 + thickness), colour, thickness)


def _label(canvas: np.ndarray, text: str, box, k: int, colour, line: int,
           below: bool = False) -> None:
    x, y, w, h = (int(v) * k for v in box)
    scale = max(0.4, min(1.2, h / 60))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, line)
    top = y + h + 2 * line + 2 if below else max(0, y - th - base - 3 * line)
    cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + base + 2), (255, 255, 255), -1)
    cv2.putText(canvas, text, (x + 2, top + th + 1), FONT, scale, colour, line, cv2.LINE_AA)


def _banner(width: int, scan: ScanRow, review: ReviewRow | None) -> np.ndarray:
    read = scan.read
    code = read.code if read and read.code else "-"
    status = scan.status
    text = f"{scan.path}  code {code}  {status}"
    if read is not None:
        text += f"  confidence {read.confidence:.3f}"
    if review is not None:
        status = "unreadable" if review.action == "unreadable" else "reviewed"
        text += f"  | {review.action} by {review.reviewer}: {review.code_after or '-'}"
    elif scan.reason:
        text += f"  ({scan.reason})"
    height = banner_height(width)
    banner = np.empty((height, width, 3), np.uint8)
    banner[:] = BANNER_FILL.get(status, (0, 0, 0))
    scale = height / 60
    # shrink the text until it fits the width rather than cutting the reason off
    while scale > 0.3 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width - 10:
        scale *= 0.9
    thickness = max(1, round(scale * 1.5))
    cv2.putText(banner, text, (5, int(height * 0.68)), FONT, scale, BANNER_TEXT, thickness,
                cv2.LINE_AA)
    return banner


def write_annotated(store: Store, ref: str, output: Path | None = None) -> Path:
    """Annotate the stored read that ``ref`` names (id or file) and write it as a PNG.

    Returns the path written: ``output``, else ``<file stem>.annotated.png`` in the
    current folder.
    """
    item = resolve(load_queue(store, "all", include_reviewed=True), ref)
    image = item.image()
    review = store.latest_reviews().get(item.scan.content_hash)
    page = f"-p{item.scan.page}" if item.scan.page else ""
    output = output or Path(f"{Path(item.scan.path).stem}{page}.annotated.png")
    try:
        written = cv2.imwrite(str(output), annotate(image, item.scan, review))
    except cv2.error:  # a name OpenCV has no encoder for (no or unknown extension)
        written = False
    if not written:
        raise UsageError(f"{output}: cannot write an image here (use a .png name)")
    return output
