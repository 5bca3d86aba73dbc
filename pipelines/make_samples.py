"""Rebuild the committed ``sample_scans/`` folder from the procedural handwriting model.

    python pipelines/make_samples.py [OUT_DIR]     # default: sample_scans/

Never uses MNIST: everything here is drawn by ``pipelines/handwriting.py`` and may be
committed. Writes the images, ``labels.csv`` (file,page,code) and nothing else; the README
table is kept by hand next to them (``--table`` prints its rows).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.synth_envelopes import make_envelope  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = (1200, 675)  # keeps the committed folder small; digits stay 40+ px tall


@dataclass(frozen=True)
class Sample:
    """One committed sample: how it is drawn and what it is for."""

    file: str
    convention: str
    code: str
    seed: int
    what: str
    condition: str = "scan"
    options: dict = field(default_factory=dict)


SAMPLES = (
    Sample("fr_scan.png", "fr", "69003", 11, "French 5 orange boxes, town after, sender's "
           "printed code, postage imprint", options={"sender": True, "postage_text": True}),
    Sample("cn_scan.png", "cn", "100081", 12, "Chinese 6 red boxes top left; sender's boxes "
           "bottom right hold a printed code", options={"sender_boxes": "printed"}),
    Sample("jp_scan.png", "jp", "1500042", 13, "Japanese 7 red boxes (3 + 4) top right; "
           "sender's small boxes empty", options={"sender_boxes": "empty", "stamp": True}),
    Sample("us_scan.png", "us", "02139", 14, "US free-form ZIP at the end of the last line; "
           "street number and sender's ZIP as distractors",
           options={"street_numbers": True, "sender": True, "postmark": True}),
    Sample("us4_scan.png", "us4", "945101234", 15, "US ZIP+4 written 94510-1234",
           options={"address_style": "handwritten", "ink": "blue"}),
    Sample("hu_scan.webp", "hu", "6722", 16, "Hungarian 4-digit code on its own line under "
           "the town (WebP file)", options={"paper": "buff"}),
    Sample("digits_label.png", "digits", "480715", 17, "a lone row of 6 digits on a label"),
    Sample("fr_photo.jpg", "fr", "31250", 18, "phone photo: desk around it, perspective, "
           "uneven light, blur, JPEG", condition="photo"),
    Sample("cn_photo.jpg", "cn", "518057", 19, "phone photo of a Chinese envelope",
           condition="photo"),
    Sample("jp_rotated.png", "jp", "0600808", 20, "rotated 7 degrees",
           condition="rotated", options={"rotation": 7}),
    Sample("us_binarised.png", "us", "60614", 21, "already binarised: white strokes on black",
           condition="binarised"),
    Sample("fr_tiny.png", "fr", "75011", 22, "400 x 200 thumbnail", condition="lowres",
           options={"size": (1600, 800), "rotation": 0}),
    Sample("cn_faint.png", "cn", "200433", 23, "thin, pale boxes; pale ink", condition="faint"),
    Sample("fr_messy.png", "fr", "13008", 24, "digits crossing box edges, broken strokes",
           condition="messy"),
    Sample("us_pencil.png", "us", "73301", 25, "pencil-grey handwriting on grey paper",
           options={"ink": "pencil", "paper": "grey"}),
    Sample("no_code.png", "none", "", 26, "an envelope with an address but no code: nothing "
           "should be read", options={"sender": True, "postmark": True}),
)
TIFF_PAGES = (
    Sample("two_pages.tif", "hu", "9021", 27, "multi-page TIFF, page 0: Hungarian scan",
           options={"size": (1000, 562)}),
    Sample("two_pages.tif", "digits", "53817", 28, "multi-page TIFF, page 1: binarised label",
           condition="binarised"),
)
CORRUPT = "corrupt.jpg"


def _draw(s: Sample):
    options = {"size": SMALL, **s.options}
    return make_envelope(s.code or None, s.convention, s.seed, condition=s.condition,
                         **options)


def build(out: Path) -> list[tuple[str, int, str, str]]:
    """Write every sample into ``out``; returns (file, page, code, what) rows."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in SAMPLES:
        env = _draw(s)
        assert env.code == s.code, (s.file, env.code)
        params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 85], ".png": [cv2.IMWRITE_PNG_COMPRESSION, 9],
                  ".webp": [cv2.IMWRITE_WEBP_QUALITY, 90]}[Path(s.file).suffix]
        cv2.imwrite(str(out / s.file), env.image, params)
        rows.append((s.file, 0, s.code, s.what))
    pages = [_draw(s) for s in TIFF_PAGES]
    cv2.imwritemulti(str(out / TIFF_PAGES[0].file), [p.image for p in pages],
                     [cv2.IMWRITE_TIFF_COMPRESSION, 8])  # deflate: keeps the repo small
    rows += [(s.file, k, s.code, s.what) for k, s in enumerate(TIFF_PAGES)]
    # A truncated JPEG: the header decodes, the data stops early, as from a failed upload.
    ok, buf = cv2.imencode(".jpg", _draw(SAMPLES[0]).image)
    (out / CORRUPT).write_bytes(buf.tobytes()[: len(buf) // 3])
    rows.append((CORRUPT, 0, "", "truncated JPEG: must fail with a reason, batch goes on"))
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "page", "code"])
        writer.writerows(r[:3] for r in rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Build the samples; ``--table`` prints README rows to stdout."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "sample_scans")
    ap.add_argument("--table", action="store_true", help="print the README table rows")
    args = ap.parse_args(argv)
    rows = build(args.out_dir)
    print(f"wrote {len(rows)} samples to {args.out_dir}", file=sys.stderr)
    if args.table:
        for file, page, code, what in rows:
            name = f"`{file}` page {page}" if file.endswith(".tif") else f"`{file}`"
            print(f"| {name} | {what} | {code or '(none)'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
