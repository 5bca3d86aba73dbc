"""A shipped model unpacks into checkpoints that answer as it does, fine-tune, and ship again."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipelines import export as export_mod
from pipelines import from_onnx
from pipelines.model import load_network
from pipelines.pairs import touching_pairs
from postread.classify import load_classifier


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory, repo_root, shipped_card, mnist_dir):
    """``from_onnx.py`` on the shipped card in a subprocess, as a person runs it."""
    out = tmp_path_factory.mktemp("unpacked")
    result = subprocess.run(
        [sys.executable, str(repo_root / "pipelines" / "from_onnx.py"), str(shipped_card),
         "--out", str(out), "--mnist", str(mnist_dir)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def crops(mnist_dir):
    from pipelines import mnist

    images, _ = mnist.load_split(mnist_dir, "test")
    return np.concatenate([images[:200], touching_pairs(images, 50, np.random.default_rng(2))])


def _answers(checkpoint: dict, crops: np.ndarray) -> np.ndarray:
    network = load_network(checkpoint).eval()
    inputs = (torch.from_numpy(crops).float() / 255 - checkpoint["mean"]) / checkpoint["std"]
    with torch.no_grad():
        return network(inputs[:, None]).numpy()


def test_the_shipped_model_unpacks_into_checkpoints_that_answer_as_it_does(
        unpacked, shipped_card, crops):
    shipped = load_classifier(shipped_card)
    digits = torch.load(unpacked / "digits.pt", weights_only=False)
    pairs = torch.load(unpacked / "pairs.pt", weights_only=False)
    np.testing.assert_allclose(_answers(digits, crops), shipped.logits(crops), atol=1e-4)
    _, chances = shipped.probabilities_and_pairs(crops)
    np.testing.assert_allclose(1 / (1 + np.exp(-_answers(pairs, crops).ravel())), chances,
                               atol=1e-5)
    card = json.loads(shipped_card.read_text())
    assert digits["temperature"] == card["calibration"]["temperature"]
    assert digits["recipe"]["unpacked_from"] == card["file"]
    assert digits["recipe"]["validation_split"] == card["training"]["validation_split"]


def test_training_mode_starts_near_the_shipped_answers(unpacked, crops):
    # The folded batch norms get back statistics that match their layers' outputs: with
    # zero means and unit variances a fine-tune's first batches would see another network.
    digits = torch.load(unpacked / "digits.pt", weights_only=False)
    network = load_network(digits)
    network.train()
    for module in network.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    inputs = (torch.from_numpy(crops[:200]).float() / 255 - digits["mean"]) / digits["std"]
    with torch.no_grad():
        in_training = network(inputs[:, None]).argmax(1).numpy()
    assert (in_training == _answers(digits, crops[:200]).argmax(1)).mean() > 0.98


def test_an_unpacked_model_fine_tunes_and_ships_again(unpacked, repo_root, mnist_dir, tmp_path,
                                                     shipped_card, crops):
    result = subprocess.run(
        [sys.executable, str(repo_root / "pipelines" / "train.py"), "--dry-run", "--mnist",
         str(mnist_dir), "--threads", "1", "--init", str(unpacked / "digits.pt"),
         "--out", str(tmp_path / "tuned.pt")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # Exported as it was unpacked, digits and judge, it reads as the shipped model.
    card = export_mod.export(unpacked / "digits.pt", "9.9.9", tmp_path,
                             pairs_path=unpacked / "pairs.pt")
    again, shipped = load_classifier(card), load_classifier(shipped_card)
    np.testing.assert_allclose(again.probabilities(crops), shipped.probabilities(crops),
                               atol=1e-5)


def test_a_model_without_a_pair_judge_unpacks_alone(tmp_path, repo_root, mnist_dir, crops):
    result = subprocess.run(
        [sys.executable, str(repo_root / "pipelines" / "train.py"), "--dry-run", "--mnist",
         str(mnist_dir), "--threads", "1", "--out", str(tmp_path / "dry.pt")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    card = export_mod.export(tmp_path / "dry.pt", "0.0.1", tmp_path / "models")
    digits, pairs = from_onnx.unpack(card, mnist_dir)
    assert pairs is None
    trained = torch.load(tmp_path / "dry.pt", weights_only=False)
    np.testing.assert_allclose(_answers(digits, crops), _answers(trained, crops), atol=1e-4)


def test_a_card_for_another_network_is_refused(shipped_card, tmp_path, mnist_dir):
    card = json.loads(shipped_card.read_text())
    card["architecture"] = "something else"
    copy = tmp_path / shipped_card.name
    copy.write_text(json.dumps(card))
    with pytest.raises(from_onnx.UnpackError, match="not this code's DigitNet"):
        from_onnx.unpack(copy, mnist_dir)
