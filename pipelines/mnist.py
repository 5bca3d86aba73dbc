"""Load digit data: MNIST's IDX files (md5-verified) and folders of reviewed digits.

The reviewed folders are what ``postread export-digits`` writes. Used by training,
evaluation and the synthetic-envelope generator; torch-free, so evaluating an ONNX model
does not need it. The MNIST files are read
from a directory given on the command line or by ``POSTREAD_MNIST_DIR``; on our machines
and in CI that is ``../shared/data/mnist``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import struct
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from postread.errors import DataError  # noqa: E402

FILES = {
    "train-images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test-images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test-labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


def default_dir() -> Path | None:
    """The MNIST directory from ``POSTREAD_MNIST_DIR``, else ``../shared/data/mnist``."""
    env = os.environ.get("POSTREAD_MNIST_DIR")
    if env:
        return Path(env)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    return shared if shared.is_dir() else None


def md5_of(path: Path) -> str:
    """Hex md5 of a file's bytes."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read one gzipped IDX file into a uint8 array; DataError names the file on any fault."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{path}: MNIST file is missing") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    if len(raw) < 8:
        raise DataError(f"{path}: IDX header is truncated")
    magic, count = struct.unpack(">II", raw[:8])
    if magic != expected_magic:
        raise DataError(f"{path}: IDX magic number is {magic}, expected {expected_magic}")
    if magic == IMAGE_MAGIC:
        if len(raw) < 16:
            raise DataError(f"{path}: IDX header is truncated")
        rows, cols = struct.unpack(">II", raw[8:16])
        shape, offset = (count, rows, cols), 16
    else:
        shape, offset = (count,), 8
    want = int(np.prod(shape))
    if len(raw) - offset != want:
        raise DataError(f"{path}: holds {len(raw) - offset} data bytes, header promises {want}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def load_split(
    directory: Path, split: str, verify_md5: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 28 x 28 uint8, white on black) and labels (N,) of ``train`` or ``test``."""
    images_name, images_md5 = FILES[f"{split}-images"]
    labels_name, labels_md5 = FILES[f"{split}-labels"]
    images_path, labels_path = Path(directory) / images_name, Path(directory) / labels_name
    if verify_md5:
        for path, want in ((images_path, images_md5), (labels_path, labels_md5)):
            if not path.exists():
                raise DataError(f"{path}: MNIST file is missing")
            if md5_of(path) != want:
                raise DataError(f"{path}: md5 does not match the published MNIST file")
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: holds a label above 9")
    return images, labels


def data_md5s(directory: Path) -> dict[str, str]:
    """md5 of each of the four files, for the training recipe in the model card."""
    return {name: md5_of(Path(directory) / name) for name, _ in FILES.values()}


def download(
    directory: Path,
    mirrors: tuple[str, ...] = MIRRORS,
    files: dict[str, tuple[str, str]] = FILES,
) -> None:
    """Fetch any missing MNIST file from the mirrors, keeping only md5-verified copies."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, want in files.values():
        target = directory / name
        if target.exists() and md5_of(target) == want:
            continue
        errors = []
        for base in mirrors:
            try:
                with urllib.request.urlopen(base + name, timeout=60) as response:
                    data = response.read()
            except OSError as exc:
                errors.append(f"{base}: {exc}")
                continue
            if hashlib.md5(data).hexdigest() != want:
                errors.append(f"{base}: md5 mismatch")
                continue
            partial = target.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(target)  # never leave a half-written file under the real name
            break
        else:
            raise DataError(f"{name}: could not download a verified copy ({'; '.join(errors)})")


def load_extra(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Digits exported by ``postread export-digits``: labels.csv (file,label) + 28x28 PNGs."""
    labels_csv = folder / "labels.csv"
    if not labels_csv.exists():
        raise DataError(f"{labels_csv}: missing (expected file,label rows)")
    images, labels = [], []
    with labels_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            pixels = cv2.imread(str(folder / row["file"]), cv2.IMREAD_GRAYSCALE)
            if pixels is None or pixels.shape != (28, 28):
                raise DataError(f"{folder / row['file']}: not a 28x28 grayscale image")
            images.append(pixels)
            labels.append(int(row["label"]))
    if not images:
        raise DataError(f"{labels_csv}: lists no digits")
    return np.stack(images), np.array(labels, dtype=np.uint8)
