import csv

import cv2
import numpy as np
import pytest
from test_mnist import write_idx

from pipelines import synth_envelopes
from pipelines.handwriting import ProceduralDigits, render_digit
from pipelines.synth_envelopes import CONDITIONS, CONVENTIONS, MnistDigits, make_envelope

SIZES = {"lowres": (180, 300, 380, 440), "highres": (2400, 3000, 4500, 4900),
         "photo": (1100, 1300, 1500, 1700)}
DEFAULT = (880, 1100, 1580, 1750)  # 1600 x 900 drawn, grown a little by rotation


def _check_shape(env):
    lo_h, hi_h, lo_w, hi_w = SIZES.get(env.condition, DEFAULT)
    h, w = env.image.shape[:2]
    assert env.image.dtype == np.uint8 and env.image.ndim == 3 and env.image.shape[2] == 3
    assert lo_h <= h <= hi_h and lo_w <= w <= hi_w, (env.condition, env.image.shape)


def _inside(box, image):
    x, y, w, h = box
    return w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= image.shape[1] \
        and y + h <= image.shape[0]


def test_same_seed_same_image():
    a = make_envelope("69003", "fr", seed=7, condition="photo")
    b = make_envelope("69003", "fr", seed=7, condition="photo")
    c = make_envelope("69003", "fr", seed=8, condition="photo")
    assert np.array_equal(a.image, b.image)
    assert a.field_box == b.field_box and a.digit_boxes == b.digit_boxes
    assert not np.array_equal(a.image[:100], c.image[:100]) or a.image.shape != c.image.shape


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_every_convention_renders_with_its_code(convention):
    env = make_envelope(None, convention, seed=3)
    _check_shape(env)
    assert env.convention == convention and env.condition == "scan"
    if convention == "none":
        assert env.code == "" and env.field_box is None and env.digit_boxes == ()
        return
    want = synth_envelopes.CODE_LENGTHS[convention]
    assert env.code.isdigit() and len(env.code) in want
    assert _inside(env.field_box, env.image)
    assert len(env.digit_boxes) == len(env.code)
    assert all(_inside(b, env.image) for b in env.digit_boxes)
    # Digits read left to right.
    assert [b[0] for b in env.digit_boxes] == sorted(b[0] for b in env.digit_boxes)


@pytest.mark.parametrize("condition", [c for c in CONDITIONS if c != "highres"])
def test_every_condition_renders(condition):
    env = make_envelope("12345", "us", seed=5, condition=condition)
    _check_shape(env)
    assert env.code == "12345" and env.condition == condition
    assert _inside(env.field_box, env.image)
    if condition == "binarised":
        assert set(np.unique(env.image)) <= {0, 255}
        assert (env.image == 0).mean() > 0.5  # white strokes on black


def test_highres_is_about_4600_wide():
    env = make_envelope("1234", "hu", seed=1, condition="highres", distractors=False)
    _check_shape(env)


def test_given_code_is_used_and_zip4_hyphen_dropped():
    env = make_envelope("12345-6789", "us4", seed=2)
    assert env.code == "123456789"
    with pytest.raises(ValueError):
        make_envelope("1234", "fr", seed=2)
    with pytest.raises(ValueError):
        make_envelope(None, "xx", seed=2)
    with pytest.raises(TypeError):
        make_envelope(None, "fr", seed=2, no_such_option=True)


def test_field_box_holds_the_ink_on_a_flat_scan():
    env = make_envelope("80808", "fr", seed=4, rotation=0, distractors=False, paper="white",
                        ink="black")
    x, y, w, h = env.field_box
    dark = cv2.cvtColor(env.image, cv2.COLOR_BGR2GRAY)[y:y + h, x:x + w] < 100
    assert dark.mean() > 0.02


def test_procedural_digits_render_all_ten():
    rng = np.random.default_rng(0)
    for digit in range(10):
        alpha = render_digit(digit, rng, height_px=48, thickness=4)
        assert alpha.dtype == np.uint8 and alpha.max() == 255
        assert 40 <= alpha.shape[0] <= 60  # tight around ~48 px of ink
        assert alpha[0].any() and alpha[-1].any()  # tight crop: ink on the edges
    source = ProceduralDigits(seed=1)
    assert source.sample(3, rng, 32).shape[0] > 20


def test_mnist_digits_from_a_tiny_idx_set(tmp_path):
    images = np.zeros((10, 28, 28), np.uint8)
    for d in range(10):
        images[d, 4:24, 10 + d // 5: 14 + d // 5] = 255  # a bar per digit: any ink will do
    write_idx(tmp_path / "m", images, np.arange(10, dtype=np.uint8))
    source = MnistDigits(tmp_path / "m", "test", verify_md5=False)
    alpha = source.sample(7, np.random.default_rng(0), height_px=60)
    assert alpha.dtype == np.uint8 and alpha.shape[0] == 60
    env = make_envelope("0123456", "jp", seed=1, digits=source)
    assert env.code == "0123456" and len(env.digit_boxes) == 7
    # Image d of this set is digit d: each code digit names the glyph it was drawn from.
    assert env.digit_sources == tuple(f"test:{d}" for d in range(7))
    assert make_envelope("0123456", "jp", seed=1).digit_sources == ("",) * 7  # procedural


def test_cli_writes_images_and_labels(tmp_path):
    out = tmp_path / "set"
    rc = synth_envelopes.main([str(out), "--count", "4", "--seed", "3",
                               "--conventions", "fr,none", "--conditions", "scan,photo"])
    assert rc == 0
    with open(out / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "code", "convention", "condition", "digit_sources"]
    assert len(rows) == 4
    for row in rows:
        image = cv2.imread(str(out / row["file"]))
        assert image is not None
        assert row["file"].endswith(".jpg") == (row["condition"] == "photo")
        assert row["digit_sources"] == ""  # procedural digits have no source to name
        if row["convention"] == "none":
            assert row["code"] == ""
        else:
            assert len(row["code"]) == 5
        seed = synth_envelopes.envelope_seed(3, rows.index(row))
        again = make_envelope(None, row["convention"], seed, condition=row["condition"])
        assert again.code == row["code"]


def test_cli_refuses_unknown_convention(tmp_path):
    with pytest.raises(SystemExit):
        synth_envelopes.main([str(tmp_path), "--conventions", "fr,mars"])


def test_sample_scans_are_catalogued(repo_root):
    folder = repo_root / "sample_scans"
    with open(folder / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "page", "code"]
    listed = {row["file"] for row in rows}
    on_disk = {p.name for p in folder.iterdir()} - {"labels.csv", "README.md"}
    assert listed == on_disk
    readme = (folder / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in listed)
    assert all(row["code"] == "" or row["code"].isdigit() for row in rows)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 3_000_000
    ok, pages = cv2.imreadmulti(str(folder / "two_pages.tif"))
    assert ok and len(pages) == sum(row["file"] == "two_pages.tif" for row in rows) == 2


def test_make_samples_draws_the_committed_codes():
    from pipelines import make_samples

    sample = make_samples.SAMPLES[0]
    assert make_samples._draw(sample).code == sample.code


@pytest.mark.parametrize("convention", ["fr", "hu", "us4", "digits"])
def test_a_wider_envelope_keeps_its_code_on_the_paper(convention):
    # A 300 dpi DL scan is wider than the layouts' 16:9: the code must still be drawn.
    for seed in range(6):
        env = make_envelope(None, convention, seed, condition="scan", size=(1400, 600))
        x, y, w, h = env.field_box
        assert 0 <= x and 0 <= y and x + w <= 1400 and y + h <= 600, (seed, env.field_box)
