"""Envelopes the wrong way up: a scan that does not read upright is read turned.

An envelope scanned upside down, or photographed in portrait, has its code upside down
or sideways, and reads as no code or an unsure one. Such a scan is read again turned
180 degrees (and 90 both ways when it is taller than wide). Turning also turns every
distractor (printed marks, dates, notes) into new candidates, and a few digits read both
ways up (a 6 turned is a 9), so a turned read is only ever a suggestion for a person:
it replaces an upright read that found no code (or only an unsure guess) when it is a
sure code, with status needs_review. A plausible upright read (already going to a person,
who sees the scan) is not read again: that would cost a second read for every scan in
review. Turning never makes a read accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from postread.records import CodeRead, Status

_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
           270: cv2.ROTATE_90_COUNTERCLOCKWISE}
PLAUSIBLE = 0.5
"""An upright read at least this confident is kept, and the scan is not read turned."""
SURE_TURNED = 0.97
"""A turned read must be accepted and at least this confident to be suggested, whatever
the review threshold: a lower ``--review-below`` (or the 0 an evaluation sweep reads with)
must not let every distractor turned upside down through, and a higher one need not be
met by a read that goes to a person anyway."""


def turn(image: np.ndarray, degrees: int) -> np.ndarray:
    """The image turned clockwise by 0, 90, 180 or 270 degrees."""
    return image if degrees == 0 else cv2.rotate(image, _ROTATE[degrees])


def turns_to_try(image: np.ndarray) -> tuple[int, ...]:
    """Envelopes are wider than tall: a taller image may be on its side as well."""
    height, width = image.shape[:2]
    return (180, 90, 270) if height > width else (180,)


def read_any_way_up(image: np.ndarray, read: Callable[[np.ndarray], CodeRead],
                    read_turned: Callable[[np.ndarray], CodeRead] | None = None) -> CodeRead:
    """``read(image)``; when that found no sure code, perhaps a turned read for review.

    ``read_turned`` reads the turned images (``read`` when not given); see SURE_TURNED.
    """
    read_turned = read_turned or read
    upright = read(image)
    if upright.status is not Status.FAILED and upright.confidence >= PLAUSIBLE:
        return upright
    if upright.status is Status.FAILED and upright.field is not None:
        return upright  # the recipient's boxes were found empty: they are empty either way up
    sure = [replace(r, turned=degrees) for degrees in turns_to_try(image)
            if (r := read_turned(turn(image, degrees))).status is Status.ACCEPTED
            and r.confidence >= SURE_TURNED]
    if not sure:
        return upright
    turned = max(sure, key=lambda r: r.confidence)
    note = f"turned {turned.turned} degrees, the scan reads {turned.code}"
    field = replace(turned.field, evidence=f"{turned.field.evidence}; read turned "
                    f"{turned.turned} degrees")
    return replace(turned, status=Status.NEEDS_REVIEW, field=field,
                   reason=f"{note} (nothing sure upright): check which way up it is")
