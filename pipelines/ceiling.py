"""The classifier alone on an evaluation set's own MNIST digits: the ceiling of a read.

A set made with ``synth_envelopes.py --digits mnist-*`` names, in ``labels.csv``'s
``digit_sources`` column, the MNIST image each code digit was drawn from. Classifying
those clean images directly says what a reader that found, cut and normalised every
digit perfectly would score with this model: how far the reader falls short of that is
what finding and cutting cost, and the rest is the classifier's own. Used by
``evaluate_reads.py``; sets without the column (or without MNIST at hand) get no ceiling.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipelines.evaluate_reads import Outcome
    from postread.classify import DigitClassifier


@dataclass(frozen=True)
class Alone:
    """The classifier's verdict on one envelope's clean code digits."""

    confidence: float
    """Product of the true digits' calibrated probabilities."""
    right: bool
    """Every digit's likeliest label is the true one."""

    def accepted_at(self, threshold: float) -> bool:
        """A perfect cut would be accepted right at this review threshold."""
        return self.right and self.confidence >= threshold


def classifier_alone(rows: list[dict[str, str]], classifier: DigitClassifier,
                     mnist_dir: Path | None) -> dict[str, Alone]:
    """Each coded envelope's ``Alone`` verdict, by file (empty when the set names no sources)."""
    from pipelines.mnist import load_split

    sources = {row["file"]: [(split, int(index)) for split, index in
                             (name.split(":") for name in row["digit_sources"].split(";"))]
               for row in rows if row.get("digit_sources") and row["code"]}
    if not sources or mnist_dir is None:
        return {}
    # Only the images the set names are classified (a few thousand, not a whole split).
    truth: dict[tuple[str, int], tuple[float, bool]] = {}
    for split in {split for names in sources.values() for split, _ in names}:
        images, labels = load_split(mnist_dir, split)
        wanted = sorted({i for names in sources.values() for s, i in names if s == split})
        for index, p in zip(wanted, classifier.probabilities(images[wanted]), strict=True):
            label = int(labels[index])
            truth[split, index] = (float(p[label]), int(p.argmax()) == label)
    return {file: Alone(float(np.prod([truth[n][0] for n in names])),
                        all(truth[n][1] for n in names))
            for file, names in sources.items()}


def report_ceiling(outcomes: list[Outcome], alone: dict[str, Alone], threshold: float) -> None:
    """Print the reader against the classifier alone, and where the reader's losses are."""
    pairs = [(o, alone[o.file]) for o in outcomes if o.file in alone]
    if not pairs:
        return
    n = len(pairs)
    print(f"\nthe classifier alone on the same clean MNIST digits ({n} envelopes with a code)")
    print(f"{'':<18}{'exact':>8}{'accepted':>10}{'acc. error':>12}")
    rows = (("classifier alone", [(a.right, a.confidence >= threshold) for _, a in pairs]),
            ("this reader", [(o.right, o.accepted_at(threshold)) for o, _ in pairs]))
    for name, verdicts in rows:
        accepted = [right for right, taken in verdicts if taken]
        print(f"{name:<18}{sum(r for r, _ in verdicts) / n:>8.1%}{len(accepted) / n:>10.1%}"
              f"{accepted.count(False) / max(len(accepted), 1):>12.2%}")
    # Where the reader loses what the classifier alone would have accepted right.
    lost = Counter(o.verdict(threshold) for o, a in pairs if a.accepted_at(threshold))
    print(f"of the {sum(lost.values())} the classifier alone accepts right, the reader: "
          + ", ".join(f"{name} {count}" for name, count in lost.most_common()))
