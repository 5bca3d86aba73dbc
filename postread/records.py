"""The in-memory records that flow from one stage to the next (see STYLE.md's diagram).

scan file -> Scan -> CodeField -> DigitCrop[] -> DigitPrediction[] -> CodeRead
Records are frozen; stored forms live in ``store.py`` as separate ``*Row`` classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

Box = tuple[int, int, int, int]
"""An axis-aligned box in scan pixel coordinates: (x, y, width, height)."""


class Status(StrEnum):
    """Outcome of reading one scan."""

    ACCEPTED = "accepted"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


class FieldKind(StrEnum):
    """How the postal code is written on the envelope."""

    BOXES = "boxes"
    """One digit per printed (red/orange) box in a row of boxes."""
    FREEFORM = "freeform"
    """A handwritten row of digits with no boxes (address line, label, plain paper)."""


@dataclass(frozen=True)
class Scan:
    """One decoded image: a file, or one page of a multi-page TIFF."""

    path: Path
    """The file the image came from."""
    page: int
    """Page number inside the file, 0 for single-image files."""
    image: np.ndarray = field(repr=False)
    """The pixels, BGR uint8, H x W x 3."""
    content_hash: str
    """sha256 of the file's bytes plus the page number: identifies the scan across runs."""
    size_bytes: int
    """Size of the file on disk."""

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])


@dataclass(frozen=True)
class RowTraits:
    """What the locator saw of a free-form row that reading must weigh (none for box rows)."""

    zip4: bool = False
    """Two digit groups joined by a hyphen (US ZIP+4): the code must have 5 + 4 digits."""
    partial: bool = False
    """The row goes on past the field (a hyphen and digits, or a digit right after): half
    a ZIP+4, or cut short."""
    line_end: bool = False
    """The row ends a line of writing after other words (a US ZIP after city and state)."""
    misplaced: str = ""
    """Where the row lies, when that is the sender's or the post's place (in the sender's
    corner, in the postage band, inside a postmark ring); empty otherwise."""
    wordlike: bool = False
    """The marks stand like lowercase letters (a town's name read as digits?)."""


@dataclass(frozen=True)
class CodeField:
    """A candidate postal-code field on a scan, with the evidence that found it."""

    box: Box
    """Where the field is, in scan coordinates."""
    kind: FieldKind
    """Box row or free-form handwriting."""
    score: float
    """How likely this is the recipient's code field (higher is better, 0..1)."""
    evidence: str
    """Why it was found and scored so, in a short human sentence."""
    cells: tuple[Box, ...] = ()
    """For box rows: each printed box, left to right, in scan coordinates."""
    ink: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The field's ink mask (uint8, 255 = ink, boxes already dropped out), same size as box;
    read it with ``ink_mask``, which cuts it when ``cut_ink`` is given instead."""
    cut_ink: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    """Cuts the ink mask when first asked (``locate`` finds up to six candidates a scan, and
    most are never read: cutting them all was a tenth of the reading time)."""
    row: RowTraits = RowTraits()
    """Free-form: what the locator saw of the row (ZIP+4 hyphen, cut short, ...)."""

    def ink_mask(self) -> np.ndarray | None:
        """``ink``, or what ``cut_ink`` cuts (it keeps what it cut: asking again is free)."""
        if self.ink is None and self.cut_ink is not None:
            return self.cut_ink()
        return self.ink

    def without_ink(self) -> CodeField:
        """The field without its ink mask or cutter: small to pickle; the store keeps neither."""
        if self.ink is None and self.cut_ink is None:
            return self
        return replace(self, ink=None, cut_ink=None)


@dataclass(frozen=True)
class DigitCrop:
    """One digit cut out of a field, normalised as the model card says."""

    box: Box
    """The digit's ink box in scan coordinates."""
    pixels: np.ndarray = field(repr=False, compare=False)
    """28 x 28 uint8, white digit on black, MNIST-style normalised."""
    empty: bool = False
    """True for a box with no ink (an empty cell in a box row)."""
    doubt: str = ""
    """Why the cut that made this crop is uncertain; empty when it is not."""


@dataclass(frozen=True)
class DigitPrediction:
    """The classifier's calibrated opinion about one digit crop."""

    box: Box
    """The digit's box in scan coordinates."""
    label: int
    """Most probable digit, 0-9."""
    probability: float
    """Calibrated probability of ``label``."""
    runner_up: int
    """Second most probable digit."""
    runner_up_probability: float
    """Calibrated probability of ``runner_up``."""
    probabilities: tuple[float, ...] = field(repr=False)
    """All ten calibrated probabilities, index = digit."""


@dataclass(frozen=True)
class CodeRead:
    """The result of reading one scan: the code, how sure we are, and why."""

    status: Status
    """Accepted, needs review, or failed."""
    code: str
    """The digits read, in order, without separators ("" when none)."""
    confidence: float
    """Product of the digits' calibrated probabilities (0 when no code)."""
    reason: str
    """Why the read needs review or failed ("" when accepted)."""
    format: str = ""
    """The code format that was applied (fr, cn, jp, us, us+4, hu, digits:N)."""
    field: CodeField | None = None
    """The chosen field, if any."""
    digits: tuple[DigitPrediction, ...] = ()
    """One prediction per digit, left to right."""
    candidates: tuple[CodeField, ...] = ()
    """Every field that was considered, best first (the chosen one included)."""
    turned: int = 0
    """Degrees (0, 90, 180, 270) the scan was turned clockwise to read it (an envelope the
    wrong way up); every box is in the turned image's pixels."""


@dataclass(frozen=True)
class ScanResult:
    """What a worker hands the parent for one scan: plain, picklable, ready to store."""

    path: str
    """Relative to the scanned folder, forward slashes."""
    page: int
    """Page in the file (0 unless a multi-page TIFF)."""
    content_hash: str
    """The scan's identity (see ``records.Scan.content_hash``)."""
    size_bytes: int
    """Size of the file."""
    status: Status
    """The scan's outcome."""
    reason: str = ""
    """Why it needs review or failed."""
    read: CodeRead | None = None
    """The reader's result (its ink masks dropped); None when decoding or reading failed."""
