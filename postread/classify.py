"""The digit classifier: the ONNX model, verified against its card, giving calibrated probabilities."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class DigitClassifier(Protocol):
    """Anything that turns digit crops into calibrated class probabilities."""

    version: str
    """Identifies the model (stored with every read; re-reads are skipped per version)."""

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """N x 28 x 28 uint8 crops (white on black) -> N x 10 calibrated probabilities."""
        ...
