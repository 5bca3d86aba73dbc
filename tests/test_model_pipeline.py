"""Training dry run, ONNX export with parity, the card, and the classifier that reads it."""

import json

import cv2
import numpy as np
import onnx
import pytest
import torch
from scripts import run_script, train_dry_run

from pipelines import export as export_mod
from pipelines.evaluate import expected_calibration_error
from pipelines.model import ARCHITECTURE
from pipelines.pairs import touching_pair, touching_pairs
from postread.classify import OnnxDigitClassifier, load_card, load_classifier
from postread.errors import ModelError


def test_dry_run_checkpoint_holds_the_recipe(dry_checkpoint):
    checkpoint = torch.load(dry_checkpoint, weights_only=False)
    recipe = checkpoint["recipe"]
    assert recipe["dry_run"] is True
    assert recipe["command"].startswith("train.py --dry-run --mnist ")
    assert recipe["pairs_share"] == 0.1
    assert recipe["torch_version"] == torch.__version__
    assert set(recipe["data_md5"]) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert checkpoint["temperature"] > 0


def test_touching_pairs_are_one_wide_mark_in_mnist_form(mnist_dir):
    from pipelines import mnist

    images, _ = mnist.load_split(mnist_dir, "test")
    crop = touching_pair(images[0], images[1], np.random.default_rng(0))  # a 7 and a 2
    assert crop.shape == (28, 28) and crop.dtype == np.uint8
    _, _, width, height = cv2.boundingRect((crop > 60).astype(np.uint8))
    assert width > 1.3 * height  # two digits side by side, fitted by their joint width
    batch = touching_pairs(images[:50], 8, np.random.default_rng(1))
    assert batch.shape == (8, 28, 28) and len({b.tobytes() for b in batch}) == 8


def test_a_fine_tune_must_hold_out_what_its_start_held_out(dry_checkpoint, mnist_dir):
    # The start (seed 1) was trained on images seed 2 would hold out for validation.
    result = train_dry_run(mnist_dir, "--init", dry_checkpoint, "--seed", 2,
                           "--out", dry_checkpoint.parent / "never.pt")
    assert result.returncode == 2
    assert "held out 5000 of the 60k training images, seed 1" in result.stderr
    assert "(use its seed)" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (dry_checkpoint.parent / "never.pt").exists()


@pytest.fixture(scope="module")
def dry_teacher(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    result = train_dry_run(mnist_dir, "--teacher-net", "--model-seed", 11, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_a_digitnet_distilled_from_teachers_records_them(dry_teacher, mnist_dir, tmp_path):
    out = tmp_path / "student.pt"
    result = train_dry_run(mnist_dir, "--teacher", dry_teacher, "--teacher", dry_teacher,
                           "--distill-temperature", 3, "--distill-weight", 0.8, "--out", out)
    assert result.returncode == 0, result.stderr
    student = torch.load(out, weights_only=False)
    teacher = torch.load(dry_teacher, weights_only=False)
    assert student["architecture"] == ARCHITECTURE != teacher["architecture"]
    assert student["recipe"]["teachers"] == [str(dry_teacher)] * 2
    assert student["recipe"]["distillation"] == {"temperature": 3.0, "weight": 0.8}
    assert teacher["recipe"]["model_seed"] == 11 and teacher["recipe"]["seed"] == 1
    export_mod.load_model(student)  # a DigitNet ships: no ExportError


def test_a_teacher_net_does_not_ship(dry_teacher, tmp_path):
    with pytest.raises(export_mod.ExportError, match="does not ship"):
        export_mod.export(dry_teacher, "0.0.1", tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_teacher_must_not_have_trained_on_the_validation_split(dry_teacher, mnist_dir,
                                                                 tmp_path):
    result = train_dry_run(mnist_dir, "--teacher", dry_teacher, "--seed", 2,
                           "--out", tmp_path / "never.pt")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: --teacher {dry_teacher} held out 5000 of the 60k")
    assert not (tmp_path / "never.pt").exists()


def test_distillation_loss_is_zero_only_at_the_teachers_average():
    from pipelines.train import distillation_loss

    inputs = torch.zeros(4, 1, 28, 28)
    first, second = torch.randn(4, 10), torch.randn(4, 10)
    teachers = [lambda _: first, lambda _: second]
    average = (first.softmax(1) + second.softmax(1)) / 2
    assert float(distillation_loss(average.log(), teachers, inputs, 1.0)) == pytest.approx(
        0.0, abs=1e-6)
    assert float(distillation_loss(first, teachers, inputs, 1.0)) > 1e-3


def test_weight_average_follows_the_model_and_copies_its_counters():
    from pipelines.model import DigitNet
    from pipelines.train import WeightAverage

    model = DigitNet()
    average = WeightAverage(model)
    start = average.module.head[-1].bias.detach().clone()
    with torch.no_grad():
        model.head[-1].bias.add_(1.0)
    model.train()(torch.randn(2, 1, 28, 28))  # batch norm counts a step
    average.update(model)
    # The first update weighs the model by 1 - 2/11 (the warm-up), the start by 2/11.
    assert torch.allclose(average.module.head[-1].bias, start + 9 / 11, atol=1e-6)
    assert int(average.module.features[1].num_batches_tracked) == 1


def test_train_reports_a_missing_mnist_folder_in_one_line(tmp_path):
    result = train_dry_run(tmp_path, "--out", tmp_path / "x.pt")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ")
    assert "train-images-idx3-ubyte.gz: MNIST file is missing" in result.stderr


def test_export_writes_one_self_contained_file_with_symbolic_batch(exported):
    onnx_path = exported.with_suffix(".onnx")
    sha8 = onnx_path.stem.split("-")[-1]
    assert onnx_path.name == f"digits-0.0.1-{sha8}.onnx"
    assert sorted(p.name for p in exported.parent.iterdir()) == [exported.name, onnx_path.name]
    graph = onnx.load(str(onnx_path))
    assert graph.opset_import[0].version >= 17
    dim = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.HasField("dim_value")


def test_card_describes_how_to_feed_the_model(exported):
    card = json.loads(exported.read_text())
    assert card["sha256"].startswith(exported.stem.split("-")[-1])
    assert card["input"]["shape"] == ["batch", 1, 28, 28]
    assert card["labels"] == [str(d) for d in range(10)]
    assert {"mean", "std", "size", "polarity"} <= set(card["preprocessing"])
    assert card["calibration"]["temperature"] > 0
    assert card["export"]["parity_max_abs_diff"] <= 1e-4
    assert card["parameters"] > 10_000
    assert card["training"]["seed"] == 1


def test_parity_check_catches_a_model_that_disagrees(dry_checkpoint, tmp_path):
    model = export_mod.load_model(torch.load(dry_checkpoint, weights_only=False))
    path = tmp_path / "m.onnx"
    export_mod.export_onnx(model, path)
    with torch.no_grad():
        model.head[-1].bias += 0.01  # torch now differs from the exported graph
    with pytest.raises(export_mod.ExportError, match="disagree"):
        export_mod.check_parity(model, path)


def test_flipped_byte_in_the_model_is_refused(exported):
    onnx_path = exported.with_suffix(".onnx")
    data = bytearray(onnx_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx_path.write_bytes(bytes(data))
    try:
        with pytest.raises(ModelError, match="does not match its card"):
            load_card(exported)
    finally:
        data[len(data) // 2] ^= 0x01
        onnx_path.write_bytes(bytes(data))
    load_card(exported)


def test_missing_model_and_card_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="no model card"):
        load_card(tmp_path)
    broken = tmp_path / "digits-9.9.9-deadbeef.json"
    broken.write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model card"):
        load_card(broken)


def test_shipped_model_matches_its_card_and_classifies_mnist(shipped_card, mnist_dir):
    from pipelines import mnist

    images, labels = mnist.load_split(mnist_dir, "test")
    classifier = load_classifier(shipped_card)
    probabilities = classifier.probabilities(images[:2000])
    assert probabilities.shape == (2000, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (probabilities.argmax(axis=1) == labels[:2000]).mean() > 0.99
    assert expected_calibration_error(probabilities, labels[:2000]) < 0.02


def test_batch_size_does_not_change_probabilities(shipped_card, mnist_dir):
    from pipelines import mnist

    images, _ = mnist.load_split(mnist_dir, "test")
    card = load_card(shipped_card)
    one_by_one = OnnxDigitClassifier(card, batch_size=1).probabilities(images[:33])
    batched = OnnxDigitClassifier(card, batch_size=256).probabilities(images[:33])
    odd = OnnxDigitClassifier(card, batch_size=7).probabilities(images[:33])
    np.testing.assert_allclose(one_by_one, batched, atol=1e-6, rtol=0)
    np.testing.assert_allclose(odd, batched, atol=1e-6, rtol=0)
    assert (one_by_one.argmax(1) == batched.argmax(1)).all()


def test_ece_of_perfectly_calibrated_predictions_is_zero():
    probabilities = np.array([[0.75, 0.25]] * 4)
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0)
    assert expected_calibration_error(probabilities, np.array([1, 1, 1, 1])) == pytest.approx(0.75)


@pytest.fixture(scope="module")
def dry_pairs(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("pairs") / "pairs.pt"
    result = run_script("train_pairs.py", "--dry-run", "--mnist", mnist_dir, "--threads", "1",
                        "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_the_pair_judge_ships_in_one_graph_with_the_digits(dry_checkpoint, dry_pairs, exported,
                                                           tmp_path, mnist_dir):
    from pipelines import mnist

    card_path = export_mod.export(dry_checkpoint, "0.0.2", tmp_path, pairs_path=dry_pairs)
    card = json.loads(card_path.read_text())
    assert card["pair_output"]["name"] == "pair_logits"
    assert {"pairs_above_0.5", "singles_above_0.5"} <= set(card["pair_output"]["held_out"])
    images, _ = mnist.load_split(mnist_dir, "test")
    crops = np.concatenate([images[:20], touching_pairs(images, 20, np.random.default_rng(1))])
    with_judge = load_classifier(card_path)
    probabilities, pairs = with_judge.probabilities_and_pairs(crops)
    assert pairs.shape == (40,) and ((pairs > 0) & (pairs < 1)).all()
    # The digits' answers are those of the same checkpoint exported without the judge.
    alone = load_classifier(exported)
    np.testing.assert_allclose(probabilities, alone.probabilities(crops), atol=1e-5)
    assert (alone.probabilities_and_pairs(crops)[1] == 0).all()


def test_only_a_pair_judge_rides_along(dry_checkpoint, tmp_path):
    with pytest.raises(export_mod.ExportError, match="needs a pair judge"):
        export_mod.export(dry_checkpoint, "0.0.3", tmp_path, pairs_path=dry_checkpoint)


def test_a_card_naming_an_output_its_model_lacks_is_refused(exported, tmp_path):
    card = json.loads(exported.read_text())
    card["pair_output"] = {"name": "pair_logits"}
    copy = tmp_path / exported.name
    copy.write_text(json.dumps(card))
    (tmp_path / card["file"]).write_bytes(exported.with_suffix(".onnx").read_bytes())
    with pytest.raises(ModelError, match="has no output 'pair_logits'"):
        load_classifier(copy)


def test_shipped_pair_judge_tells_touching_pairs_from_digits(shipped_card, mnist_dir):
    from pipelines import mnist

    images, _ = mnist.load_split(mnist_dir, "test")
    classifier = load_classifier(shipped_card)
    _, singles = classifier.probabilities_and_pairs(images[:2000])
    _, pairs = classifier.probabilities_and_pairs(
        touching_pairs(images, 500, np.random.default_rng(3)))
    assert (pairs > 0.5).mean() > 0.98
    assert (singles > 0.5).mean() < 0.01
