"""Write stored reads as CSV (RFC 4180, header row), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import TextIO

from postread.store import DigitRow, ReviewRow, ScanRow

COLUMNS = ("file", "page", "code", "confidence", "status", "format", "digits",
           "digit_confidences", "reason")
"""The CSV header, in order (the contract in issue 3)."""
REVIEW_COLUMNS = ("model_code", "reviewer", "reviewed_at")
"""Appended after ``COLUMNS`` (issue 4): the model's own code and who reviewed it, when."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CODE, _STATUS = COLUMNS.index("code"), COLUMNS.index("status")


def write_csv(rows: Iterable[ScanRow], out: TextIO,
              reviews: Mapping[str, ReviewRow] | None = None) -> int:
    """Write one CSV line per stored scan to ``out``; returns how many were written.

    ``reviews`` (``Store.latest_reviews``) gives the final state: where a person decided,
    ``code`` is their code and ``status`` is reviewed or unreadable; the model's code
    stays in ``model_code``.
    """
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(COLUMNS + REVIEW_COLUMNS)
    reviews = reviews or {}
    count = 0
    for row in rows:
        review = reviews.get(row.content_hash)
        cells = _cells(row) + _review_cells(row, review)
        if review is not None:
            cells[_CODE] = review.code_after
            cells[_STATUS] = "unreadable" if review.action == "unreadable" else "reviewed"
        writer.writerow([_safe(cell) for cell in cells])
        count += 1
    return count


def _review_cells(row: ScanRow, review: ReviewRow | None) -> list[str]:
    model_code = row.read.code if row.read else ""
    if review is None:
        return [model_code, "", ""]
    decided = review.decided_at
    if decided.tzinfo is None:  # SQLite keeps no offset; the store writes UTC
        decided = decided.replace(tzinfo=UTC)
    return [model_code, review.reviewer, decided.isoformat(timespec="seconds")]


def _cells(row: ScanRow) -> list[str]:
    read = row.read
    digits = read.digits if read else []
    return [
        row.path,
        str(row.page),
        read.code if read else "",
        f"{read.confidence:.4f}" if read else "0",
        row.status,
        read.format if read else "",
        *digit_cells(digits),
        row.reason,
    ]


def digit_cells(digits: Iterable[DigitRow]) -> list[str]:
    """The ``digits`` and ``digit_confidences`` cells: labels and probabilities, ';'-joined."""
    digits = list(digits)
    return [";".join(str(d.label) for d in digits),
            ";".join(f"{d.probability:.4f}" for d in digits)]


def _safe(cell: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell
