"""A shipped model unpacks into checkpoints that answer as it does, fine-tune, and ship again."""

import json

import numpy as np
import pytest
import torch
from scripts import run_script, train_dry_run

from pipelines import export as export_mod
from pipelines import from_onnx
from pipelines.model import load_network
from pipelines.pairs import touching_pairs
from pipelines.train import logits_of, normalise, to_input
from postread.classify import load_classifier


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory, shipped_card, mnist_dir):
    """``from_onnx.py`` on the shipped card in a subprocess, as a person runs it."""
    out = tmp_path_factory.mktemp("unpacked")
    result = run_script("from_onnx.py", shipped_card, "--out", out, "--mnist", mnist_dir)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def crops(mnist_dir):
    from pipelines import mnist

    images, _ = mnist.load_split(mnist_dir, "test")
    return np.concatenate([images[:200], touching_pairs(images, 50, np.random.default_rng(2))])


def _answers(checkpoint: dict, crops: np.ndarray) -> np.ndarray:
    return logits_of(load_network(checkpoint), crops).numpy()


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
    # The folded batch norms get back statistics that match their layers' outputs, so a
    # fine-tune's first batches (normalised by their own statistics) see nearly the shipped
    # network: logits 0.56 apart on average here, against 1.94 with zero means and unit
    # variances (whose argmaxes still agree 99% of the time, so those are not compared).
    digits = torch.load(unpacked / "digits.pt", weights_only=False)
    network = load_network(digits)
    network.train()
    for module in network.modules():
        if isinstance(module, torch.nn.Dropout):
            module.eval()
    with torch.no_grad():
        in_training = network(normalise(to_input(crops[:200]))).numpy()
    assert np.abs(in_training - _answers(digits, crops[:200])).mean() < 1.0


def test_an_unpacked_model_fine_tunes_and_ships_again(unpacked, mnist_dir, tmp_path,
                                                     shipped_card, crops):
    result = train_dry_run(mnist_dir, "--init", unpacked / "digits.pt",
                           "--out", tmp_path / "tuned.pt")
    assert result.returncode == 0, result.stderr
    # Exported as it was unpacked, digits and judge, it reads as the shipped model.
    card = export_mod.export(unpacked / "digits.pt", "9.9.9", tmp_path,
                             pairs_path=unpacked / "pairs.pt")
    again, shipped = load_classifier(card), load_classifier(shipped_card)
    np.testing.assert_allclose(again.probabilities(crops), shipped.probabilities(crops),
                               atol=1e-5)


def test_a_model_without_a_pair_judge_unpacks_alone(dry_checkpoint, exported, mnist_dir, crops):
    digits, pairs = from_onnx.unpack(exported, mnist_dir)
    assert pairs is None
    trained = torch.load(dry_checkpoint, weights_only=False)
    np.testing.assert_allclose(_answers(digits, crops), _answers(trained, crops), atol=1e-4)


def test_a_card_for_another_network_is_refused(shipped_card, tmp_path, mnist_dir):
    card = json.loads(shipped_card.read_text())
    card["architecture"] = "something else"
    copy = tmp_path / shipped_card.name
    copy.write_text(json.dumps(card))
    with pytest.raises(from_onnx.UnpackError, match="not this code's DigitNet"):
        from_onnx.unpack(copy, mnist_dir)


def test_a_model_fed_other_pixel_scaling_is_refused(shipped_card, tmp_path, mnist_dir):
    # train.py feeds MNIST's mean and std: a fine-tune would see other inputs than the model.
    card = json.loads(shipped_card.read_text())
    card["preprocessing"]["mean"] = 0.5
    copy = tmp_path / shipped_card.name
    copy.write_text(json.dumps(card))
    with pytest.raises(from_onnx.UnpackError, match="pixels scaled by mean 0.5"):
        from_onnx.unpack(copy, mnist_dir)
