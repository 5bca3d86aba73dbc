"""Generate synthetic envelope images with known recipient postal codes (API and CLI).

    from pipelines.synth_envelopes import make_envelope
    env = make_envelope("69003", "fr", seed=1, condition="photo")
    env.image, env.code, env.field_box, env.digit_boxes

    python pipelines/synth_envelopes.py data/synth --count 200 --digits mnist-test

Conventions and conditions follow ../shared/ENVELOPES.md. Code digits are handwritten by a
``DigitSource``: the procedural pen model (default, safe to commit) or MNIST test digits
(``--digits mnist-test``; output must stay in ignored folders such as ``data/``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import envelope_conditions  # noqa: E402
from pipelines.envelope_conditions import CONDITIONS, map_box  # noqa: E402
from pipelines.envelope_draw import (  # noqa: E402
    HAND_FONTS,
    INKS,
    PAPERS,
    PRINTED_FONTS,
    Box,
    Canvas,
    DigitSource,
    new_canvas,
)
from pipelines.envelope_layouts import LAYOUTS  # noqa: E402
from pipelines.handwriting import ProceduralDigits, crop_tight  # noqa: E402

CONVENTIONS = ("fr", "cn", "jp", "us", "us4", "hu", "digits", "none")
CODED = tuple(c for c in CONVENTIONS if c != "none")
"""The conventions whose envelopes carry a code."""
CODE_LENGTHS = {"fr": (5,), "cn": (6,), "jp": (7,), "us": (5,), "us4": (9,), "hu": (4,),
                "digits": (4, 5, 6, 7, 8)}
SIZE = (1600, 900)
HIGHRES_SIZE = (4600, 2588)
DISTRACTORS = {"sender": 0.8, "postmark": 0.5, "stamp": 0.6, "barcode": 0.4,
               "street_numbers": 0.7, "postage_text": 0.3, "notes": 0.25}

__all__ = ["CODED", "CONDITIONS", "CONVENTIONS", "DigitSource", "Envelope", "MnistDigits",
           "ProceduralDigits", "envelope_seed", "make_envelope", "mnist_digits", "mnist_folder"]


@dataclass(frozen=True)
class Envelope:
    """One generated envelope image and the truth about it."""

    image: np.ndarray
    """The picture, BGR uint8, H x W x 3."""
    code: str
    """The recipient's code, digits only ('' when none should be read)."""
    convention: str
    """Which layout it follows: fr, cn, jp, us, us4, hu, digits or none."""
    condition: str
    """How it was captured: scan, photo, rotated, lowres, highres, binarised, faint, messy."""
    field_box: Box | None
    """(x, y, w, h) of the recipient's code in ``image`` (approximate for photos)."""
    digit_boxes: tuple[Box, ...] = ()
    """Each code digit's ink box in ``image``, left to right."""
    digit_sources: tuple[str, ...] = ()
    """Each code digit's glyph, as "split:index" into MNIST ('' from the procedural pen)."""


class MnistDigits:
    """Digit source backed by real MNIST handwriting (never commit what it produces)."""

    def __init__(self, mnist_dir: Path | str, split: str = "test", verify_md5: bool = True,
                 exclude: np.ndarray | None = None) -> None:
        from pipelines.mnist import load_split

        images, labels = load_split(Path(mnist_dir), split, verify_md5=verify_md5)
        self.images = images
        self.split = split
        self.last_source = ""
        """The glyph ``sample`` drew last, as "split:index" (``Envelope.digit_sources``)."""
        usable = np.ones(len(labels), dtype=bool)
        if exclude is not None:
            usable[exclude] = False  # e.g. the validation split the model is calibrated on
        self.by_digit = {d: np.flatnonzero((labels == d) & usable) for d in range(10)}

    def sample(self, digit: int, rng: np.random.Generator, height_px: int = 64,
               thickness: float | None = None, broken: float = 0.0) -> np.ndarray:
        """A random MNIST ``digit`` scaled smoothly to ``height_px`` tall, as ink alpha."""
        pool = self.by_digit[int(digit)]
        if len(pool) == 0:
            raise ValueError(f"the MNIST split holds no digit {digit}")
        index = int(pool[rng.integers(len(pool))])
        self.last_source = f"{self.split}:{index}"
        glyph = crop_tight(self.images[index], floor=30)
        f = height_px / glyph.shape[0]
        size = (max(1, int(round(glyph.shape[1] * f))), max(1, int(height_px)))
        alpha = cv2.resize(glyph, size, interpolation=cv2.INTER_CUBIC)
        if broken and rng.random() < broken:
            # A pen that skipped: cut a thin gap across the glyph.
            y = int(rng.uniform(0.3, 0.7) * alpha.shape[0])
            cv2.line(alpha, (0, y), (alpha.shape[1], y + int(rng.integers(-3, 4))), 0,
                     max(1, height_px // 14))
        return alpha


def mnist_digits(mnist_dir: Path | None, split: str) -> MnistDigits:
    """MNIST handwriting of one split (never commit what it draws).

    The training split leaves out train.py's validation images: the shipped model is
    calibrated on them, so they must stay unseen.

    Raises:
        SystemExit: No MNIST folder was given or found.
    """
    from pipelines.train import validation_indices

    return MnistDigits(mnist_folder(mnist_dir), split,
                       exclude=validation_indices() if split == "train" else None)


def mnist_folder(given: Path | None) -> Path:
    """``given``, else POSTREAD_MNIST_DIR or ../shared/data/mnist; SystemExit when none."""
    from pipelines.mnist import default_dir

    folder = given or default_dir()
    if folder is None:
        raise SystemExit("MNIST digits need --mnist DIR or POSTREAD_MNIST_DIR")
    return folder


def envelope_seed(seed: int, index: int) -> int:
    """The seed of envelope ``index`` in a set made with ``seed`` (sets never share one)."""
    return seed * 1_000_003 + index


def _random_code(convention: str, rng: np.random.Generator) -> str:
    n = int(rng.choice(CODE_LENGTHS[convention]))
    return "".join(str(d) for d in rng.integers(0, 10, n))


def _check_code(code: str, convention: str) -> str:
    digits = code.replace("-", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in CODE_LENGTHS[convention]:
        raise ValueError(f"code {code!r} does not fit convention {convention!r} "
                         f"(wants {CODE_LENGTHS[convention]} digits)")
    return digits


def _options(rng: np.random.Generator, options: dict) -> dict:
    known = set(DISTRACTORS) | {"sender_boxes", "rotation", "skew", "paper", "ink", "pen",
                                "address_style", "size", "distractors"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"make_envelope() got unknown options: {sorted(unknown)}")
    on = options.get("distractors", True)
    opt = {k: bool(options.get(k, on and rng.random() < p)) for k, p in DISTRACTORS.items()}
    boxes = options.get("sender_boxes")
    if boxes is None and on:
        boxes = ("empty", "printed", None)[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    opt["sender_boxes"] = boxes or None
    return opt


def make_envelope(code: str | None, convention: str, seed: int, *,
                  digits: DigitSource | None = None, condition: str = "scan",
                  **options: object) -> Envelope:
    """Draw one envelope whose recipient code is known.

    Args:
        code: The recipient's code (digits; '-' allowed for ZIP+4), or None for a random
            one of the convention's length. Ignored for ``none``.
        convention: One of ``CONVENTIONS``.
        seed: Everything random derives from it: same seed, same image.
        digits: Where handwritten code digits come from (default: procedural pen model).
        condition: One of ``CONDITIONS``.
        **options: Distractor switches (``sender``, ``postmark``, ``stamp``, ``barcode``,
            ``street_numbers``, ``postage_text``, ``notes``: bool, random by default;
            ``distractors`` False turns all off), ``sender_boxes`` ('empty' | 'printed' | None),
            ``rotation`` (degrees, alias ``skew``), ``paper`` (white | grey | buff),
            ``ink`` (black | blue | pencil), ``pen`` (width in px at 1600 px wide),
            ``address_style`` (printed | handwritten), ``size`` ((w, h) before capture).

    Returns:
        The image with its code, convention, condition and where the code is.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {CONVENTIONS}")
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {CONDITIONS}")
    rng = np.random.default_rng([seed, CONVENTIONS.index(convention),
                                 CONDITIONS.index(condition)])
    opt = _options(rng, options)
    layout = convention
    if convention == "none":
        layout = str(rng.choice(["fr", "cn", "jp", "us", "hu"]))
        code = ""
    elif code is None:
        code = _random_code(convention, rng)
    else:
        code = _check_code(code, convention)

    size = options.get("size") or (HIGHRES_SIZE if condition == "highres" else SIZE)
    paper = options.get("paper") or str(rng.choice(list(PAPERS), p=[0.6, 0.2, 0.2]))
    ink_name = options.get("ink") or str(rng.choice(list(INKS), p=[0.5, 0.35, 0.15]))
    handwritten = (options.get("address_style") or
                   ("handwritten" if rng.random() < 0.5 else "printed")) == "handwritten"
    ink = INKS[ink_name]
    hand_font = HAND_FONTS[int(rng.integers(len(HAND_FONTS)))]
    # Layouts are drawn in SIZE's units: scaled to fit the height as well as the width, so
    # that a wider envelope (a 300 dpi DL scan, 2800 x 1200) keeps its lower lines on it.
    scale = min(size[0] / SIZE[0], size[1] / SIZE[1])
    cv = Canvas(
        img=new_canvas(int(size[0]), int(size[1]), paper, rng), s=scale, rng=rng,
        digits=digits or ProceduralDigits(seed), ink=ink,
        pen=float(options.get("pen") or rng.uniform(2.5, 7.0)), hand_font=hand_font,
        messy=condition == "messy", faint=condition == "faint",
        addr_font=hand_font if handwritten else PRINTED_FONTS[int(rng.integers(4))],
        addr_color=ink if handwritten else (35, 35, 35),
    )
    field = LAYOUTS[layout](cv, code, opt)

    degrees = options.get("rotation", options.get("skew"))
    image, m = envelope_conditions.apply(condition, cv.img, rng,
                                         None if degrees is None else float(degrees))
    return Envelope(
        image=image, code=code, convention=convention, condition=condition,
        field_box=None if field is None else map_box(field, m, image.shape),
        digit_boxes=tuple(map_box(b, m, image.shape) for b in cv.digit_boxes) if code else (),
        digit_sources=tuple(cv.digit_sources) if code else (),
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="folder for the images and labels.csv")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--digits", choices=("procedural", "mnist-test", "mnist-train"),
                    default="procedural",
                    help="mnist-test: evaluation sets; mnist-train: training sets (the "
                         "training images minus train.py's validation split)")
    ap.add_argument("--mnist", type=Path, default=None, help="MNIST folder (for mnist-*)")
    ap.add_argument("--conventions", default=",".join(CONVENTIONS))
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--format", choices=("png", "jpg", "mixed"), default="mixed",
                    help="mixed: photos as JPEG, everything else PNG")
    return ap.parse_args(argv)


def _split(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise SystemExit(f"unknown {what}: {bad or value!r}; choose from {','.join(allowed)}")
    return items


def main(argv: list[str] | None = None) -> int:
    """Write ``--count`` envelopes and ``labels.csv`` into OUT_DIR."""
    args = _parse_args(argv)
    conventions = _split(args.conventions, CONVENTIONS, "convention")
    conditions = _split(args.conditions, CONDITIONS, "condition")
    source: DigitSource = ProceduralDigits(args.seed)
    if args.digits.startswith("mnist-"):
        source = mnist_digits(args.mnist, args.digits.removeprefix("mnist-"))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    with open(args.out_dir / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "code", "convention", "condition", "digit_sources"])
        for i in range(args.count):
            convention = conventions[i % len(conventions)]
            condition = str(rng.choice(conditions))
            env = make_envelope(None, convention, envelope_seed(args.seed, i), digits=source,
                                condition=condition)
            jpg = args.format == "jpg" or (args.format == "mixed" and condition == "photo")
            name = f"env_{i:05d}_{convention}_{condition}.{'jpg' if jpg else 'png'}"
            cv2.imwrite(str(args.out_dir / name), env.image)
            sources = ";".join(env.digit_sources) if any(env.digit_sources) else ""
            writer.writerow([name, env.code, convention, condition, sources])
            if (i + 1) % 50 == 0 or i + 1 == args.count:
                print(f"{i + 1}/{args.count} envelopes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
