"""Write stored reads as CSV (RFC 4180, header row), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from postread.store import ScanRow

COLUMNS = ("file", "page", "code", "confidence", "status", "format", "digits",
           "digit_confidences", "reason")
"""The CSV header, in order (the contract in issue 3)."""
STATUSES = ("accepted", "needs_review", "failed", "all")
"""What ``--status`` accepts."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_csv(rows: Iterable[ScanRow], out: TextIO) -> int:
    """Write one CSV line per stored scan to ``out``; returns how many were written."""
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([_safe(cell) for cell in _cells(row)])
        count += 1
    return count


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
        ";".join(str(d.label) for d in digits),
        ";".join(f"{d.probability:.4f}" for d in digits),
        row.reason,
    ]


def _safe(cell: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell
