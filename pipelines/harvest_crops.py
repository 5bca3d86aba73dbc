"""Harvest training digits from generated envelopes, cut by postread's own reader.

    python pipelines/harvest_crops.py OUT [--count 3000] [--seed 5] [--workers 2] [--split train]

Envelopes are drawn with MNIST *training* digits (minus train.py's validation split), saved
as a user's scan would be (PNG, or JPEG for photos) and read through ``pipeline.read_file``,
the path ``postread read`` takes. Every digit the reader cut where a true digit is (its box
centre inside that digit's box, one crop per true digit, the whole code found) is kept with
its true label, including the ones the classifier gets wrong. The classifier then learns
the crops it really meets: broken or thresholded strokes, box remnants, a neighbour's ink,
rescaled pens. Writes OUT/labels.csv (file,label) and 28 x 28 PNGs in the layout that
``train.py --extra`` reads. They hold MNIST pixels: never commit them.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.envelope_conditions import CONDITIONS  # noqa: E402
from pipelines.synth_envelopes import (  # noqa: E402
    CODED,
    Envelope,
    envelope_seed,
    make_envelope,
    mnist_digits,
    mnist_folder,
)
from postread.classify import OnnxDigitClassifier, load_classifier  # noqa: E402
from postread.errors import DataError  # noqa: E402
from postread.pipeline import read_file  # noqa: E402
from postread.records import Box  # noqa: E402
from postread.scan import reduction_for  # noqa: E402
from postread.settings import Settings  # noqa: E402


class RecordingClassifier:
    """The real classifier, remembering every crop it was shown with its probabilities."""

    def __init__(self, inner: OnnxDigitClassifier) -> None:
        self.inner, self.version = inner, inner.version
        self.seen: list[tuple[np.ndarray, np.ndarray]] = []

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """As the inner classifier; keeps (crop, probabilities) pairs."""
        probabilities = self.inner.probabilities(crops)
        self.seen.extend(zip(crops, probabilities, strict=True))
        return probabilities

    def probabilities_and_pairs(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As the inner classifier (the reader asks its pair judge too); keeps the pairs."""
        probabilities, pairs = self.inner.probabilities_and_pairs(crops)
        self.seen.extend(zip(crops, probabilities, strict=True))
        return probabilities, pairs

    def crop_of(self, probabilities: tuple[float, ...]) -> np.ndarray | None:
        """The crop that produced exactly these probabilities (None if none did)."""
        target = np.asarray(probabilities)
        return next((c for c, p in self.seen if np.array_equal(p, target)), None)


def _centre_in(box: Box, truth: Box) -> bool:
    x, y, w, h = box
    tx, ty, tw, th = truth
    cx, cy = x + w / 2, y + h / 2
    return tx <= cx <= tx + tw and ty <= cy <= ty + th


def labelled_crops(digits, truth_boxes: list[Box], code: str, recorder: RecordingClassifier
                   ) -> list[tuple[np.ndarray, int]]:
    """(crop, true label) for a read that cut every true digit once, else nothing."""
    if len(digits) != len(code):
        return []
    out = []
    for digit, truth, label in zip(digits, truth_boxes, code, strict=True):
        crop = recorder.crop_of(digit.probabilities)
        if crop is None or not _centre_in(digit.box, truth):
            return []  # a piece, a neighbour or another field: its label is unknown
        out.append((crop, int(label)))
    return out


_state: dict = {}


def _init(mnist_dir: Path, split: str) -> None:
    cv2.setNumThreads(1)
    _state["digits"] = mnist_digits(mnist_dir, split)
    _state["recorder"] = RecordingClassifier(load_classifier(threads=1))
    _state["tmp"] = Path(tempfile.mkdtemp(prefix="harvest-"))


def harvest(env: Envelope, folder: Path, recorder: RecordingClassifier
            ) -> list[tuple[np.ndarray, int]]:
    """Save one envelope into ``folder`` as a scan, read it, and return its labelled crops."""
    path = folder / ("scan.jpg" if env.condition == "photo" else "scan.png")
    cv2.imwrite(str(path), env.image)
    recorder.seen.clear()
    results, _ = read_file(path, folder, recorder, Settings(workers=1), frozenset())
    read = results[0].read
    if read is None or not read.digits:
        return []
    # The reader may decode a large image reduced: bring the true boxes to its scale.
    height, width = env.image.shape[:2]
    f = reduction_for(width, height, Settings().max_side)
    truth = [(x / f, y / f, w / f, h / f) for x, y, w, h in env.digit_boxes]
    return labelled_crops(read.digits, truth, env.code, recorder)


def _harvest_task(task: tuple[int, int, str, str]) -> list[tuple[np.ndarray, int]]:
    seed, index, convention, condition = task
    env = make_envelope(None, convention, envelope_seed(seed, index), digits=_state["digits"],
                        condition=condition)
    return harvest(env, _state["tmp"], _state["recorder"])


def main(argv: list[str] | None = None) -> int:
    """Write OUT/labels.csv and the crops of ``--count`` envelopes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mnist", type=Path, default=None,
                    help="MNIST folder (default: POSTREAD_MNIST_DIR or ../shared/data/mnist)")
    ap.add_argument("--split", choices=("train", "test"), default="train",
                    help="test: crops to measure the classifier on envelopes, not to train on")
    ap.add_argument("--conditions", default=",".join(CONDITIONS),
                    help="comma-separated image conditions to draw from (default: all)")
    args = ap.parse_args(argv)
    conditions = args.conditions.split(",")
    if unknown := sorted(set(conditions) - set(CONDITIONS)):
        ap.error(f"--conditions: unknown {', '.join(unknown)} (known: {', '.join(CONDITIONS)})")
    mnist = mnist_folder(args.mnist)
    # Load (and check) MNIST once here: a pool restarts a worker whose set-up fails, forever.
    try:
        mnist_digits(mnist, args.split)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    tasks = [(args.seed, i, CODED[i % len(CODED)], str(rng.choice(conditions)))
             for i in range(args.count)]
    args.out.mkdir(parents=True, exist_ok=True)
    kept = 0
    with open(args.out / "labels.csv", "w", newline="") as fh, \
            multiprocessing.get_context("spawn").Pool(args.workers, _init,
                                                   (mnist, args.split)) as pool:
        writer = csv.writer(fh)
        writer.writerow(["file", "label"])
        for i, crops in enumerate(pool.imap(_harvest_task, tasks, chunksize=4)):
            for j, (crop, label) in enumerate(crops):
                name = f"{i:05d}-{j}.png"
                cv2.imwrite(str(args.out / name), crop)
                writer.writerow([name, label])
            kept += len(crops)
            if (i + 1) % 100 == 0 or i + 1 == len(tasks):
                print(f"{i + 1}/{len(tasks)} envelopes, {kept} digits", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
