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
from postread.records import CodeField, CodeRead, FieldKind, Scan, Status
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


def test_an_envelope_upside_down_is_read_turned_for_a_person(classifier):
    # Turned, it reads 74124 at 0.984: below the default review threshold (0.99), above
    # SURE_TURNED, which is what a suggestion for a person needs.
    env = make_envelope("74124", "fr", seed=500, condition="scan", rotation=180)
    read = _read(env.image, classifier)
    assert (read.code, read.turned) == ("74124", 180)
    assert read.status is Status.NEEDS_REVIEW and "check which way up" in read.reason
    assert "turned" in read.field.evidence
    # Boxes are in the turned image: each digit's box holds ink there.
    turned = turn(env.image, read.turned)
    assert all(_ink_at(turned, d.box) > 128 for d in read.digits)


def test_an_upright_envelope_is_never_turned(classifier):
    env = make_envelope("40527", "fr", seed=3, condition="scan")
    read = _read(env.image, classifier)
    assert (read.code, read.status, read.turned) == ("40527", Status.ACCEPTED, 0)


def _fixed(status: Status, code: str, confidence: float) -> CodeRead:
    field = CodeField((0, 0, 50, 20), FieldKind.FREEFORM, 0.9, "a row") if code else None
    return CodeRead(status, code, confidence, "" if status is Status.ACCEPTED else "why",
                    field=field)


def test_a_turned_read_never_replaces_a_plausible_upright_one_nor_is_accepted():
    image = np.zeros((40, 80, 3), np.uint8)
    reads = {0: _fixed(Status.NEEDS_REVIEW, "68989", 0.9),
             180: _fixed(Status.ACCEPTED, "68689", 0.99)}
    turned_reads = []

    def read(img):
        if img is image:
            return reads[0]
        turned_reads.append(img)
        return reads[180]

    # A plausible upright read goes to a person as it is, without a second read.
    assert read_any_way_up(image, read) is reads[0] and not turned_reads
    # An upright read that found nothing gives way to a sure turned one, for a person.
    reads[0] = _fixed(Status.FAILED, "", 0.0)
    chosen = read_any_way_up(image, read)
    assert (chosen.code, chosen.turned, chosen.status) == ("68689", 180, Status.NEEDS_REVIEW)
    assert "turned 180 degrees, the scan reads 68689" in chosen.reason
    assert "check which way up" in chosen.reason and "turned 180" in chosen.field.evidence
    # A turned read that is not sure changes nothing: "no code" stays "no code"...
    reads[180] = replace(reads[180], status=Status.NEEDS_REVIEW)
    assert read_any_way_up(image, read) is reads[0]
    # ...nor one accepted under a low review threshold (an evaluation sweep reads with 0).
    reads[180] = replace(reads[180], status=Status.ACCEPTED, confidence=0.8)
    assert read_any_way_up(image, read) is reads[0]


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
