"""Export a trained checkpoint to one self-contained ONNX file plus its JSON card, proving parity.

    python pipelines/export.py runs/digits.pt --version 1.0.0 --out models/
    python pipelines/export.py runs/digits.pt --pairs runs/pairs.pt --version 1.3.0

Writes ``models/digits-<version>-<sha8>.onnx`` and ``.json``. With ``--pairs`` the graph
also holds the pair judge (``train_pairs.py``) and gives a second output. The export fails
unless torch and onnxruntime agree on the same batches of size 1 and 7 (max |logit diff|
<= 1e-4 on every output) and the graph's batch dimension is symbolic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.model import (  # noqa: E402
    ARCHITECTURE,
    PAIR_ARCHITECTURE,
    DigitNet,
    DigitsAndPairs,
    load_network,
)

OPSET = 18
INPUT_NAME, OUTPUT_NAME, PAIR_OUTPUT_NAME = "images", "logits", "pair_logits"
PARITY_TOLERANCE = 1e-4


class ExportError(Exception):
    """The exported graph is not fit to ship."""


def load_model(checkpoint: dict) -> DigitNet:
    """The evaluation-mode network from a checkpoint dict; only a DigitNet ships."""
    # Every checkpoint train.py writes names its architecture (load_network builds from it)
    if checkpoint["architecture"] != ARCHITECTURE:
        raise ExportError(f"a {checkpoint['architecture']} does not ship: only a DigitNet "
                          "is fast enough for the reader (distil it into one, train.py --teacher)")
    return load_network(checkpoint).eval()


def load_pairs(checkpoint: dict, digits: DigitNet, scaling: tuple[float, float]
               ) -> DigitsAndPairs:
    """The digit model and the pair judge of ``checkpoint`` as one evaluation-mode graph."""
    if checkpoint["architecture"] != PAIR_ARCHITECTURE:
        raise ExportError(f"--pairs needs a pair judge (train_pairs.py), not a "
                          f"{checkpoint['architecture']}")
    if (checkpoint["mean"], checkpoint["std"]) != scaling:
        raise ExportError("the pair judge was trained on another pixel scaling than the digits")
    return DigitsAndPairs(digits, load_network(checkpoint)).eval()


def pair_card(checkpoint: dict, graph: DigitsAndPairs) -> dict:
    """The card's account of the pair judge's output."""
    return {
        "name": PAIR_OUTPUT_NAME, "shape": ["batch"], "dtype": "float32",
        "meaning": "logit that the crop holds two touching digits rather than one; "
                   "probability = sigmoid(logit)",
        "architecture": checkpoint["architecture"],
        "parameters": sum(p.numel() for p in graph.pairs.parameters()),
        "held_out": checkpoint["held_out"],
        "training": checkpoint["recipe"],
    }


def output_names(model: torch.nn.Module) -> list[str]:
    """The graph's outputs: the digit logits, and the pair logits when the judge rides along."""
    return [OUTPUT_NAME, PAIR_OUTPUT_NAME] if isinstance(model, DigitsAndPairs) else [OUTPUT_NAME]


def export_onnx(model: torch.nn.Module, path: Path) -> None:
    """Write the graph with a symbolic batch dimension, weights inside the one file."""
    example = torch.zeros(2, 1, 28, 28)  # batch of 2 so the exporter cannot fold it to 1
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT_NAME],
        output_names=output_names(model),
        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    program.save(str(path), external_data=False)


def check_graph(path: Path) -> None:
    """The file is self-contained, valid, and its batch dimension is symbolic."""
    graph_model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(graph_model, full_check=True)
    for initializer in graph_model.graph.initializer:
        if initializer.data_location == onnx.TensorProto.EXTERNAL:
            raise ExportError(f"{initializer.name} is stored outside {path.name}")
    first_dim = graph_model.graph.input[0].type.tensor_type.shape.dim[0]
    if not first_dim.dim_param or first_dim.HasField("dim_value"):
        raise ExportError(f"batch dimension is fixed ({first_dim}), expected a symbolic one")


def check_parity(model: torch.nn.Module, path: Path, seed: int = 0) -> float:
    """Max |logit difference| between torch and onnxruntime on batches of 1 and 7."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for size in (1, 7):
        batch = rng.normal(0.0, 1.0, (size, 1, 28, 28)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(batch))
        expected = expected if isinstance(expected, tuple) else (expected,)
        actual = session.run(None, {INPUT_NAME: batch})
        for want, got in zip(expected, actual, strict=True):
            worst = max(worst, float(np.abs(want.numpy() - got).max()))
    if worst > PARITY_TOLERANCE:
        raise ExportError(f"torch and onnxruntime disagree: max |diff| {worst:.2e}")
    return worst


def build_card(checkpoint: dict, model: DigitNet, version: str, onnx_name: str,
               sha256: str, parity: float, pairs: dict | None = None) -> dict:
    """The JSON card: everything a reader needs to feed the model and trust it."""
    card = {
        "name": "digits",
        "version": version,
        "file": onnx_name,
        "sha256": sha256,
        "opset": OPSET,
        "input": {"name": INPUT_NAME, "shape": ["batch", 1, 28, 28], "dtype": "float32",
                  "layout": "NCHW"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", 10], "dtype": "float32",
                   "meaning": "uncalibrated logits; probabilities = softmax(logits / temperature)"},
        "preprocessing": {
            "size": [28, 28],
            "polarity": "white digit on black (0 = background, 255 = full ink)",
            "normalisation": "MNIST-style: ink bounding box scaled to fit 20x20 keeping its "
                             "aspect ratio, placed in 28x28 so its centre of mass is central",
            "scale": "x = (pixel / 255 - mean) / std",
            "mean": checkpoint["mean"],
            "std": checkpoint["std"],
        },
        "labels": [str(d) for d in range(10)],
        "calibration": {"method": "temperature scaling", "temperature": checkpoint["temperature"],
                        "fitted_on": "validation split (held out of the 60k training images)"},
        "architecture": checkpoint["architecture"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {**checkpoint["recipe"], "val_accuracy": checkpoint["val_accuracy"],
                     "history": checkpoint["history"]},
        "export": {"torch_version": torch.__version__, "onnx_version": onnx.__version__,
                   "parity_max_abs_diff": parity, "parity_batches": [1, 7]},
        "metrics": {},
    }
    if pairs is not None:
        card["pair_output"] = pairs
    return card


def export(checkpoint_path: Path, version: str, out_dir: Path,
           pairs_path: Path | None = None) -> Path:
    """Export, check, and write model + card; returns the card's path."""
    checkpoint = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    model = load_model(checkpoint)
    graph: torch.nn.Module = model
    pairs = None
    if pairs_path is not None:
        pair_checkpoint = torch.load(pairs_path, weights_only=False, map_location="cpu")
        graph = load_pairs(pair_checkpoint, model, (checkpoint["mean"], checkpoint["std"]))
        pairs = pair_card(pair_checkpoint, graph)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model.onnx"
        export_onnx(graph, staged)
        check_graph(staged)
        parity = check_parity(graph, staged)
        data = staged.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    onnx_path = out_dir / f"digits-{version}-{sha256[:8]}.onnx"
    onnx_path.write_bytes(data)
    card = build_card(checkpoint, model, version, onnx_path.name, sha256, parity, pairs)
    card_path = onnx_path.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {onnx_path} and {card_path.name} (parity max |diff| {parity:.2e})")
    return card_path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by train.py")
    parser.add_argument("--version", default="1.0.0", help="model version for name and card")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    parser.add_argument("--pairs", type=Path,
                        help="pair judge written by train_pairs.py, shipped in the same graph")
    args = parser.parse_args(argv)
    try:
        export(args.checkpoint, args.version, args.out, args.pairs)
    except ExportError as exc:
        print(f"error: export refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
