"""Evaluate the reader on a generated envelope set: accuracy, acceptance, errors, threshold sweep.

    python pipelines/evaluate_reads.py DIR [--format auto] [--review-below 0.99] [--model PATH]
                                           [--save RUN.csv] [--against RUN.csv] [--mnist DIR]

DIR holds the images and ``labels.csv`` (file,code,convention,condition and, for sets
drawn from MNIST, digit_sources), as written by ``pipelines/synth_envelopes.py``. Prints
exact-code accuracy, the share accepted and the error rate among accepted reads, the same
per convention and per condition, the wrong reads by kind of error (a digit misread, lost or
added, no code read, ...), every failure with its reason, and a sweep of review
thresholds (accepted share and accepted error rate for each) that justifies the default
threshold. A set drawn from MNIST also gets its ceiling (``ceiling.py``): the classifier
alone on the same clean digits.

To judge a change, save a run before it (``--save``) and compare after it
(``--against``): the images whose read changed are listed, each marked better or worse.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.ceiling import classifier_alone, report_ceiling  # noqa: E402
from pipelines.mnist import default_dir  # noqa: E402
from postread.assemble import DEFAULT_REVIEW_BELOW  # noqa: E402
from postread.classify import load_classifier  # noqa: E402
from postread.pipeline import read_file  # noqa: E402
from postread.records import Status  # noqa: E402
from postread.settings import Settings  # noqa: E402

SWEEP = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)
"""Review thresholds tried in the sweep."""
BANDS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 1.0)
"""Confidence bands of the calibration table (the last one includes 1.0)."""


@dataclass(frozen=True)
class Outcome:
    """One image's read next to its label."""

    file: str
    convention: str
    condition: str
    expected: str
    code: str
    confidence: float
    status: str
    reason: str
    clean: bool
    """True when nothing but (perhaps) the confidence stands between the read and accepted."""

    @property
    def right(self) -> bool:
        """The code read is exactly the label's digits."""
        return self.code == self.expected

    def accepted_at(self, threshold: float) -> bool:
        """Whether the read would be accepted with this review threshold."""
        return self.clean and self.confidence >= threshold

    def verdict(self, threshold: float) -> str:
        """One of ``VERDICTS``: right or wrong, accepted or not, at this threshold."""
        if self.accepted_at(threshold):
            return "accepts right" if self.right else "accepts WRONG"
        return "reads right, not accepted" if self.right else "reads wrong"


VERDICTS = ("accepts WRONG", "reads wrong", "reads right, not accepted", "accepts right")
"""What can become of a read (``Outcome.verdict``), worst to best."""

ERROR_KINDS = ("one digit misread", "2+ digits misread", "a digit lost", "a digit added",
               "no code read", "a code where there is none", "another number")
"""How a read can be wrong (``error_kind``): which stage to look at first. A digit misread
is the classifier's or a cut through it; lost or added, the cut into digits; no code or
another number, the field's location (or a cut so wrong it reads as no code)."""


def error_kind(outcome: Outcome) -> str | None:
    """Which of ``ERROR_KINDS`` a wrong read is, None for a right one."""
    if outcome.right:
        return None
    read, expected = outcome.code, outcome.expected
    if not read:
        return "no code read"
    if not expected:
        return "a code where there is none"
    if len(read) == len(expected):
        misread = sum(a != b for a, b in zip(read, expected, strict=True))
        return "one digit misread" if misread == 1 else "2+ digits misread"
    if len(read) == len(expected) - 1 and _one_dropped(expected, read):
        return "a digit lost"
    if len(read) == len(expected) + 1 and _one_dropped(read, expected):
        return "a digit added"
    return "another number"


def _one_dropped(longer: str, shorter: str) -> bool:
    """True when leaving one digit out of ``longer`` gives ``shorter``."""
    return any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer)))


_worker: dict[str, object] = {}
"""Per-process state: each worker loads the classifier once."""


def _init_worker(model: str | None, fmt: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C once
    _worker["classifier"] = load_classifier(Path(model) if model else None)
    # Threshold 0: the status then reflects every check except confidence, for the sweep.
    _worker["settings"] = Settings(format=fmt, review_below=0.0)


def _read_one(row: dict[str, str]) -> Outcome:
    # The product's own path (pipeline.read_file): the same decode resolution, the same
    # handling of bad files and reader crashes as `postread read`.
    path = Path(row["path"])
    results, _ = read_file(path, path.parent, _worker["classifier"], _worker["settings"],
                           frozenset())
    result = results[0]
    expected = "".join(ch for ch in row["code"] if ch.isdigit())
    read = result.read
    return Outcome(row["file"], row["convention"], row["condition"], expected,
                   read.code if read else "", read.confidence if read else 0.0,
                   result.status.value, result.reason, result.status is Status.ACCEPTED)


def load_labels(directory: Path, limit: int | None) -> list[dict[str, str]]:
    """The rows of ``labels.csv``, each with the image's full path added."""
    with open(directory / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["path"] = str(directory / row["file"])
    return rows[:limit] if limit else rows


def _line(name: str, outcomes: list[Outcome], threshold: float) -> str:
    n = len(outcomes)
    right = sum(o.right for o in outcomes)
    accepted = [o for o in outcomes if o.accepted_at(threshold)]
    wrong = sum(not o.right for o in accepted)
    error = wrong / len(accepted) if accepted else 0.0
    return (f"{name:<14}{n:>6}{right / n:>10.1%}{len(accepted) / n:>10.1%}"
            f"{error:>12.2%}{wrong:>7}")


def report(outcomes: list[Outcome], threshold: float) -> None:
    """Print the tables, the failures and the threshold sweep."""
    header = f"{'':<14}{'n':>6}{'exact':>10}{'accepted':>10}{'acc. error':>12}{'wrong':>7}"
    print(f"review threshold {threshold:.3f}\n{header}")
    print(_line("all", outcomes, threshold))
    # Envelopes without a code can only be right by reading nothing, never "accepted":
    # the accepted share that users of coded mail see is this line's.
    coded = [o for o in outcomes if o.expected]
    if coded and len(coded) < len(outcomes):
        print(_line("with a code", coded, threshold))
    for key in ("convention", "condition"):
        print(f"\nby {key}\n{header}")
        groups = defaultdict(list)
        for outcome in outcomes:
            groups[getattr(outcome, key)].append(outcome)
        for name in sorted(groups):
            print(_line(name, groups[name], threshold))
    report_errors(outcomes, threshold)
    failures = [o for o in outcomes if not (o.right and o.accepted_at(threshold))]
    print(f"\nfailures ({len(failures)}: wrong, or not accepted)")
    for o in sorted(failures, key=lambda o: (o.right, o.file)):
        verdict = "ACCEPTED WRONG" if o.accepted_at(threshold) else (
            "review" if o.status != "failed" else "failed")
        reason = o.reason or (f"confidence {o.confidence:.2f}" if o.accepted_at(threshold)
                              else f"confidence {o.confidence:.2f} below {threshold:.2f}")
        print(f"  {o.file} [{o.convention}/{o.condition}] expected {o.expected} read "
              f"{o.code or '-'} ({o.confidence:.3f}) {verdict}: {reason}")
    print(f"\nthreshold sweep\n{'threshold':>10}{'accepted':>10}{'acc. error':>12}{'exact':>8}")
    exact = sum(o.right for o in outcomes) / len(outcomes)
    for t in SWEEP:
        accepted = [o for o in outcomes if o.accepted_at(t)]
        error = sum(not o.right for o in accepted) / len(accepted) if accepted else 0.0
        print(f"{t:>10.3f}{len(accepted) / len(outcomes):>10.1%}{error:>12.2%}{exact:>8.1%}")
    print("\ncalibration: reads with a code and no doubt, by confidence\n"
          f"{'confidence':>13}{'n':>7}{'mean':>8}{'right':>8}")
    for low, high, n, mean, right in calibration(outcomes):
        print(f"{low:>6.3f}-{high:<6.3f}{n:>7}{mean:>8.3f}{right:>8.1%}")


def report_errors(outcomes: list[Outcome], threshold: float) -> None:
    """Print the wrong reads by kind: how many, how many accepted, and where they are most."""
    kinds = defaultdict(list)
    for outcome in outcomes:
        if (kind := error_kind(outcome)) is not None:
            kinds[kind].append(outcome)
    wrong = sum(len(found) for found in kinds.values())
    print(f"\nwrong reads by kind ({wrong} of {len(outcomes)})\n"
          f"{'':<28}{'n':>5}{'accepted':>10}  most under")
    for kind in ERROR_KINDS:
        if found := kinds.get(kind):
            accepted = sum(o.accepted_at(threshold) for o in found)
            conditions = Counter(o.condition for o in found).most_common(2)
            where = ", ".join(f"{name} {count}" for name, count in conditions)
            print(f"{kind:<28}{len(found):>5}{accepted:>10}  {where}")


def calibration(outcomes: list[Outcome]) -> list[tuple[float, float, int, float, float]]:
    """(low, high, n, mean confidence, share right) of each confidence band.

    Only reads whose confidence alone decides (a code, no doubt flagged): a calibrated
    confidence is then the share of them that is right.
    """
    clean = [o for o in outcomes if o.code and o.clean]
    rows = []
    for low, high in zip(BANDS, BANDS[1:], strict=False):
        band = [o for o in clean if low <= o.confidence < high
                or (high == BANDS[-1] and o.confidence == high)]
        if band:
            rows.append((low, high, len(band), sum(o.confidence for o in band) / len(band),
                         sum(o.right for o in band) / len(band)))
    return rows


def save(outcomes: list[Outcome], path: Path) -> None:
    """Write one CSV row per image, for a later ``--against``."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [f.name for f in fields(Outcome)])
        writer.writeheader()
        writer.writerows(asdict(o) for o in outcomes)


def load(path: Path) -> dict[str, Outcome]:
    """A run written by ``save``, by file name."""
    with open(path, newline="") as handle:
        return {row["file"]: Outcome(**{**row, "confidence": float(row["confidence"]),
                                        "clean": row["clean"] == "True"})
                for row in csv.DictReader(handle)}


def _score(outcome: Outcome, threshold: float) -> int:
    """How good the read's verdict is: its place in ``VERDICTS``, worst first."""
    return VERDICTS.index(outcome.verdict(threshold))


def compare(outcomes: list[Outcome], before: dict[str, Outcome], threshold: float) -> None:
    """Print the images whose code or status changed since the ``before`` run."""
    changed = [(before[o.file], o) for o in outcomes if o.file in before
               and (before[o.file].code, _status_at(before[o.file], threshold))
               != (o.code, _status_at(o, threshold))]
    better = sum(_score(new, threshold) > _score(old, threshold) for old, new in changed)
    worse = sum(_score(new, threshold) < _score(old, threshold) for old, new in changed)
    print(f"\nagainst the saved run: {len(changed)} reads changed, {better} better, "
          f"{worse} worse")
    for old, new in changed:
        step = _score(new, threshold) - _score(old, threshold)
        mark = "better" if step > 0 else "worse" if step < 0 else "same"
        print(f"  {mark:<7}{new.file} expected {new.expected or '-'}: "
              f"{old.code or '-'} {_status_at(old, threshold)} ({old.confidence:.2f}) -> "
              f"{new.code or '-'} {_status_at(new, threshold)} ({new.confidence:.2f}) "
              f"{new.reason}")


def _status_at(outcome: Outcome, threshold: float) -> str:
    """The status the read gets with this review threshold (runs are made with 0)."""
    if outcome.status == "failed":
        return "failed"
    return "accepted" if outcome.accepted_at(threshold) else "needs_review"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--format", default="auto")
    parser.add_argument("--review-below", type=float, default=DEFAULT_REVIEW_BELOW)
    parser.add_argument("--model", default=None, help="card, .onnx or folder (default: shipped)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="read only the first N images")
    parser.add_argument("--dry-run", action="store_true", help="read 4 images, print the tables")
    parser.add_argument("--save", type=Path, help="write each image's outcome to this CSV")
    parser.add_argument("--against", type=Path,
                        help="list the reads that changed since a run saved with --save")
    parser.add_argument("--mnist", type=Path, default=default_dir(),
                        help="MNIST folder, for the classifier-alone ceiling of sets drawn "
                             "from it (default: POSTREAD_MNIST_DIR or ../shared/data/mnist)")
    args = parser.parse_args(argv)
    rows = load_labels(args.directory, 4 if args.dry_run else args.limit)
    if not rows:
        print(f"{args.directory}/labels.csv lists no images", file=sys.stderr)
        return 3
    start = time.monotonic()
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, _init_worker, (args.model, args.format)) as pool:
        outcomes = pool.map(_read_one, rows, chunksize=4)
    elapsed = time.monotonic() - start
    print(f"{len(outcomes)} images from {args.directory} in {elapsed:.0f} s "
          f"({len(outcomes) / elapsed:.1f}/s, {args.workers} workers, format {args.format})\n")
    report(outcomes, args.review_below)
    alone = classifier_alone(rows, load_classifier(Path(args.model) if args.model else None),
                             args.mnist)
    report_ceiling(outcomes, alone, args.review_below)
    if args.against:
        compare(outcomes, load(args.against), args.review_below)
    if args.save:
        save(outcomes, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
