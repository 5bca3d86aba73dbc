"""The options of a ``postread read``: one frozen object, validated once, passed down."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from postread.assemble import DEFAULT_REVIEW_BELOW, parse_format
from postread.errors import UsageError

MAX_SIDE = 1200
"""Decode large images at 1/2, 1/4 or 1/8 resolution while the long side stays at least this
many pixels (the working view's size, ``field_view.WORK_LONG_SIDE``: a 300 dpi envelope's
digits are still ~30 px tall); 0 decodes at full size. JPEG decodes reduced natively, several
times faster than at full size. On 96 highres, 300 dpi and 4000 x 3000 photo envelopes the
codes and statuses read at 1200 are those read at 2400 (confidences move by < 0.1)."""


@dataclass(frozen=True)
class Settings:
    """Everything a read run needs to know besides the folder; invalid values raise UsageError."""

    db: str = "postread.db"
    """A SQLite file path, or a SQLAlchemy URL (anything with ``://``)."""
    workers: int = 0
    """Worker processes; 0 means one per CPU core."""
    format: str = "auto"
    """Which code format to expect: auto, us, fr, cn, jp, hu or digits:N."""
    review_below: float = DEFAULT_REVIEW_BELOW
    """Reads with a lower confidence are stored as needs_review."""
    force: bool = False
    """Read again scans this model already read."""
    model: Path | None = None
    """Model card, its .onnx or a folder of cards; None = POSTREAD_MODEL or the shipped one."""
    max_side: int = MAX_SIDE
    """See ``MAX_SIDE``."""

    def __post_init__(self) -> None:
        """Validate every field once, at the edge."""
        if self.workers < 0:
            raise UsageError(f"--workers must be 1 or more, not {self.workers}")
        if self.workers == 0:
            object.__setattr__(self, "workers", os.cpu_count() or 1)
        try:
            parse_format(self.format)
        except ValueError as e:
            raise UsageError(f"--format: {e}") from None
        if not 0.0 <= self.review_below <= 1.0:
            raise UsageError(f"--review-below must be between 0 and 1, not {self.review_below}")
        if self.max_side < 0:
            raise UsageError(f"max_side must be 0 or more, not {self.max_side}")

    def options(self) -> dict:
        """The options as stored with a run (plain JSON values; the db URL may hold a password)."""
        values = asdict(self)
        values.pop("db")
        values["model"] = str(self.model) if self.model else None
        return values
