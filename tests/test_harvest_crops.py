"""pipelines/harvest_crops.py: crops cut by the real reader, labelled by where the truth is."""

from dataclasses import replace

import numpy as np
from scripts import run_script

from pipelines.harvest_crops import RecordingClassifier, harvest
from pipelines.synth_envelopes import make_envelope
from postread.classify import load_classifier


def test_each_true_digit_gives_the_crop_the_classifier_saw_with_its_true_label(tmp_path):
    recorder = RecordingClassifier(load_classifier())
    env = make_envelope("40527", "fr", seed=3, condition="scan", distractors=False)
    crops = harvest(env, tmp_path, recorder)
    assert [label for _, label in crops] == [4, 0, 5, 2, 7]
    pixels = np.stack([crop for crop, _ in crops])
    assert pixels.shape == (5, 28, 28) and pixels.dtype == np.uint8
    # Each crop shows its label's digit: the model reads the crops in the code's order.
    assert list(recorder.inner.probabilities(pixels).argmax(axis=1)) == [4, 0, 5, 2, 7]


def test_a_read_that_does_not_cut_every_true_digit_once_gives_nothing(tmp_path):
    recorder = RecordingClassifier(load_classifier())
    env = make_envelope("40527", "fr", seed=3, condition="scan", distractors=False)
    # Truth says one digit more than the reader can cut: no crop's label is known for sure.
    assert harvest(replace(env, code="405271"), tmp_path, recorder) == []
    # Truth boxes elsewhere on the envelope (the reader cut another field): nothing either.
    far = tuple((x, y + 5 * h, w, h) for x, y, w, h in env.digit_boxes)
    assert harvest(replace(env, digit_boxes=far), tmp_path, recorder) == []


def test_a_missing_mnist_folder_is_one_clear_line_not_a_hung_pool(tmp_path):
    run = run_script("harvest_crops.py", tmp_path / "out", "--count", 2, "--mnist", tmp_path,
                     timeout=120)
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "MNIST file is missing" in run.stderr


def test_the_reader_harvests_with_the_pair_judge_it_reads_with(tmp_path):
    # A messy envelope (procedural digits) whose touching pair only the judge gets cut in
    # two: read without it, a digit is lost and the envelope gives no crops.
    env = make_envelope(None, "digits", 55, condition="messy")
    crops = harvest(env, tmp_path, RecordingClassifier(load_classifier()))
    assert "".join(str(label) for _, label in crops) == env.code == "64638"


def test_harvest_draws_only_the_conditions_asked_for(tmp_path):
    run = run_script("harvest_crops.py", tmp_path / "out", "--conditions", "lowres,blurry",
                     timeout=120)
    assert run.returncode == 2
    assert "--conditions: unknown blurry" in run.stderr
