"""Find a stored scan's file again and decode it exactly as the reader saw it.

Stored boxes (field, digits) are in the pixels the reader worked on, which for a large
JPEG is a reduced decode (``Settings.max_side``), turned when the envelope was the wrong
way up; decoding and turning the same way makes them line up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from postread.errors import InputError, ScanError
from postread.orientation import turn
from postread.records import Box
from postread.scan import ScanFile
from postread.settings import MAX_SIDE


def source_file(path: str, run_options: dict) -> Path:
    """The file a scan was read from: the run's scanned folder joined with the stored path."""
    return Path(run_options.get("root", ".")) / path


def load_image(file: Path, page: int, content_hash: str, run_options: dict,
               turned: int = 0) -> np.ndarray:
    """Decode page ``page`` of ``file`` as the reader did (BGR uint8), turned as it was.

    ``turned`` is the read's: degrees clockwise the reader turned the scan to read it.

    Raises:
        InputError: The file is gone, unreadable, or no longer the image that was read.
    """
    try:
        scan_file = ScanFile(file)
    except ScanError as e:
        raise InputError(f"{file}: {e}") from None
    if page >= len(scan_file.sizes) or scan_file.content_hash(page) != content_hash:
        # showing another image under the same name would make a person review the wrong mail
        raise InputError(f"{file}: the file has changed since it was read")
    try:
        return turn(scan_file.decode(page, run_options.get("max_side", MAX_SIDE)).image, turned)
    except ScanError as e:
        raise InputError(f"{file}: {e}") from None


def crop_with_margin(image: np.ndarray, box: Box, margin: float = 0.4) -> np.ndarray:
    """The region ``box`` with ``margin`` x its height of context on every side, clipped."""
    x, y, w, h = box
    pad = max(8, round(margin * h))
    height, width = image.shape[:2]
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(width, x + w + pad), min(height, y + h + pad)
    return image[y0:y1, x0:x1]
