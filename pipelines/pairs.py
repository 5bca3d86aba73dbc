"""Two training digits run together and cut out as one mark: what touching digits give a reader.

Trained on single digits only, the classifier reads such a mark as one digit, often surely
(a 71 as a 7, an 89 as an 8): of 3,000 pairs of MNIST test digits made this way, model 1.1.0
read 21% at 0.99 or more. ``train.py --pairs-share`` mixes them into training, teaching
that no label of a pair is likely, so that a mark holding two digits reads unsure and the
reader's cutting lattice prefers cutting it in two.

Not in the shipped model yet: fine-tuned from 1.1.0 with ``--pairs-share 0.1`` (2 epochs),
the model read 0.8% of such pairs at 0.99 or more, but the reader got fewer codes exactly
right on dev600 (91.7% -> 90.5%; the same fine-tune without pairs, 90.8%). The lattice's
costs (``segment_lattice.py``) were tuned on 1.1.0's confidences and need tuning again with
such a model.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.handwriting import crop_tight
from postread.normalise import to_mnist

MAX_OVERLAP = 0.2
"""Most that the second digit's ink box overlaps the first's, in shares of their width."""


def touching_pair(first: np.ndarray, second: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two 28 x 28 digits side by side, touching or overlapping a little, as one MNIST crop."""
    left, right = crop_tight(first, floor=0), crop_tight(second, floor=0)
    # Written by one hand: about the same height, baselines a little apart.
    scale = rng.uniform(0.85, 1.15)
    right = cv2.resize(right, (max(1, round(right.shape[1] * scale)),
                               max(1, round(right.shape[0] * scale))))
    height = max(left.shape[0], right.shape[0])
    shift = int(rng.integers(0, height - min(left.shape[0], right.shape[0]) + 1))
    overlap = int(rng.uniform(0, MAX_OVERLAP) * min(left.shape[1], right.shape[1]))
    width = left.shape[1] + right.shape[1] - overlap
    canvas = np.zeros((height + shift, width), np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    x0 = left.shape[1] - overlap
    region = canvas[shift:shift + right.shape[0], x0:x0 + right.shape[1]]
    np.maximum(region, right, out=region)
    return to_mnist(canvas)


def touching_pairs(images: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` touching pairs drawn from ``images`` (N x 28 x 28 uint8), as count x 28 x 28."""
    picks = rng.integers(0, len(images), (count, 2))
    return np.stack([touching_pair(images[a], images[b], rng) for a, b in picks])
