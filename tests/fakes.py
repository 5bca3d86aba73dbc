"""Test doubles for the plumbing: a fake classifier, a crashing one, a fake reader, code images.

A "code image" is a real image file whose code a fake reader can read back: N vertical
stripes, each a grey level that the fake classifier maps to a digit. Run as a script,
this module is ``postread`` with these fakes plugged in (for subprocess fault tests).
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import cv2
import numpy as np

from postread.classify import to_predictions
from postread.records import CodeField, CodeRead, DigitPrediction, FieldKind, Scan, Status


def level(digit: int, sure: bool = True) -> int:
    """The grey level a stripe needs for the fake classifier to read ``digit``."""
    return int((digit + (0.5 if sure else 0.02)) * 25.5)


def code_image(code: str, sure: bool = True, size: tuple[int, int] = (200, 80)) -> np.ndarray:
    """A BGR image the fake reader reads as ``code`` (confidently unless ``sure`` is False)."""
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    edges = np.linspace(0, width, len(code) + 1).astype(int)
    for digit, left, right in zip(code, edges, edges[1:], strict=False):
        image[:, left:right] = level(int(digit), sure)
    return image


def write_code_image(path: Path, code: str, sure: bool = True) -> Path:
    """Write a code image (format from the file name) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 100] if path.suffix == ".jpg" else []
    assert cv2.imwrite(str(path), code_image(code, sure), params)
    return path


class FakeClassifier:
    """Reads a crop's mean grey level as a digit; sure near the middle of a level's band."""

    version = "fake-1"

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """N x 28 x 28 -> N x 10."""
        scaled = crops.reshape(len(crops), -1).mean(axis=1) / 25.5
        labels = np.clip(scaled.astype(int), 0, 9)
        sure = np.abs(scaled - labels - 0.5) < 0.25
        out = np.full((len(crops), 10), 0.0)
        out[np.arange(len(crops)), labels] = np.where(sure, 0.999, 0.55)
        out[np.arange(len(crops)), (labels + 1) % 10] += 1 - out.sum(axis=1)
        return out


class CrashingClassifier(FakeClassifier):
    """A classifier that always fails, to prove a failure becomes a failed scan."""

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Raise, like a broken model would."""
        raise RuntimeError("model exploded")


def load_fake(path=None, threads: int = 1) -> FakeClassifier:
    """Stands in for ``classify.load_classifier``; POSTREAD_FAKE=crash gives the crashing one."""
    return CrashingClassifier() if os.environ.get("POSTREAD_FAKE") == "crash" else FakeClassifier()


def fake_read(scan: Scan, classifier, settings) -> CodeRead:
    """Stands in for ``pipeline.read_scan``: one digit per stripe of 1/5 of the width."""
    time.sleep(float(os.environ.get("POSTREAD_FAKE_DELAY", "0")))  # to kill runs part-way
    gray = cv2.cvtColor(scan.image, cv2.COLOR_BGR2GRAY)
    count = 5
    edges = np.linspace(0, gray.shape[1], count + 1).astype(int)
    crops = np.stack([cv2.resize(gray[:, a + 2:b - 2], (28, 28), interpolation=cv2.INTER_AREA)
                      for a, b in zip(edges, edges[1:], strict=False)])
    probs = classifier.probabilities(crops)
    digits = to_predictions(probs, [(int(a), 0, int(b - a), scan.height)
                                    for a, b in zip(edges, edges[1:], strict=False)])
    confidence = float(np.prod([d.probability for d in digits]))
    ok = confidence >= settings.review_below
    return CodeRead(Status.ACCEPTED if ok else Status.NEEDS_REVIEW,
                    "".join(str(d.label) for d in digits), confidence,
                    "" if ok else f"low confidence {confidence:.2f}", "digits:5",
                    digits=tuple(digits))


def a_read(code="12345", status=Status.ACCEPTED) -> CodeRead:
    """A complete read (boxes field, a rival candidate, one prediction per digit)."""
    chosen = CodeField((10, 20, 100, 30), FieldKind.BOXES, 0.9, "5 orange boxes under the address")
    other = CodeField((0, 0, 50, 10), FieldKind.FREEFORM, 0.2, "sender's code, top left")
    digits = tuple(DigitPrediction((10 + 20 * i, 20, 18, 30), int(c), 0.98, 7, 0.01,
                                   tuple(0.98 if k == int(c) else 0.002 for k in range(10)))
                   for i, c in enumerate(code))
    return CodeRead(status, code, 0.9, "", "fr", chosen, digits, (chosen, other))


def plug_in(monkeypatch) -> None:
    """Make the CLI use the fakes (in this process and in spawned workers)."""
    from postread import batch, classify, cli

    monkeypatch.setattr(classify, "load_classifier", load_fake)
    monkeypatch.setattr(cli, "read_batch", functools.partial(batch.read_batch,
                                                             reader=fake_read))


if __name__ == "__main__":
    from postread import batch, classify, cli

    classify.load_classifier = load_fake
    cli.read_batch = functools.partial(batch.read_batch, reader=fake_read)
    cli.app(prog_name="postread")
