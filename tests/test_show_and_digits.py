"""``postread show`` (the annotated PNG) and ``postread export-digits`` (crops for training)."""

import csv
import io

import cv2
import numpy as np
import pytest
from review_db import Planned, build
from typer.testing import CliRunner

from pipelines.mnist import load_extra
from postread.classify import load_classifier
from postread.cli import app
from postread.digit_export import recut
from postread.field import locate
from postread.overlay import CANDIDATE, CHOSEN, DIGIT, banner_height, scale_for
from postread.segment import segment


def has_colour(image, x0, x1, y0, y1, colour):
    window = image[max(0, y0):y1, max(0, x0):x1].reshape(-1, 3)
    return bool(np.all(window == colour, axis=1).any())


@pytest.mark.parametrize("name", ["a.png", "c.png"])
def test_show_draws_fields_and_digits_where_they_are(built, db, tmp_path, name):
    envelope = built[1][name]
    out = tmp_path / "shown.png"
    result = CliRunner().invoke(app, ["show", name, "--db", db, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    shown = cv2.imread(str(out))
    height, width = envelope.image.shape[:2]
    k = scale_for(width, height)
    top = banner_height(width * k)
    assert k == 1 and shown.shape == (height * k + top, width * k, 3)
    assert not has_colour(envelope.image, 0, width, 0, height, DIGIT)  # magenta is ours
    for x, y, w, h in envelope.digit_boxes:
        middle = top + (y + h // 2) * k
        # each digit's box is outlined just outside its left and right edges
        assert has_colour(shown, x * k - 4, x * k, middle - 2, middle + 3, DIGIT)
        assert has_colour(shown, (x + w) * k, (x + w) * k + 4, middle - 2, middle + 3, DIGIT)
    fx, fy, fw, fh = envelope.field_box
    assert has_colour(shown, fx * k - 6, fx * k, top + fy * k, top + (fy + fh) * k, CHOSEN)
    assert has_colour(shown, 5, 20, top + 5, top + 45, CANDIDATE)  # the scripted rival field
    # nothing drawn far from the fields (the bottom right corner)
    assert not has_colour(shown, width - 60, width, top + height - 40, top + height, DIGIT)


def test_show_names_a_scan_by_id_and_shows_its_review(tmp_path):
    db, envelopes = build(tmp_path, (Planned("s.png", "hu", "1234", "1284", 0.2, 7),))
    runner = CliRunner()
    assert runner.invoke(app, ["review", "--db", db, "--set", "s.png=1234"]).exit_code == 0
    out = tmp_path / "s.png.out.png"
    result = runner.invoke(app, ["show", "1", "--db", db, "-o", str(out)])
    assert result.exit_code == 0, result.output
    height, width = envelopes["s.png"].image.shape[:2]
    assert cv2.imread(str(out)).shape[:2] == (height + banner_height(width), width)


def test_show_unknown_file_moved_or_changed_scan(tmp_path):
    from review_db import Planned

    db, _ = build(tmp_path, (Planned("s.png", "hu", "1234", "1284", 0.2, 7),))
    runner = CliRunner()
    assert runner.invoke(app, ["show", "zz.png", "--db", db]).exit_code == 2
    scan = tmp_path / "scans" / "s.png"
    cv2.imwrite(str(scan), np.zeros((100, 200, 3), np.uint8))  # another image, same name
    changed = runner.invoke(app, ["show", "s.png", "--db", db, "-o", str(tmp_path / "x.png")])
    assert changed.exit_code == 3 and "changed since it was read" in changed.output
    scan.unlink()
    moved = runner.invoke(app, ["show", "s.png", "--db", db, "-o", str(tmp_path / "x.png")])
    assert moved.exit_code == 3 and "s.png" in moved.output


def test_export_digits_writes_labelled_crops_ready_for_training(db, tmp_path):
    runner = CliRunner()
    decided = runner.invoke(app, ["review", "--db", db, "--set", "a.png=75011", "--accept",
                                  "b.png", "--set", "c.png=123", "--unreadable", "d.png"])
    assert decided.exit_code == 0, decided.output
    out = tmp_path / "digits"
    result = runner.invoke(app, ["export-digits", "--db", db, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "c.png: reviewed code 123 has 3 digits, 4 crops were cut" in result.output
    with (out / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # a.png (corrected: the person's digits) then b.png; c.png (count differs), d.png (unreadable)
    assert [r["label"] for r in rows] == list("75011") + list("100080")
    assert [r["file"] for r in rows[:2]] == ["1-0.png", "1-1.png"]
    for row in rows:
        crop = cv2.imread(str(out / row["file"]), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (28, 28) and crop.dtype == np.uint8
        # MNIST style: white ink on black, centred by mass, little ink near the border
        assert crop.max() > 200 and np.median(crop) == 0
        ring = crop.sum() - crop[3:-3, 3:-3].sum()
        assert ring < 0.1 * crop.sum()
        ys, xs = np.nonzero(crop)
        assert abs(np.average(ys, weights=crop[ys, xs]) - 13.5) < 2
        assert abs(np.average(xs, weights=crop[ys, xs]) - 13.5) < 2
    images, labels = load_extra(out)  # exactly what pipelines/train.py --extra reads
    assert images.shape == (11, 28, 28) and labels.tolist()[:5] == [7, 5, 0, 1, 1]


def test_recut_gives_back_the_crops_the_reader_cut(built):
    image = built[1]["a.png"].image
    field = locate(image)[0]
    crops = [c for c in segment(image, field) if not c.empty]
    assert crops
    again, direct = recut(image, field.box, [c.box for c in crops])
    assert direct == 0
    for original, copy in zip(crops, again, strict=True):
        assert np.array_equal(original.pixels, copy)


def test_real_read_then_review_show_and_export_digits(tmp_path, shipped_card):
    """End to end with the real reader and the shipped model on two generated envelopes."""
    from pipelines.synth_envelopes import make_envelope

    scans = tmp_path / "scans"
    scans.mkdir()
    codes = {"f.png": ("69003", "fr"), "u.png": ("02139", "us")}
    for name, (code, convention) in codes.items():
        cv2.imwrite(str(scans / name), make_envelope(code, convention, 5).image)
    db = str(tmp_path / "real.db")
    runner = CliRunner()
    read = runner.invoke(app, ["read", str(scans), "--db", db, "--workers", "1"])
    assert read.exit_code == 0, read.output
    listed = runner.invoke(app, ["review", "--db", db, "--list", "--csv", "--status", "all"])
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert sorted(r["file"] for r in rows) == ["f.png", "u.png"]
    for name in codes:
        out = tmp_path / f"{name}.shown.png"
        assert runner.invoke(app, ["show", name, "--db", db, "-o", str(out)]).exit_code == 0
        assert has_colour(cv2.imread(str(out)), 0, 10_000, 0, 10_000, DIGIT)
    sets = [f"--set={name}={code}" for name, (code, _) in codes.items()]
    assert runner.invoke(app, ["review", "--db", db, *sets]).exit_code == 0
    exported = runner.invoke(app, ["export-digits", "--db", db, "-o", str(tmp_path / "d")])
    assert exported.exit_code == 0, exported.output
    # reads whose digit count matches the truth are exported, re-cut exactly as read
    assert "wrote 0 digits" not in exported.output
    # the crops written are the ones the reader classified (re-cut exactly where the
    # segmentation can be replayed, else from the stored box): the model gives them the
    # labels it gave when reading
    read_labels = {f"{r['id']}-{i}.png": label for r in rows
                   for i, label in enumerate(r["digits"].split(";"))}  # <scan id>-<position>
    with (tmp_path / "d" / "labels.csv").open() as handle:
        files = [r["file"] for r in csv.DictReader(handle)]
    crops = np.stack([cv2.imread(str(tmp_path / "d" / f), cv2.IMREAD_GRAYSCALE) for f in files])
    again = load_classifier().probabilities(crops).argmax(axis=1)
    same = [str(label) == read_labels[f] for f, label in zip(files, again, strict=True)]
    assert sum(same) >= 0.8 * len(same)
