"""The digit classifier: the ONNX model, checked against its card; calibrated probabilities."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from postread.errors import ModelError
from postread.records import Box, DigitPrediction

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
"""Where the shipped model lives in a source checkout (the package is installed editable)."""


class DigitClassifier(Protocol):
    """Anything that turns digit crops into calibrated class probabilities."""

    version: str
    """Identifies the model (stored with every read; re-reads are skipped per version)."""

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """N x 28 x 28 uint8 crops (white on black) -> N x 10 calibrated probabilities."""
        ...


def judge_crops(classifier: DigitClassifier, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each crop's calibrated class probabilities, and its chance of holding two digits.

    The second comes from a model with a pair judge (card 1.3.0 on); any other classifier
    gives 0 for every crop, which leaves the reader's choice of cut to the digits alone.
    """
    both = getattr(classifier, "probabilities_and_pairs", None)
    if both is not None:
        return both(crops)
    return classifier.probabilities(crops), np.zeros(len(crops))


@dataclass(frozen=True)
class ModelCard:
    """What the JSON card beside a model says about how to feed it."""

    path: Path
    """The card file."""
    onnx_path: Path
    """The model file it describes."""
    version: str
    """``digits-<version>-<sha8>``: names the model in stored reads."""
    sha256: str
    """Expected sha256 of the model file."""
    input_name: str
    """Name of the graph input."""
    mean: float
    """Pixels are fed as (p / 255 - mean) / std."""
    std: float
    """See ``mean``."""
    temperature: float
    """Calibration: probabilities are softmax(logits / temperature)."""
    pair_output: str | None
    """The pair judge's output (logits that a crop holds two digits); None in older models."""
    data: dict
    """The whole card, for display and evaluation."""


def default_model_path() -> Path:
    """The card to use when none is given: ``POSTREAD_MODEL``, else the shipped ``models/``."""
    return Path(os.environ.get("POSTREAD_MODEL") or MODELS_DIR)


def find_card(path: Path) -> Path:
    """A card path from a card, its ``.onnx``, or a folder (the highest version in it)."""
    path = Path(path)
    if path.is_dir():
        cards = sorted(path.glob("digits-*.json"), key=_version_key)
        if not cards:
            raise ModelError(f"{path}: no model card (digits-*.json) in this folder")
        return cards[-1]
    if path.suffix == ".onnx":
        path = path.with_suffix(".json")
    if not path.exists():
        raise ModelError(f"{path}: model card not found")
    return path


def _version_key(card: Path) -> tuple[int, ...]:
    parts = card.stem.split("-")
    numbers = parts[1].split(".") if len(parts) >= 3 else []
    return tuple(int(n) for n in numbers if n.isdigit())


def load_card(path: Path) -> ModelCard:
    """Read a card and check that the model beside it has exactly the bytes it describes."""
    card_path = find_card(path)
    try:
        data = json.loads(card_path.read_text())
        onnx_path = card_path.parent / data["file"]
        card = ModelCard(
            path=card_path,
            onnx_path=onnx_path,
            version=onnx_path.stem,
            sha256=data["sha256"],
            input_name=data["input"]["name"],
            mean=float(data["preprocessing"]["mean"]),
            std=float(data["preprocessing"]["std"]),
            temperature=float(data["calibration"]["temperature"]),
            pair_output=data["pair_output"]["name"] if "pair_output" in data else None,
            data=data,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc!r})") from None
    if not onnx_path.exists():
        raise ModelError(f"{onnx_path}: model file named by {card_path.name} is missing")
    actual = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    if actual != card.sha256:
        raise ModelError(
            f"{onnx_path}: sha256 {actual[:12]}… does not match its card "
            f"({card.sha256[:12]}…); the file is corrupt or was replaced"
        )
    return card


class OnnxDigitClassifier:
    """The shipped CNN run by ONNX Runtime: one session per process, batched inference."""

    def __init__(self, card: ModelCard, threads: int = 1, batch_size: int = 256):
        import onnxruntime as ort  # imported here so records-only users never pay for it

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self._session = ort.InferenceSession(
                str(card.onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{card.onnx_path}: onnxruntime cannot load it ({exc})") from None
        self.card = card
        self.version = card.version
        self.batch_size = batch_size
        self._outputs = [card.data["output"]["name"]]
        if card.pair_output:
            self._outputs.append(card.pair_output)
        missing = set(self._outputs) - {o.name for o in self._session.get_outputs()}
        if missing:
            raise ModelError(f"{card.onnx_path}: has no output {sorted(missing)[0]!r}, "
                             f"which its card names")

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """N x 28 x 28 uint8 crops -> N x 10 raw logits (before calibration)."""
        return self._run(crops)[0]

    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw digit logits (N x 10) and, if the model has a pair judge, its N logits."""
        crops = np.asarray(crops)
        if crops.ndim != 3 or crops.shape[1:] != (28, 28):
            raise ValueError(f"expected N x 28 x 28 crops, got {crops.shape}")
        scaled = (crops.astype(np.float32) / 255.0 - self.card.mean) / self.card.std
        batch = scaled[:, None, :, :]
        feed = self.card.input_name
        parts = [self._session.run(self._outputs, {feed: batch[i:i + self.batch_size]})
                 for i in range(0, len(batch), self.batch_size)]
        if not parts:
            return np.zeros((0, 10), np.float32), (
                np.zeros(0, np.float32) if self.card.pair_output else None)
        logits = np.concatenate([p[0] for p in parts])
        pairs = np.concatenate([p[1] for p in parts]) if self.card.pair_output else None
        return logits, pairs

    def probabilities_and_pairs(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated probabilities and each crop's chance of holding two touching digits.

        The chances are 0 where the model has no pair judge. One pass over the crops.
        """
        logits, pairs = self._run(crops)
        if pairs is None:
            return softmax(logits, self.card.temperature), np.zeros(len(logits))
        return softmax(logits, self.card.temperature), 1.0 / (1.0 + np.exp(-pairs.astype(float)))

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """N x 28 x 28 uint8 crops -> N x 10 calibrated probabilities.

        One pass per crop. Averaging over 1-pixel shifts, or with a thicker or a thinner
        stroke, was tried: on 17,060 digits cut from envelopes, 131 errors became 128,
        130 and 135, and fewer right digits reached 0.99, at two to five times the cost.
        Averaging with the three larger teacher networks 1.2.0 was distilled from makes
        fewer errors (108) but ranks no better where acceptance is decided: 16,334 right
        digits come before the 10th error by confidence, against 16,355 for this model
        alone (the teachers alone: 16,337).
        """
        return softmax(self.logits(crops), self.card.temperature)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, computed stably in float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def load_classifier(path: Path | None = None, threads: int = 1) -> OnnxDigitClassifier:
    """The verified classifier for a card, model or folder (default: the shipped model)."""
    return OnnxDigitClassifier(load_card(path or default_model_path()), threads=threads)


def to_predictions(probabilities: np.ndarray, boxes: Sequence[Box]) -> list[DigitPrediction]:
    """One DigitPrediction per row: label, its probability and the runner-up."""
    predictions = []
    for probs, box in zip(probabilities, boxes, strict=True):
        second, first = np.argsort(probs)[-2:]
        predictions.append(
            DigitPrediction(
                box=tuple(int(v) for v in box),
                label=int(first),
                probability=float(probs[first]),
                runner_up=int(second),
                runner_up_probability=float(probs[second]),
                probabilities=tuple(float(p) for p in probs),
            )
        )
    return predictions
