"""Envelopes the wrong way up: a scan that does not read upright is read turned.

An envelope scanned upside down, or photographed in portrait, has its code upside down
or sideways. Such digits rarely read as a confident, well-formed code (2, 3, 4, 5 and 7
turned are no digits), but some do (a 6 turned is a 9), so turning is tried only when the
upright read is not accepted, and a turned read is taken only when it is clearly better:
accepted, or the only code found at all. When the upright read was a plausible code too,
a person decides which way up the envelope is.
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
"""An upright read at least this confident is a code a person should weigh against the
turned one; a turned read needs this much to replace an upright read that found no code."""


def turn(image: np.ndarray, degrees: int) -> np.ndarray:
    """The image turned clockwise by 0, 90, 180 or 270 degrees."""
    return image if degrees == 0 else cv2.rotate(image, _ROTATE[degrees])


def turns_to_try(image: np.ndarray) -> tuple[int, ...]:
    """Envelopes are wider than tall: a taller image may be on its side as well."""
    height, width = image.shape[:2]
    return (180, 90, 270) if height > width else (180,)


def _clearly_better(turned: CodeRead, upright: CodeRead) -> bool:
    if turned.status is Status.ACCEPTED:
        return True
    # Upright found no code at all (not even empty boxes): a turned code is worth a person's look.
    return (upright.status is Status.FAILED and turned.status is Status.NEEDS_REVIEW
            and turned.confidence >= PLAUSIBLE)


def read_any_way_up(image: np.ndarray, read: Callable[[np.ndarray], CodeRead]) -> CodeRead:
    """``read(image)``, or the read of the image turned when that is clearly better."""
    upright = read(image)
    if upright.status is Status.ACCEPTED:
        return upright
    if upright.status is Status.FAILED and upright.field is not None:
        return upright  # the recipient's boxes were found empty: they are empty either way up
    best = upright
    for degrees in turns_to_try(image):
        turned = read(turn(image, degrees))
        if _clearly_better(turned, best) and (best is upright or
                                              turned.confidence > best.confidence):
            best = replace(turned, turned=degrees)
    if best is upright:
        return upright
    if best.field is not None:
        note = f"{best.field.evidence}; read with the image turned {best.turned} degrees"
        best = replace(best, field=replace(best.field, evidence=note))
    if upright.status is Status.NEEDS_REVIEW and upright.confidence >= PLAUSIBLE:
        problem = (f"reads {upright.code} as scanned and {best.code} turned {best.turned} "
                   "degrees: which way up is the envelope?")
        best = replace(best, status=Status.NEEDS_REVIEW,
                       reason="; ".join(r for r in (problem, best.reason) if r))
    return best
