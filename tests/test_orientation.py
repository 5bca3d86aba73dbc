"""Envelopes the wrong way up: read turned, stored with the turn, shown the way they were read."""

from dataclasses import replace

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from pipelines.synth_envelopes import make_envelope
from postread.classify import load_classifier
from postread.cli import app
from postread.field_view import soft_ink
from postread.orientation import read_any_way_up, turn
from postread.pipeline import read_scan
from postread.records import CodeRead, Scan, Status
from postread.review import load_queue
from postread.settings import Settings
from postread.store import Store


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def _read(image, classifier) -> CodeRead:
    scan = Scan(path=None, page=0, image=image, content_hash="h", size_bytes=0)
    return read_scan(scan, classifier, Settings(workers=1))


def _ink_at(image: np.ndarray, box) -> float:
    x, y, w, h = box
    return float(soft_ink(image[y:y + h, x:x + w]).max())


@pytest.mark.parametrize(("rotation", "convention", "code"), [
    (180, "fr", "74124"), (180, "us", "40116"), (90, "cn", "576030"), (-90, "jp", "1244697")])
def test_an_envelope_the_wrong_way_up_reads_turned(classifier, rotation, convention, code):
    env = make_envelope(code, convention, seed=500, condition="scan", rotation=rotation)
    read = _read(env.image, classifier)
    assert read.code == code and read.status is not Status.FAILED
    assert read.turned == rotation % 360
    assert "turned" in read.field.evidence
    # Boxes are in the turned image: each digit's box holds ink there.
    turned = turn(env.image, read.turned)
    assert all(_ink_at(turned, d.box) > 128 for d in read.digits)


def test_an_upright_envelope_is_never_turned(classifier):
    env = make_envelope("40527", "fr", seed=3, condition="scan")
    read = _read(env.image, classifier)
    assert (read.code, read.status, read.turned) == ("40527", Status.ACCEPTED, 0)


def _fixed(status: Status, code: str, confidence: float) -> CodeRead:
    return CodeRead(status, code, confidence, "" if status is Status.ACCEPTED else "why")


def test_a_plausible_upright_code_against_a_turned_one_goes_to_a_person():
    image = np.zeros((40, 80, 3), np.uint8)
    reads = {0: _fixed(Status.NEEDS_REVIEW, "68989", 0.9),
             180: _fixed(Status.ACCEPTED, "68689", 0.99)}

    def read(img):
        return reads[0] if img is image else reads[180]

    chosen = read_any_way_up(image, read)
    assert (chosen.code, chosen.turned, chosen.status) == ("68689", 180, Status.NEEDS_REVIEW)
    assert "reads 68989 as scanned and 68689 turned 180 degrees" in chosen.reason
    # An upright read that found nothing is simply replaced by a sure turned one...
    reads[0] = _fixed(Status.FAILED, "", 0.0)
    assert read_any_way_up(image, read).status is Status.ACCEPTED
    # ...but a turned guess read unsurely does not replace "no code".
    reads[180] = replace(reads[180], status=Status.NEEDS_REVIEW, confidence=0.3)
    assert read_any_way_up(image, read).status is Status.FAILED


def test_a_turned_read_is_stored_and_shown_the_way_it_was_read(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    env = make_envelope("74124", "fr", seed=500, condition="scan", rotation=180)
    cv2.imwrite(str(scans / "upside_down.png"), env.image)
    db = tmp_path / "p.db"
    done = CliRunner().invoke(app, ["read", str(scans), "--db", str(db), "--workers", "1"])
    assert done.exit_code == 0, done.output
    (item,) = load_queue(Store(str(db)), "all", include_reviewed=True)
    assert (item.code, item.scan.read.turned) == ("74124", 180)
    image = item.image()  # turned as the reader turned it: the stored boxes line up
    assert all(_ink_at(image, d.box) > 128 for d in item.scan.read.digits)
