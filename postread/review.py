"""The review queue: which reads a person checks, in what order, and what they decided.

A decision is stored as a ``ReviewRow`` of its own beside the model's read, never over
it; a later decision on the same scan (going back and changing it) is a new row, and the
latest one is the scan's final state. Decisions follow the scan's content hash, so a
reviewed image stays reviewed when a newer model reads it again.
"""

from __future__ import annotations

import csv
import getpass
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import numpy as np
from rich.table import Table

from postread.errors import UsageError
from postread.export import digit_cells
from postread.store import ScanRow, Store
from postread.stored_scan import load_image, source_file

REVIEWABLE = ("needs_review", "accepted", "all")
"""What ``review --status`` accepts."""
QUEUE_COLUMNS = ("id", "file", "page", "code", "confidence", "status", "digits",
                 "digit_confidences", "reason")
"""Columns of ``review --list --csv``."""


class Action(StrEnum):
    """What a person decided about a read."""

    CONFIRMED = "confirmed"
    """The model's code is right."""
    CORRECTED = "corrected"
    """The code is another one, typed by the person."""
    UNREADABLE = "unreadable"
    """No code can be read on this scan, by a person either."""


@dataclass(frozen=True)
class QueueItem:
    """One read waiting for a person, with where its image is."""

    scan: ScanRow
    """The stored scan, its read and digits loaded (detached from the session)."""
    file: Path
    """The scan file on disk (the run's folder + the stored relative path)."""
    run_options: dict
    """Options of the run that read it (decode size), see ``stored_scan.load_image``."""

    @property
    def code(self) -> str:
        """The model's code ("" when none was read)."""
        return self.scan.read.code if self.scan.read else ""

    @property
    def confidence(self) -> float:
        """The model's confidence in the code (0 when none)."""
        return self.scan.read.confidence if self.scan.read else 0.0

    def image(self) -> np.ndarray:
        """The scan decoded and turned as the reader saw it, so stored boxes line up.

        Raises:
            InputError: The file is gone, unreadable, or no longer the image that was read.
        """
        turned = self.scan.read.turned if self.scan.read else 0
        return load_image(self.file, self.scan.page, self.scan.content_hash,
                          self.run_options, turned)

    @property
    def name(self) -> str:
        """The file as stored, with the page when it is a multi-page TIFF."""
        return f"{self.scan.path}#{self.scan.page}" if self.scan.page else self.scan.path


def default_reviewer() -> str:
    """The login name, which is who decided when ``--reviewer`` is not given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers) and no LOGNAME/USER
        return "unknown"


def load_queue(store: Store, status: str = "needs_review", below: float | None = None,
               include_reviewed: bool = False) -> list[QueueItem]:
    """The reads to review, lowest confidence first.

    Args:
        store: The results database.
        status: needs_review, accepted or all (all includes failed reads that found a field).
        below: Only reads whose confidence is below this.
        include_reviewed: Keep scans that already have a decision (to check them again).
    """
    if status not in REVIEWABLE:
        raise UsageError(f"--status {status!r}: use one of {', '.join(REVIEWABLE)}")
    reviewed = store.latest_reviews() if not include_reviewed else {}
    runs = store.run_options()
    items = []
    for scan in store.export_rows(status):
        if scan.read is None or scan.content_hash in reviewed:
            continue  # nothing a person could look at, or already decided
        if below is not None and scan.read.confidence >= below:
            continue
        options = runs.get(scan.run_id, {})
        items.append(QueueItem(scan, source_file(scan.path, options), options))
    items.sort(key=lambda item: (item.confidence, item.scan.path, item.scan.page))
    return items


def decide(model_code: str, typed: str) -> tuple[Action, str]:
    """The decision for Enter pressed after typing ``typed`` (may be empty) on a read.

    Raises:
        UsageError: Nothing typed and no code to confirm, or something other than digits.
    """
    typed = typed.replace("-", "").replace(" ", "")  # ZIP+4 may be typed with its hyphen
    if not typed:
        if not model_code:
            raise UsageError("no code was read: type the code, or mark it unreadable")
        return Action.CONFIRMED, model_code
    if not typed.isdigit():
        raise UsageError(f"{typed!r}: a postal code is digits only")
    return (Action.CONFIRMED if typed == model_code else Action.CORRECTED), typed


def record(store: Store, item: QueueItem, action: Action, code: str, reviewer: str) -> None:
    """Store one decision about ``item`` (a new row: earlier decisions are kept)."""
    store.add_review(item.scan.id, action.value, code if action != Action.UNREADABLE else "",
                     reviewer)


def resolve(items: Sequence[QueueItem], ref: str) -> QueueItem:
    """The item a command-line reference names: a scan id, a stored path, or a file name.

    ``path#N`` names page N of a multi-page TIFF.

    Raises:
        UsageError: Nothing or more than one read matches.
    """
    if ref.isdigit():
        matches = [item for item in items if item.scan.id == int(ref)]
    else:
        name, page = ref, None
        if match := re.fullmatch(r"(.+)#(\d+)", ref):
            name, page = match[1], int(match[2])
        name = Path(name).as_posix().removeprefix("./")
        matches = [item for item in items
                   if (item.scan.path == name or Path(item.scan.path).name == name
                       or item.file.resolve() == Path(name).resolve())
                   and (page is None or item.scan.page == page)]
    if not matches:
        raise UsageError(f"{ref}: no stored read of that file or id")
    if len(matches) > 1:
        names = ", ".join(f"{m.scan.id} ({m.name})" for m in matches[:5])
        raise UsageError(f"{ref}: matches {len(matches)} reads ({names}); give the id")
    return matches[0]


def record_many(store: Store, reviewer: str, sets: Iterable[str] = (),
                accepts: Iterable[str] = (), unreadables: Iterable[str] = ()) -> int:
    """The non-interactive ``--set FILE=CODE``, ``--accept FILE`` and ``--unreadable FILE``.

    Every reference is checked before anything is stored, so a typo stores nothing.
    Returns how many decisions were stored.
    """
    items = load_queue(store, "all", include_reviewed=True)
    planned: list[tuple[QueueItem, Action, str]] = []
    for ref in sets:
        name, sep, code = ref.rpartition("=")
        if not sep or not name or not code:
            raise UsageError(f"--set {ref!r}: expected FILE=CODE")
        item = resolve(items, name)
        planned.append((item, *decide(item.code, code)))
    for ref in accepts:
        item = resolve(items, ref)
        planned.append((item, *decide(item.code, "")))
    for ref in unreadables:
        planned.append((resolve(items, ref), Action.UNREADABLE, ""))
    for item, action, code in planned:
        record(store, item, action, code, reviewer)
    return len(planned)


def _cells(item: QueueItem) -> list[str]:
    digits = item.scan.read.digits if item.scan.read else []
    return [str(item.scan.id), item.scan.path, str(item.scan.page), item.code,
            f"{item.confidence:.4f}", item.scan.status, *digit_cells(digits),
            item.scan.reason]


def write_queue_csv(items: Iterable[QueueItem], out: TextIO) -> int:
    """The queue as CSV (``QUEUE_COLUMNS``); returns the number of rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(QUEUE_COLUMNS)
    count = 0
    for item in items:
        writer.writerow(_cells(item))
        count += 1
    return count


def queue_table(items: Sequence[QueueItem]) -> Table:
    """The queue as a rich table for people (``review --list``)."""
    table = Table(title=f"{len(items)} reads to review, lowest confidence first")
    for column, justify in (("id", "right"), ("file", "left"), ("code", "left"),
                            ("confidence", "right"), ("status", "left"),
                            ("reason", "left")):
        table.add_column(column, justify=justify)
    for item in items:
        table.add_row(str(item.scan.id), item.name, item.code or "-", f"{item.confidence:.3f}",
                      item.scan.status, item.scan.reason)
    return table

