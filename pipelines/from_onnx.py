"""Turn a shipped model back into training checkpoints: fine-tune what ships, not a lost file.

    python pipelines/from_onnx.py models/digits-1.3.0-5216555e.json --out runs/shipped

Writes ``OUT/digits.pt`` (the DigitNet, for ``train.py --init``) and, when the graph holds
a pair judge, ``OUT/pairs.pt`` (for ``export.py --pairs``), each checked to give the ONNX
model's own outputs.

The export folds every batch norm into the layer before it (weights ``W`` and a
``W_bias``), so the norms' statistics are gone. They are put back so that the network
answers exactly as the graph in evaluation mode and nearly so in training mode: each norm
gets its layer's output mean and variance over some MNIST training digits as running
statistics, a scale that undoes them and the folded bias as its shift. With zero
statistics instead, training mode would normalise activations the graph never
normalised, and a fine-tune would start far from the shipped model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import mnist  # noqa: E402
from pipelines.export import ExportError, check_parity  # noqa: E402
from pipelines.model import (  # noqa: E402
    ARCHITECTURE,
    PAIR_ARCHITECTURE,
    DigitNet,
    DigitsAndPairs,
    PairNet,
)
from pipelines.train import MEAN, STD, normalise, to_input  # noqa: E402

STATISTICS_IMAGES = 2000
"""MNIST training digits whose activations give each batch norm its running statistics."""


class UnpackError(Exception):
    """The graph does not hold the network its card names."""


def folded_weights(onnx_path: Path) -> dict[str, np.ndarray]:
    """The graph's named weights (``prefix.layer.weight`` and the folded ``..._bias``)."""
    graph = onnx.load(str(onnx_path))
    return {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}


def unfold(network: nn.Module, weights: dict[str, np.ndarray], prefix: str,
           inputs: torch.Tensor) -> None:
    """Load ``weights`` into ``network``, putting back each batch norm that was folded."""
    state = {}
    norms = []  # (layer name, norm name) for every folded pair
    modules = dict(network.named_modules())
    for name, module in modules.items():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            key = f"{prefix}{name}.weight"
            if key not in weights:
                raise UnpackError(f"the graph has no {key}")
            state[f"{name}.weight"] = torch.from_numpy(weights[key].copy())
            if f"{key}_bias" in weights:
                parent, index = name.rsplit(".", 1)
                norm = f"{parent}.{int(index) + 1}"
                if not isinstance(modules.get(norm), nn.modules.batchnorm._BatchNorm):
                    raise UnpackError(f"{key} was folded, but no batch norm follows it")
                norms.append((name, norm))
            elif module.bias is not None:
                state[f"{name}.bias"] = torch.from_numpy(weights[f"{prefix}{name}.bias"].copy())
    network.load_state_dict(state, strict=False)
    outputs = {}
    hooks = [modules[layer].register_forward_hook(
        lambda _m, _i, out, layer=layer: outputs.__setitem__(layer, out.detach()))
        for layer, _ in norms]
    for layer, norm in norms:  # identity norms until their layer's statistics are known
        _set_norm(modules[norm], torch.zeros(modules[norm].num_features),
                  torch.ones(modules[norm].num_features), weights[f"{prefix}{layer}.weight_bias"])
    network.eval()
    with torch.no_grad():
        network(inputs)
    for hook in hooks:
        hook.remove()
    for layer, norm in norms:
        dims = [0, 2, 3] if outputs[layer].dim() == 4 else [0]
        mean, var = outputs[layer].mean(dims), outputs[layer].var(dims, unbiased=False)
        _set_norm(modules[norm], mean, var, weights[f"{prefix}{layer}.weight_bias"])


def _set_norm(norm: nn.modules.batchnorm._BatchNorm, mean: torch.Tensor, var: torch.Tensor,
              bias: np.ndarray) -> None:
    """A norm that adds ``bias`` and nothing else in evaluation mode, whatever its statistics."""
    with torch.no_grad():
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
        norm.weight.copy_(torch.sqrt(var + norm.eps))
        norm.bias.copy_(mean + torch.from_numpy(bias.copy()))


def unpack(card_path: Path, mnist_dir: Path) -> tuple[dict, dict | None]:
    """The digit checkpoint and (if the graph has one) the pair judge's, from a model card."""
    card = json.loads(card_path.read_text())
    onnx_path = card_path.parent / card["file"]
    if card["architecture"] != ARCHITECTURE:
        raise UnpackError(f"{card_path}: a {card['architecture']}, not this code's DigitNet")
    images, _ = mnist.load_split(mnist_dir, "train")
    pick = np.random.default_rng(0).choice(len(images), STATISTICS_IMAGES, replace=False)
    mean, std = card["preprocessing"]["mean"], card["preprocessing"]["std"]
    if (mean, std) != (MEAN, STD):
        raise UnpackError(f"{card_path}: pixels scaled by mean {mean}, std {std}; "
                          f"train.py feeds {MEAN}, {STD}")
    inputs = normalise(to_input(images[pick]))
    weights = folded_weights(onnx_path)
    pair_output = card.get("pair_output")
    digits = DigitNet()
    unfold(digits, weights, "digits." if pair_output else "", inputs)
    graph: nn.Module = digits
    pairs = None
    if pair_output:
        if pair_output["architecture"] != PAIR_ARCHITECTURE:
            raise UnpackError(f"{card_path}: a {pair_output['architecture']} judge, not PairNet")
        pairs = PairNet()
        unfold(pairs, weights, "pairs.", inputs)
        graph = DigitsAndPairs(digits, pairs)
    try:
        worst = check_parity(graph.eval(), onnx_path)  # the export's own check, every output
    except ExportError as e:
        raise UnpackError(f"{card_path}: the unpacked network does not answer as the graph: "
                          f"{e}") from None
    print(f"unpacked {onnx_path.name}: max |difference| from the graph {worst:.2g}")
    # The card's training section is the checkpoint's recipe plus its validation record.
    recipe = dict(card["training"])
    val_accuracy, history = recipe.pop("val_accuracy", None), recipe.pop("history", [])
    digit_checkpoint = {"state_dict": digits.state_dict(), "architecture": ARCHITECTURE,
                        "mean": mean, "std": std, "temperature": card["calibration"]["temperature"],
                        "val_accuracy": val_accuracy, "history": history,
                        "recipe": recipe | {"unpacked_from": card["file"]}}
    pair_checkpoint = None if pairs is None else {
        "state_dict": pairs.state_dict(), "architecture": PAIR_ARCHITECTURE,
        "mean": mean, "std": std, "held_out": pair_output["held_out"],
        "recipe": pair_output["training"] | {"unpacked_from": card["file"]}}
    return digit_checkpoint, pair_checkpoint


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", type=Path, help="the model's JSON card (its .onnx beside it)")
    parser.add_argument("--out", type=Path, required=True, help="folder for digits.pt, pairs.pt")
    parser.add_argument("--mnist", type=Path, default=mnist.default_dir(),
                        help="MNIST folder (default: POSTREAD_MNIST_DIR or ../shared/data/mnist)")
    args = parser.parse_args(argv)
    if args.mnist is None:
        print("error: no MNIST folder: pass --mnist DIR or set POSTREAD_MNIST_DIR", file=sys.stderr)
        return 2
    try:
        digits, pairs = unpack(args.card, args.mnist)
    except (UnpackError, mnist.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(digits, args.out / "digits.pt")
    print(f"saved {args.out / 'digits.pt'}")
    if pairs is not None:
        torch.save(pairs, args.out / "pairs.pt")
        print(f"saved {args.out / 'pairs.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
