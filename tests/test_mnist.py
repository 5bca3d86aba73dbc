import gzip
import hashlib
import struct

import numpy as np
import pytest

from pipelines import mnist
from postread.errors import DataError


def write_idx(folder, images, labels, prefix="t10k"):
    folder.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">IIII", 2051, len(images), 28, 28)
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(header + images.astype(np.uint8).tobytes()))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()))


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_idx(tmp_path / "m", images, labels)
    return tmp_path / "m", images, labels


def test_reads_images_and_labels_exactly(tiny):
    folder, images, labels = tiny
    got_images, got_labels = mnist.load_split(folder, "test", verify_md5=False)
    assert got_images.shape == (5, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_missing_file_is_named(tiny):
    folder, _, _ = tiny
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: MNIST file is missing"):
        mnist.load_split(folder, "test", verify_md5=False)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda raw: raw[: len(raw) // 2], "not a readable gzip"),
        (lambda raw: b"not gzip at all", "not a readable gzip"),
        (lambda raw: gzip.compress(gzip.decompress(raw)[:-10]), "header promises"),
        (lambda raw: gzip.compress(struct.pack(">II", 9999, 5)), "magic number is 9999"),
    ],
)
def test_corrupt_image_file_is_refused_with_its_name(tiny, damage, message):
    folder, _, _ = tiny
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as info:
        mnist.load_split(folder, "test", verify_md5=False)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_md5_mismatch_is_refused(tiny):
    folder, _, _ = tiny
    with pytest.raises(DataError, match="md5 does not match"):
        mnist.load_split(folder, "test")


def test_download_fetches_verifies_and_rejects_bad_copies(tiny, tmp_path):
    source, _, _ = tiny
    files = {key: (name, hashlib.md5((source / name).read_bytes()).hexdigest())
             for key, (name, _) in mnist.FILES.items() if name.startswith("t10k")}
    bad = tmp_path / "bad"
    bad.mkdir()
    for name, _ in files.values():
        (bad / name).write_bytes(b"tampered")
    target = tmp_path / "fetched"
    # The first mirror serves tampered bytes and must be skipped for the second.
    mnist.download(target, mirrors=(bad.as_uri() + "/", source.as_uri() + "/"), files=files)
    for name, md5 in files.values():
        assert hashlib.md5((target / name).read_bytes()).hexdigest() == md5
    with pytest.raises(DataError, match="could not download a verified copy"):
        mnist.download(tmp_path / "again", mirrors=(bad.as_uri() + "/",), files=files)


def test_real_mnist_counts(mnist_dir):
    images, labels = mnist.load_split(mnist_dir, "test")
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
