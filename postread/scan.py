"""Load scan files into ``Scan`` records: find them, check their headers, decode each page once.

Bad files are refused with a one-line ``ScanError`` reason. Image dimensions are read
from the file header *before* decoding, so a file that claims 100,000 x 100,000 pixels is
refused without allocating anything.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from postread.errors import InputError, ScanError
from postread.records import Scan

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib", ".webp"})
"""File name endings taken as scans (any case); other files are sniffed by content."""
MAX_PIXELS = 100_000_000
"""Largest image accepted (a 600 dpi C4 envelope is ~41 Mpx); 3 bytes per pixel once decoded."""
MIN_SIDE = 24
"""Smallest width or height accepted: below this no digit can be read."""
MAX_ASPECT = 20
"""Longest side over shortest accepted: an envelope is about 2:1, and a strip past ~600:1
is under 2 pixels high at the working size, where OpenCV's resizing fails."""

_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
            4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}

# OpenCV logs decoder warnings on stderr; our reasons say it in one line instead.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


@dataclass(frozen=True)
class Found:
    """One file met while walking a folder."""

    path: Path
    """The file, as found under the folder (symlinks not resolved)."""
    skip_reason: str = ""
    """Why it is not a scan ("" for a scan to read)."""


def find_scans(root: Path) -> Iterator[Found]:
    """Walk ``root`` recursively in sorted order; yield scans and the files skipped, with why.

    Symlinked folders are followed once: a folder already visited (a symlink loop) is skipped.
    """
    if not root.is_dir():
        raise InputError(f"{root}: not a folder" if root.exists() else f"{root}: no such folder")
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True, onerror=_raise_walk_error):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            yield Found(Path(folder), "folder already visited (symlink loop)")
            dirs.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            yield Found(path, "" if _looks_like_scan(path) else "not an image file")


def _raise_walk_error(error: OSError) -> None:
    raise InputError(f"{error.filename}: {error.strerror}")


def _looks_like_scan(path: Path) -> bool:
    """A scan by its name, else by its first bytes; broken links are left for load to report."""
    if path.suffix.lower() in EXTENSIONS:
        return True
    try:
        with open(path, "rb") as f:
            return _sniff(f.read(16)) is not None
    except OSError:
        return False


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


class ScanFile:
    """A scan file read into memory once, its header checked; pages decode on demand."""

    def __init__(self, path: Path):
        """Read ``path`` and check its header; raise ``ScanError`` with the reason if it is bad."""
        self.path = path
        try:
            self.data = path.read_bytes()
        except FileNotFoundError:
            raise ScanError("file vanished before it could be read") from None
        except OSError as e:
            raise ScanError(f"cannot read file: {e.strerror or e}") from None
        if not self.data:
            raise ScanError("empty file (0 bytes)")
        self.kind = _sniff(self.data[:16])
        if self.kind is None:
            raise ScanError(f"not an image ({_describe(self.data)})")
        self.sizes = _HEADER_SIZES[self.kind](self.data)
        """(width, height) of each page from the header, or why that page cannot be read."""
        self._digest = hashlib.sha256(self.data)

    @property
    def size_bytes(self) -> int:
        """Size of the file in bytes."""
        return len(self.data)

    def content_hash(self, page: int) -> str:
        """sha256 of the file's bytes plus the page number: the scan's identity across runs."""
        return _page_hash(self._digest, page)

    def decode(self, page: int, max_side: int = 0) -> Scan:
        """Decode one page, reduced while its long side stays at least ``max_side``.

        The reduction is 1/2, 1/4 or 1/8 (``reduction_for``; JPEG decodes it natively);
        ``max_side`` 0 decodes at full size.
        """
        size = self.sizes[page]
        if isinstance(size, ScanError):
            raise size
        _check_size(*size)
        reduce = reduction_for(*size, max_side)
        # Only JPEG decodes reduced natively (scaled in its DCT). Other decoders decode the
        # whole image and then shrink it; asked to reduce, OpenCV's shrink cost a 300 dpi PNG
        # 2.9 ms, against 0.9 ms for our own exact-factor area shrink.
        flag = _REDUCED[reduce] if self.kind == "jpeg" else cv2.IMREAD_COLOR
        buf = np.frombuffer(self.data, np.uint8)
        if self.kind == "tiff":
            ok, mats = cv2.imdecodemulti(buf, flag, None, (page, page + 1))
            image = mats[0] if ok and mats else None
        else:
            image = cv2.imdecode(buf, flag)
        if image is None or image.size == 0:
            what = f"TIFF page {page}" if self.kind == "tiff" else self.kind.upper()
            raise ScanError(f"cannot decode {what}: truncated or corrupt image data")
        if reduce > 1 and self.kind != "jpeg":
            image = _shrink(image, reduce)
        return Scan(self.path, page, image, self.content_hash(page), self.size_bytes)


def load_scans(path: Path) -> list[Scan]:
    """Every page of a scan file at full resolution; raises ``ScanError`` on the first bad one."""
    scan_file = ScanFile(path)
    return [scan_file.decode(page) for page in range(len(scan_file.sizes))]


def failed_file_hash(path: Path) -> str:
    """The identity of a file that could not be loaded: as a scan's if readable, else by path."""
    try:
        data = path.read_bytes()
    except OSError:
        data = b"unreadable:" + os.fsencode(path.absolute())
    return _page_hash(hashlib.sha256(data), 0)


def _page_hash(file_digest, page: int) -> str:
    digest = file_digest.copy()
    digest.update(f"\0page={page}".encode())
    return digest.hexdigest()


def _shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` at 1/``factor`` of its size, each pixel the mean of a factor x factor block.

    The last odd row or column is dropped (as OpenCV's own reduced PNG decode does), which
    keeps the factor whole: OpenCV's area resize is several times slower for a fractional one.
    """
    height, width = image.shape[:2]
    whole = image[:height - height % factor, :width - width % factor]
    return cv2.resize(whole, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


def reduction_for(width: int, height: int, max_side: int | None) -> int:
    """The largest decode reduction (1, 2, 4, 8) that keeps the long side at least ``max_side``."""
    factor = 1
    while max_side and factor < 8 and max(width, height) // (factor * 2) >= max_side:
        factor *= 2
    return factor


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ScanError(f"image too large: header says {width}x{height} pixels "
                        f"(limit {MAX_PIXELS // 1_000_000} Mpx)")
    if min(width, height) < MIN_SIDE:
        raise ScanError(f"image too small: {width}x{height} pixels (need {MIN_SIDE} per side)")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ScanError(f"image too elongated for an envelope: {width}x{height} pixels "
                        f"(sides more than {MAX_ASPECT}:1)")


def _describe(data: bytes) -> str:
    head = data[:512]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary content"
    return "looks like text"


def _need(data: bytes, end: int, what: str) -> None:
    if len(data) < end:
        raise ScanError(f"truncated {what} header")


def _png_sizes(data: bytes) -> list[tuple[int, int]]:
    _need(data, 24, "PNG")
    if data[12:16] != b"IHDR":
        raise ScanError("corrupt PNG header (no IHDR chunk)")
    return [struct.unpack(">II", data[16:24])]


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_sizes(data: bytes) -> list[tuple[int, int]]:
    """Walk the marker segments up to the frame header (SOFn), which holds the size."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ScanError("corrupt JPEG header (bad marker)")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            _need(data, i + 9, "JPEG")
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return [(width, height)]
        if marker in (0xD9, 0xDA):  # end of image or scan data before any frame header
            break
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    raise ScanError("truncated JPEG header (no frame header)")


def _bmp_sizes(data: bytes) -> list[tuple[int, int]]:
    _need(data, 26, "BMP")
    if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 core header: 16-bit sizes
        return [struct.unpack("<HH", data[18:22])]
    width, height = struct.unpack("<ii", data[18:26])
    return [(abs(width), abs(height))]  # negative height = top-down rows


def _webp_sizes(data: bytes) -> list[tuple[int, int]]:
    _need(data, 30, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return [(width & 0x3FFF, height & 0x3FFF)]
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return [((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)]
    if chunk == b"VP8X":
        return [(int.from_bytes(data[24:27], "little") + 1,
                 int.from_bytes(data[27:30], "little") + 1)]
    raise ScanError("corrupt WebP header (unknown chunk)")


def _tiff_sizes(data: bytes) -> list[tuple[int, int] | ScanError]:
    """Follow the chain of image directories (IFDs), one per page; classic and BigTIFF.

    A broken directory after the first page ends the chain as a failed page of its own,
    so the pages before it are still read.
    """
    _need(data, 16, "TIFF")
    end = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    offset = struct.unpack(end + ("Q" if big else "I"), data[8:16] if big else data[4:8])[0]
    sizes: list[tuple[int, int] | ScanError] = []
    visited: set[int] = set()
    while offset and offset not in visited:  # a directory chain that loops ends here
        visited.add(offset)
        try:
            size, offset = _tiff_page(data, offset, len(sizes), end, big)
        except (ScanError, struct.error) as e:
            if not sizes:
                raise ScanError(str(e) or "corrupt TIFF header") from None
            sizes.append(ScanError(f"corrupt TIFF page {len(sizes)} (bad directory)"))
            break
        sizes.append(size)
    if not sizes:
        raise ScanError("corrupt TIFF header (no pages)")
    return sizes


def _tiff_page(data: bytes, offset: int, page: int, end: str, big: bool
               ) -> tuple[tuple[int, int], int]:
    """One image directory: the page's (width, height) and the next directory's offset."""
    offset_fmt, count_fmt, entry_size = ("Q", "Q", 20) if big else ("I", "H", 12)
    value_at = 12 if big else 8
    count_size = struct.calcsize(count_fmt)
    _need(data, offset + count_size, f"TIFF page {page}")
    count = struct.unpack(end + count_fmt, data[offset:offset + count_size])[0]
    table = offset + count_size
    next_at = table + count * entry_size
    _need(data, next_at + struct.calcsize(offset_fmt), f"TIFF page {page}")
    dims = {}
    for k in range(count):
        entry = data[table + k * entry_size:table + (k + 1) * entry_size]
        tag, kind = struct.unpack(end + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT, LONG or LONG8
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind, "I")
            dims[tag] = struct.unpack_from(end + fmt, entry, value_at)[0]
    if len(dims) < 2:
        raise ScanError(f"corrupt TIFF page {page} (no image size)")
    return (dims[256], dims[257]), struct.unpack_from(end + offset_fmt, data, next_at)[0]


_HEADER_SIZES = {"png": _png_sizes, "jpeg": _jpeg_sizes, "bmp": _bmp_sizes,
                 "webp": _webp_sizes, "tiff": _tiff_sizes}
