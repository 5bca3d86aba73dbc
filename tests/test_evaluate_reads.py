"""pipelines/evaluate_reads.py on a tiny generated set, through the real reader and model."""

import subprocess
import sys

from pipelines.synth_envelopes import main as synth_main


def test_evaluation_prints_its_tables_for_a_generated_set(tmp_path, repo_root):
    assert synth_main([str(tmp_path), "--count", "3", "--seed", "5",
                       "--conventions", "fr,cn,none", "--conditions", "scan"]) == 0
    result = subprocess.run(
        [sys.executable, str(repo_root / "pipelines" / "evaluate_reads.py"), str(tmp_path),
         "--workers", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("3 images from")
    for heading in ("by convention", "by condition", "wrong reads by kind", "threshold sweep",
                    "calibration"):
        assert heading in out
    # The accepted share among coded envelopes (fr, cn) is shown apart from the `none` one.
    assert any(line.split()[:4] == ["with", "a", "code", "2"] for line in out.splitlines())
    # One row per convention generated, each with n = 1.
    for convention in ("fr", "cn", "none"):
        assert any(line.split()[:2] == [convention, "1"] for line in out.splitlines())


def test_a_saved_run_lists_the_reads_a_change_made_better_or_worse(tmp_path, capsys):
    from pipelines.evaluate_reads import Outcome, compare, load, save

    def outcome(file, code, status, confidence=0.99):
        return Outcome(file, "fr", "scan", "69003", code, confidence, status, "",
                       status == "accepted")

    before = [outcome("a.png", "69008", "accepted"), outcome("b.png", "69003", "needs_review"),
              outcome("c.png", "69003", "accepted")]
    save(before, tmp_path / "run.csv")
    assert list(load(tmp_path / "run.csv").values()) == before
    after = [outcome("a.png", "69003", "accepted"), outcome("b.png", "6903", "needs_review"),
             outcome("c.png", "69003", "accepted"), outcome("d.png", "69003", "accepted", 0.5)]
    before.append(outcome("d.png", "", "failed", 0.0))
    # The same code read more surely, now above the threshold: a change too.
    before.append(outcome("e.png", "69003", "accepted", 0.96))
    after.append(outcome("e.png", "69003", "accepted", 0.98))
    save(before, tmp_path / "run.csv")
    compare(after, load(tmp_path / "run.csv"), 0.97)
    out = capsys.readouterr().out
    assert "4 reads changed, 3 better, 1 worse" in out
    # Runs are read with threshold 0; a change is shown with the statuses at the report's.
    assert "d.png expected 69003: - failed (0.00) -> 69003 needs_review (0.50)" in out
    assert "better a.png expected 69003: 69008 accepted (0.99) -> 69003 accepted" in " ".join(
        out.split())
    assert "c.png" not in out


def test_a_set_drawn_from_mnist_is_scored_against_the_classifier_alone(tmp_path, repo_root,
                                                                       mnist_dir):
    assert synth_main([str(tmp_path), "--count", "3", "--seed", "5", "--digits", "mnist-test",
                       "--mnist", str(mnist_dir), "--conventions", "fr,none",
                       "--conditions", "scan"]) == 0
    result = subprocess.run(
        [sys.executable, str(repo_root / "pipelines" / "evaluate_reads.py"), str(tmp_path),
         "--workers", "1", "--mnist", str(mnist_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Two fr envelopes carry a code; the none one is left out of the ceiling.
    start = lines.index("the classifier alone on the same clean MNIST digits "
                        "(2 envelopes with a code)")
    assert lines[start + 2].startswith("classifier alone")
    assert lines[start + 3].startswith("this reader")
    assert lines[start + 4].startswith("of the ")


def test_the_classifier_alone_judges_the_named_mnist_images(mnist_dir):
    from pipelines.ceiling import classifier_alone
    from pipelines.mnist import load_split
    from postread.classify import load_classifier

    _, labels = load_split(mnist_dir, "test")
    code = "".join(str(labels[i]) for i in (0, 1, 2))
    rows = [{"file": "a.png", "code": code, "digit_sources": "test:0;test:1;test:2"},
            {"file": "b.png", "code": "", "digit_sources": ""},
            {"file": "c.png", "code": "12345", "digit_sources": ""}]  # procedural digits
    alone = classifier_alone(rows, load_classifier(), mnist_dir)
    assert list(alone) == ["a.png"]
    assert alone["a.png"].right and 0.97 < alone["a.png"].confidence <= 1.0
    assert classifier_alone(rows, load_classifier(), None) == {}


def test_calibration_sets_each_bands_confidence_beside_its_share_right():
    from pipelines.evaluate_reads import Outcome, calibration

    def outcome(code, confidence, clean=True):
        return Outcome("a.png", "fr", "scan", "69003", code, confidence, "accepted", "", clean)

    outcomes = [outcome("69003", 1.0), outcome("69003", 0.999), outcome("69008", 0.996),
                outcome("69003", 0.96), outcome("69003", 0.955),
                outcome("69008", 0.999, clean=False),  # flagged: the confidence does not decide
                outcome("", 0.0)]                      # nothing read
    assert calibration(outcomes) == [
        (0.95, 0.97, 2, (0.96 + 0.955) / 2, 1.0),
        (0.995, 1.0, 3, (1.0 + 0.999 + 0.996) / 3, 2 / 3)]


def test_each_wrong_read_is_named_by_the_kind_of_error_that_made_it(capsys):
    from pipelines.evaluate_reads import Outcome, error_kind, report_errors

    def outcome(expected, code, condition="scan", confidence=0.5):
        return Outcome("a.png", "us", condition, expected, code, confidence, "needs_review",
                       "", True)

    kinds = {
        ("69003", "69003"): None,
        ("", ""): None,
        ("69003", "69008"): "one digit misread",
        ("69003", "96003"): "2+ digits misread",
        ("214340", "24340"): "a digit lost",
        ("214340", "21340"): "a digit lost",
        ("1803", "18073"): "a digit added",
        ("69003", ""): "no code read",
        ("", "1627"): "a code where there is none",
        ("69003", "6903"): "a digit lost",
        ("69003", "12"): "another number",
        ("69003", "1234"): "another number",        # one digit shorter, but not by a drop
        ("5175", "20900"): "another number",
    }
    for (expected, code), kind in kinds.items():
        assert error_kind(outcome(expected, code)) == kind, (expected, code)

    report_errors([outcome("69003", "69008", "messy", 0.995), outcome("69003", "69009", "messy"),
                   outcome("69003", "69008", "photo"), outcome("69003", "", "lowres"),
                   outcome("69003", "69003")], 0.99)
    lines = capsys.readouterr().out.splitlines()
    assert "wrong reads by kind (4 of 5)" in lines
    # Three misread digits, one of them accepted; most under messy, then photo.
    assert next(line for line in lines if line.startswith("one digit misread")).split() == [
        "one", "digit", "misread", "3", "1", "messy", "2,", "photo", "1"]
    assert next(line for line in lines if line.startswith("no code read")).split()[3:] == [
        "1", "0", "lowres", "1"]
    assert not any(line.startswith("a digit lost") for line in lines)
