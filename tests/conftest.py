"""Shared fixtures: paths to the repository, MNIST, and the shipped model."""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so tests can import pipelines/ (not an installed package)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    from pipelines import mnist

    directory = mnist.default_dir()
    if directory is None or not (directory / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST files not found (set POSTREAD_MNIST_DIR or provide ../shared)")
    return directory


@pytest.fixture(scope="session")
def shipped_card() -> Path:
    from postread.classify import MODELS_DIR, find_card

    return find_card(MODELS_DIR)


@pytest.fixture(scope="session")
def dry_checkpoint(tmp_path_factory, mnist_dir) -> Path:
    """A DigitNet from ``train.py --dry-run`` (a few batches; judge-free pairs share 0.1)."""
    from scripts import train_dry_run

    out = tmp_path_factory.mktemp("train") / "dry.pt"
    result = train_dry_run(mnist_dir, "--out", out, "--pairs-share", 0.1)
    assert result.returncode == 0, result.stderr
    assert "val acc" in result.stdout
    return out


@pytest.fixture(scope="session")
def exported(dry_checkpoint, tmp_path_factory) -> Path:
    """The card of ``dry_checkpoint`` exported as model 0.0.1 (no pair judge)."""
    from pipelines import export

    return export.export(dry_checkpoint, "0.0.1", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A review database built from generated scans (see review_db.build), once per module."""
    from review_db import build

    return build(tmp_path_factory.mktemp("reviewdb"))


@pytest.fixture
def db(built, tmp_path):
    """A fresh copy of the built database for each test (decisions change it)."""
    copy = tmp_path / "review.db"
    shutil.copy(built[0], copy)
    return str(copy)
