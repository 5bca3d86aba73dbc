"""Evaluate a shipped digit model: MNIST test accuracy, confusion, calibration, throughput.

    python pipelines/evaluate.py [models/] [--mnist DIR] [--extra DIR ...] [--no-write]

Runs the ONNX model exactly as postread does (through ``postread.classify``), prints the
figures and writes them into the model card's ``metrics`` (the card's sha256 covers the
.onnx only, so updating the metrics does not invalidate it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import mnist  # noqa: E402
from pipelines.mnist import load_extra  # noqa: E402
from postread.classify import OnnxDigitClassifier, load_card, softmax  # noqa: E402

ECE_BINS = 15


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = ECE_BINS) -> float:
    """ECE: the bin-weighted gap between confidence and accuracy (equal-width bins)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """10 x 10 counts: rows are true digits, columns predicted ones."""
    matrix = np.zeros((10, 10), dtype=int)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def throughput(card_path: Path, batch: int, seconds: float = 2.0) -> float:
    """Digits per second through onnxruntime with one thread at a given batch size."""
    classifier = OnnxDigitClassifier(load_card(card_path), threads=1, batch_size=batch)
    crops = np.random.default_rng(0).integers(0, 256, (batch, 28, 28), dtype=np.uint8)
    classifier.probabilities(crops)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        classifier.probabilities(crops)
        done += batch
    return done / (time.perf_counter() - started)


def evaluate_set(classifier: OnnxDigitClassifier, images: np.ndarray,
                 labels: np.ndarray) -> dict:
    """Accuracy, NLL and ECE before/after temperature scaling on one labelled set."""
    logits = classifier.logits(images)
    raw, calibrated = softmax(logits), softmax(logits, classifier.card.temperature)
    predicted = calibrated.argmax(axis=1)
    index = np.arange(len(labels))
    return {
        "count": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "errors": int((predicted != labels).sum()),
        "nll_before": float(-np.log(raw[index, labels] + 1e-12).mean()),
        "nll_after": float(-np.log(calibrated[index, labels] + 1e-12).mean()),
        "ece_before": expected_calibration_error(raw, labels),
        "ece_after": expected_calibration_error(calibrated, labels),
        "confusion": confusion_matrix(predicted, labels).tolist(),
    }


def format_report(metrics: dict) -> str:
    """The printed report: a metrics table and the confusion matrix."""
    test = metrics["mnist_test"]
    lines = [
        f"model: {metrics['model']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| MNIST test accuracy | {test['accuracy']:.2%} ({test['errors']} errors "
        f"of {test['count']}) |",
        f"| ECE ({ECE_BINS} bins) before calibration | {test['ece_before']:.3%} |",
        f"| ECE ({ECE_BINS} bins) after calibration (T={metrics['temperature']:.3f}) "
        f"| {test['ece_after']:.3%} |",
        f"| NLL before / after | {test['nll_before']:.4f} / {test['nll_after']:.4f} |",
        f"| onnxruntime, 1 thread, batch 1 | {metrics['digits_per_s_batch1']:,.0f} digits/s |",
        f"| onnxruntime, 1 thread, batch 256 | {metrics['digits_per_s_batch256']:,.0f} "
        "digits/s |",
    ]
    for name, extra in metrics.get("extra", {}).items():
        lines.append(f"| accuracy on {name} ({extra['count']} digits) | {extra['accuracy']:.2%} |")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted):", "",
              "true  " + " ".join(f"{d:>5}" for d in range(10))]
    lines += [f"{d:>4}  " + " ".join(f"{n:>5}" for n in row)
              for d, row in enumerate(test["confusion"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, nargs="?", default=Path("models"),
                        help="model card, .onnx, or folder (default: models/)")
    parser.add_argument("--mnist", type=Path, default=mnist.default_dir())
    parser.add_argument("--extra", type=Path, action="append", default=[],
                        help="folder of reviewed digits (labels.csv) to score separately")
    parser.add_argument("--no-write", action="store_true", help="do not update the card")
    parser.add_argument("--report", type=Path, help="also write the printed report here")
    args = parser.parse_args(argv)

    card = load_card(args.model)
    classifier = OnnxDigitClassifier(card, threads=1)
    images, labels = mnist.load_split(args.mnist, "test")
    metrics = {
        "model": card.version,
        "temperature": card.temperature,
        "mnist_test": evaluate_set(classifier, images, labels),
        "digits_per_s_batch1": throughput(card.path, 1),
        "digits_per_s_batch256": throughput(card.path, 256),
        "extra": {str(folder): evaluate_set(classifier, *load_extra(folder))
                  for folder in args.extra},
    }
    report = format_report(metrics)
    print(report)
    if args.report:
        args.report.write_text(report + "\n")
    if not args.no_write:
        data = json.loads(card.path.read_text())
        data["metrics"] = {k: v for k, v in metrics.items() if k != "model"}
        card.path.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
