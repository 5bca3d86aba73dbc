"""scan.py on real files written here: formats, TIFF pages, bad files, folder walking."""

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import code_image

from postread.errors import InputError, ScanError
from postread.scan import ScanFile, find_scans, load_scans, reduction_for


def png_claiming(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk that claim a size, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + crc


def tiff_with_bad_page(pages: list[np.ndarray], bad: int) -> bytes:
    """A multi-page TIFF whose page ``bad`` has its strips pointing past the end of the file."""
    ok, buf = cv2.imencodemulti(".tiff", pages)
    assert ok
    data = bytearray(buf.tobytes())
    offset = struct.unpack("<I", data[4:8])[0]
    for _ in range(bad):
        count = struct.unpack("<H", data[offset:offset + 2])[0]
        offset = struct.unpack("<I", data[offset + 2 + 12 * count:offset + 6 + 12 * count])[0]
    count = struct.unpack("<H", data[offset:offset + 2])[0]
    for k in range(count):
        entry = offset + 2 + 12 * k
        tag, _, n = struct.unpack("<HHI", data[entry:entry + 8])
        if tag == 273:  # StripOffsets
            where = entry + 8 if n == 1 else struct.unpack("<I", data[entry + 8:entry + 12])[0]
            data[where:where + 4 * n] = struct.pack(f"<{n}I", *[10**7] * n)
    return bytes(data)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tif"])
def test_each_format_loads_with_its_size_and_hash(tmp_path, ext):
    path = tmp_path / f"a{ext}"
    cv2.imwrite(str(path), code_image("12345"))
    (scan,) = load_scans(path)
    assert (scan.width, scan.height, scan.page) == (200, 80, 0)
    assert scan.image.dtype == np.uint8 and scan.image.shape[2] == 3
    assert scan.size_bytes == path.stat().st_size
    assert len(scan.content_hash) == 64
    assert load_scans(path)[0].content_hash == scan.content_hash  # stable across loads


def test_every_tiff_page_is_a_scan_and_a_bad_page_fails_alone(tmp_path):
    pages = [np.full((60, 80, 3), 40 * i + 20, np.uint8) for i in range(3)]
    path = tmp_path / "m.tif"
    path.write_bytes(tiff_with_bad_page(pages, bad=1))
    scan_file = ScanFile(path)
    assert len(scan_file.sizes) == 3
    assert scan_file.decode(0).image[0, 0, 0] == 20
    assert scan_file.decode(2).image[0, 0, 0] == 100
    with pytest.raises(ScanError, match="TIFF page 1"):
        scan_file.decode(1)
    hashes = {scan_file.content_hash(p) for p in range(3)}
    assert len(hashes) == 3  # same bytes, different pages: different scans


def test_reduced_decode_shrinks_every_format(tmp_path):
    for ext in (".jpg", ".png", ".tif"):
        path = tmp_path / f"big{ext}"
        cv2.imwrite(str(path), np.zeros((400, 800, 3), np.uint8))
        assert ScanFile(path).decode(0, max_side=200).image.shape[:2] == (100, 200)
    # Odd sizes: the last row and column go; each pixel is its 4 x 4 block's mean.
    stripes = np.zeros((403, 801, 3), np.uint8)
    stripes[:, 1::2] = 200  # every other column inked: blocks average to 100
    for ext in (".png", ".tif", ".bmp", ".webp"):
        path = tmp_path / f"odd{ext}"
        cv2.imwrite(str(path), stripes, [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else [])
        image = ScanFile(path).decode(0, max_side=200).image
        assert image.shape[:2] == (100, 200), ext
        assert np.abs(image.astype(int) - 100).max() <= 1, ext
    assert reduction_for(4000, 3000, 2400) == 1
    assert reduction_for(8000, 6000, 2000) == 4
    assert reduction_for(8000, 6000, 0) == 1


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.png", b"", "empty file"),
    ("random.png", bytes(range(256)) * 4, "not an image"),
    ("text.jpg", b"hello, this is not a photo\n", "not an image (looks like text)"),
    ("huge.png", png_claiming(100_000, 100_000), "too large: header says 100000x100000"),
    ("short.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", "truncated JPEG header"),
    ("short.png", b"\x89PNG\r\n\x1a\n\x00\x00", "truncated PNG header"),
])
def test_bad_files_are_refused_with_one_line_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ScanError, match="^[^\n]+$") as error:
        load_scans(path)
    assert reason in str(error.value)


def test_truncated_and_tiny_images_are_refused(tmp_path):
    for ext in (".png", ".jpg"):
        whole = tmp_path / f"whole{ext}"
        cv2.imwrite(str(whole), np.random.default_rng(0).integers(0, 255, (300, 400, 3),
                                                                  dtype=np.uint8))
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        with pytest.raises(ScanError, match="truncated or corrupt"):
            load_scans(cut)
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ScanError, match="too small: 1x1"):
        load_scans(tiny)
    strip = tmp_path / "strip.png"  # a label strip: its working view would be 2 pixels high
    cv2.imwrite(str(strip), np.full((24, 14000, 3), 255, np.uint8))
    with pytest.raises(ScanError, match="too elongated for an envelope: 14000x24"):
        load_scans(strip)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ScanError, match="vanished"):
        ScanFile(tmp_path / "gone.png")
    locked = tmp_path / "locked.png"
    cv2.imwrite(str(locked), code_image("12345"))
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("running as root: permissions are not enforced")
    with pytest.raises(ScanError, match="cannot read"):
        ScanFile(locked)


def test_walk_finds_scans_by_name_or_content_skips_others_and_survives_loops(tmp_path):
    root = tmp_path / "scans"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "a.png"), code_image("12345"))
    cv2.imwrite(str(root / "sub" / "b.JPG"), code_image("12345"))
    (root / "noext").write_bytes((root / "a.png").read_bytes())  # a PNG without its name
    (root / "notes.txt").write_text("not a scan")
    (root / "sub" / "up").symlink_to(root)  # a loop: sub/up -> scans
    (root / "self.png").symlink_to(root / "self.png")  # a link to itself
    found = {f.path.relative_to(root).as_posix(): f.skip_reason for f in find_scans(root)}
    assert found["a.png"] == "" and found["sub/b.JPG"] == "" and found["noext"] == ""
    assert found["notes.txt"] == "not an image file"
    assert "symlink loop" in found["sub/up"]
    assert found["self.png"] == ""  # named like a scan: loading it says what is wrong
    with pytest.raises(ScanError, match="cannot read"):
        ScanFile(root / "self.png")


def test_walk_refuses_a_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        list(find_scans(tmp_path / "nope"))
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(InputError, match="not a folder"):
        list(find_scans(tmp_path / "file.png"))


def test_header_dimensions_of_every_format_match_the_decoded_image(tmp_path):
    image = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tif"):
        path = Path(tmp_path / f"d{ext}")
        cv2.imwrite(str(path), image)
        assert ScanFile(path).sizes == [(53, 37)], ext
