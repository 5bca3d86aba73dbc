"""Write the digits of reviewed reads as labelled 28 x 28 crops, ready for training.

A reviewed code labels a read's crops only when it has exactly as many digits as crops
were cut (a person's "12345" says nothing about which of four crops is which). The
database keeps boxes, not pixels, so crops are cut again from the scan: locating the
stored field and segmenting it (natural cut, or forced to the digit count) gives back
the very crops the model saw; a digit whose box that does not reproduce (a cut the
reader chose with the classifier's help) is cut from its stored box: the same ink and
normalisation, minus any neighbour's stroke reaching into the box.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import cv2
import numpy as np

from postread.errors import PostreadError, UsageError
from postread.field import locate
from postread.field_view import is_binarised_negative, soft_ink
from postread.normalise import to_mnist
from postread.records import CodeField
from postread.review import Action, QueueItem, load_queue
from postread.segment import segment
from postread.store import Store

LABELS = "labels.csv"
"""The labels file: ``file,label`` rows, the format ``pipelines/train.py --extra`` reads."""


@dataclass
class ExportSummary:
    """What ``export-digits`` wrote and what it left out, for the closing line."""

    digits: int = 0
    """Crops written."""
    reads: int = 0
    """Reviewed reads whose digits were written."""
    recut: int = 0
    """Crops cut from the stored box because re-segmenting did not find that digit."""
    skipped: list[str] = dataclass_field(default_factory=list)
    """One line per reviewed read left out, with why."""


def reviewed_codes(store: Store) -> list[tuple[QueueItem, str]]:
    """Reviewed reads (confirmed or corrected) with the code the person settled on."""
    reviews = store.latest_reviews()
    items = load_queue(store, "all", include_reviewed=True)
    return [(item, reviews[item.scan.content_hash].code_after) for item in items
            if item.scan.content_hash in reviews
            and reviews[item.scan.content_hash].action != Action.UNREADABLE]


def recut(image: np.ndarray, field_box: Sequence[int] | None,
          digit_boxes: Sequence[Sequence[int]]) -> tuple[list[np.ndarray], int]:
    """The 28 x 28 crops of a read's digits; returns them and how many were cut directly."""
    boxes = [tuple(b) for b in digit_boxes]
    field = next((f for f in locate(image) if list(f.box) == list(field_box or [])), None)
    found: dict[tuple, np.ndarray] = {}
    if field is not None:
        # the reader keeps the natural cut of a free-form row or a forced count: try both
        for count in (len(boxes), None):
            found.update((crop.box, crop.pixels) for crop in segment(image, field, count))
    missing = [box for box in boxes if box not in found]
    if missing:
        # a whole-image test, once: the boxes below are cut from the scan itself
        source = 255 - image if is_binarised_negative(image) else image
        found.update((box, to_mnist(_box_ink(source, field, box))) for box in missing)
    return [found[box] for box in boxes], len(missing)


def _box_ink(source: np.ndarray, field: CodeField | None, box: Sequence[int]) -> np.ndarray:
    """The ink inside a digit's box, as the reader saw it where possible.

    The field's ink map (found again by ``locate``) has the box print dropped exactly as
    when reading; without it, the ink is measured on ``source``, the scan dark on light.
    """
    x, y, w, h = box
    whole = field.ink_mask() if field is not None else None
    if whole is not None:
        fx, fy = field.box[:2]
        ink = whole[max(0, y - fy):y - fy + h, max(0, x - fx):x - fx + w]
        if ink.size:
            return ink
    return soft_ink(source[y:y + h, x:x + w])


def export_digits(store: Store, out_dir: Path) -> ExportSummary:
    """Write every usable reviewed digit under ``out_dir`` with ``labels.csv``.

    Files are named ``<scan id>-<position>.png``, so running again over a grown database
    rewrites the same files instead of adding duplicates.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    rows: list[tuple[str, str]] = []
    for item, code in reviewed_codes(store):
        digits = item.scan.read.digits
        if len(code) != len(digits):
            summary.skipped.append(f"{item.name}: reviewed code {code} has {len(code)} digits, "
                                   f"{len(digits)} crops were cut")
            continue
        try:
            image = item.image()
        except PostreadError as e:
            summary.skipped.append(str(e))
            continue
        crops, direct = recut(image, item.scan.read.field_box, [d.box for d in digits])
        for position, (pixels, label) in enumerate(zip(crops, code, strict=True)):
            name = f"{item.scan.id}-{position}.png"
            if not cv2.imwrite(str(out_dir / name), pixels):
                raise UsageError(f"{out_dir / name}: cannot write here")
            rows.append((name, label))
        summary.reads += 1
        summary.digits += len(crops)
        summary.recut += direct
    with (out_dir / LABELS).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "label"))
        writer.writerows(rows)
    return summary
