"""A real SQLite results database of generated envelopes, for the review, show and export tests.

Each envelope is drawn by ``pipelines/synth_envelopes.py`` and written as a PNG; its read
is stored through ``Store.save`` with the envelope's true field and digit boxes and a
scripted code and confidence, so that the review queue's order and contents are known.
The benchmark ``benchmarks/review_speed.py`` builds its queue with this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from pipelines.synth_envelopes import make_envelope
from postread.records import CodeField, CodeRead, DigitPrediction, FieldKind, Status
from postread.scan import ScanFile
from postread.store import ScanResult, Store


@dataclass(frozen=True)
class Planned:
    """One envelope to draw and the read to store for it."""

    name: str
    convention: str
    true_code: str
    read_code: str
    confidence: float
    seed: int


PLAN = (
    Planned("a.png", "fr", "75011", "75017", 0.30, 1),
    Planned("b.png", "cn", "100080", "100080", 0.45, 2),
    Planned("c.png", "hu", "1234", "1234", 0.60, 3),
    Planned("d.png", "us", "02139", "02139", 0.99, 4),
)
"""Three reads that need review (a, b, c in queue order) and one accepted (d)."""
SIZE = (800, 450)
"""Small envelopes: quick to draw, decode and render."""


def _read(plan: Planned, field_box, digit_boxes) -> CodeRead:
    """The scripted read: every digit's box, label and probability, plus a rival field."""
    digits = []
    for box, label in zip(digit_boxes, plan.read_code, strict=True):
        p = plan.confidence ** (1 / len(plan.read_code))
        probabilities = [0.0] * 10
        runner_up = (int(label) + 1) % 10
        probabilities[int(label)], probabilities[runner_up] = p, 1 - p
        digits.append(DigitPrediction(tuple(box), int(label), p, runner_up, 1 - p,
                                      tuple(probabilities)))
    kind = FieldKind.BOXES if plan.convention in ("fr", "cn", "jp") else FieldKind.FREEFORM
    chosen = CodeField(tuple(field_box), kind, 0.9, "scripted: the recipient's field")
    rival = CodeField((10, 10, 120, 30), FieldKind.FREEFORM, 0.2, "scripted: sender's code")
    accepted = plan.confidence >= 0.9
    return CodeRead(Status.ACCEPTED if accepted else Status.NEEDS_REVIEW, plan.read_code,
                    plan.confidence, "" if accepted else f"low confidence {plan.confidence:.2f}",
                    plan.convention, chosen, tuple(digits), (chosen, rival))


def build(folder: Path, plan: tuple[Planned, ...] = PLAN) -> tuple[str, dict[str, object]]:
    """Draw the envelopes into ``folder/scans``, store their reads in ``folder/review.db``.

    Returns the database path and the drawn envelopes by file name.
    """
    scans = folder / "scans"
    scans.mkdir(parents=True, exist_ok=True)
    db = str(folder / "review.db")
    store = Store(db)
    run_id = store.start_run("scripted-1", {"root": str(scans.absolute()), "max_side": 2400})
    envelopes, results = {}, []
    for p in plan:
        envelope = make_envelope(p.true_code, p.convention, p.seed, size=SIZE)
        path = scans / p.name
        cv2.imwrite(str(path), envelope.image)
        read = _read(p, envelope.field_box, envelope.digit_boxes)
        scan_file = ScanFile(path)
        results.append(ScanResult(p.name, 0, scan_file.content_hash(0), scan_file.size_bytes,
                                  read.status, read.reason, read))
        envelopes[p.name] = envelope
    store.save(run_id, "scripted-1", results)
    store.finish_run(run_id, "finished", {"scans": len(results)})
    store.engine.dispose()  # the last connection closing folds the WAL in: the file is whole
    return db, envelopes
