"""Where each postal convention puts the recipient's code, drawn on a ``Canvas``.

One function per convention (ENVELOPES.md's table). Each draws the address, the code
field and the distractors its ``opt`` dict switches on, and returns the field's box in
pixels (``None`` when ``code`` is empty: an envelope without a code).
Lengths are at the 1600 x 900 reference size; ``cv.p`` scales them.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipelines.envelope_draw import (
    INKS,
    ORANGE,
    RED,
    Box,
    Canvas,
    box_row,
    corner_marks,
    fill_boxes,
    freeform,
    postage_text,
    postmark,
    printed_in_boxes,
    stamp,
    text,
    ticks,
)

FR_NAMES = ("M. et Mme MARTIN", "Claire DUBOIS", "Jean LEROY", "Sophie BERNARD", "Paul GIRARD")
FR_STREETS = ("rue des Lilas", "avenue Jean Jaures", "bd Voltaire", "chemin du Moulin")
FR_TOWNS = ("LYON", "PARIS", "TOULOUSE", "NANTES", "LILLE", "BORDEAUX", "RENNES")
FR_EXTRA = ("BP 14", "CEDEX 9", "Bat. B Appt 12", "Residence les Pins")
CN_NAMES = ("ZHANG WEI SHOU", "LI NA SHOU", "WANG FANG SHOU", "LIU YANG SHOU")
CN_ADDR = ("BEIJING SHI HAIDIAN QU", "SHANGHAI SHI PUDONG XINQU", "GUANGZHOU SHI TIANHE QU")
CN_STREETS = ("ZHONGGUANCUN DAJIE", "CHAOYANG LU", "RENMIN LU")
JP_NAMES = ("YAMADA TARO SAMA", "SATO HANAKO SAMA", "SUZUKI ICHIRO SAMA")
JP_ADDR = ("TOKYO-TO CHIYODA-KU", "OSAKA-FU KITA-KU UMEDA", "KYOTO-SHI SAKYO-KU")
US_NAMES = ("JOHN SMITH", "Mary Johnson", "ROBERT BROWN", "Linda Garcia", "JAMES MILLER")
US_STREETS = ("MAIN ST", "Oak Avenue", "ELM ST APT 5", "Maple Drive", "PINE RD STE 200")
US_CITIES = (("SPRINGFIELD", "IL"), ("Portland", "OR"), ("AUSTIN", "TX"), ("Boston", "MA"),
             ("DENVER", "CO"))
HU_NAMES = ("Kovacs Janos", "Nagy Eva", "Toth Istvan", "Szabo Anna")
HU_TOWNS = ("Budapest", "Debrecen", "Szeged", "Pecs", "Gyor")
HU_STREETS = ("Fo utca", "Petofi Sandor u.", "Kossuth ter", "Ady Endre ut")


def _pick(rng: np.random.Generator, items: tuple) -> str:
    return items[int(rng.integers(len(items)))]


def _addr(cv: Canvas, s: str, x: float, y: float, cap: float) -> float:
    """An address line in this envelope's address style (printed or handwritten)."""
    return text(cv, s, x, y, cap, font=cv.addr_font, color=cv.addr_color)


def _street(cv: Canvas, opt: dict, x: float, y: float, cap: float, street: str,
            suffix: str = "") -> None:
    """A street line; its number, a classic distractor, is sometimes handwritten."""
    if not opt["street_numbers"]:
        _addr(cv, street + suffix, x, y, cap)
        return
    number = str(cv.rng.integers(1, 2000))
    if cv.rng.random() < 0.5:
        end = freeform(cv, number, x, y, cap * 1.1, record=False)
        _addr(cv, street + suffix, end + cap * 0.5, y, cap)
    else:
        _addr(cv, f"{number} {street}{suffix}", x, y, cap)


def _union(boxes: list[Box], pad: int = 0) -> Box | None:
    if not boxes:
        return None
    x0 = min(b[0] for b in boxes) - pad
    y0 = min(b[1] for b in boxes) - pad
    x1 = max(b[0] + b[2] for b in boxes) + pad
    y1 = max(b[1] + b[3] for b in boxes) + pad
    return (max(0, x0), max(0, y0), x1 - max(0, x0), y1 - max(0, y0))


def _sender_printed(cv: Canvas, x: float, y: float, lines: list[str]) -> None:
    """The sender's block: small, printed, with its own code (a distractor)."""
    font = _pick(cv.rng, (0, 2, 3))
    for k, line in enumerate(lines):
        text(cv, line, x, y + 26 * k, 16, font=font, color=(45, 45, 45))


def _postage(cv: Canvas, opt: dict, town: str, label: str) -> None:
    """Top-right corner: a stamp or a printed postage imprint, maybe cancelled."""
    x = cv.w / cv.s - cv.rng.uniform(190, 230)
    if opt["postage_text"]:
        postage_text(cv, x - 110, 50, label)
    elif opt["stamp"]:
        stamp(cv, x, 45)
    if opt["postmark"]:
        postmark(cv, x - 160, 170, town)


NOTES = (("Tel.", 10), ("Quartier:", 4), ("Ref", 6), ("Code porte", 4), ("Apt", 3))


def _note(cv: Canvas, opt: dict) -> None:
    """A handwritten note with digits (a phone number, a door code), often in pencil."""
    if not opt["notes"]:
        return
    label, n = NOTES[int(cv.rng.integers(len(NOTES)))]
    x, y = cv.rng.uniform(60, 200), cv.rng.uniform(240, 262)
    ink = cv.ink
    if cv.rng.random() < 0.6:
        cv.ink = INKS["pencil"]
    end = text(cv, label, x, y, 22)
    number = "".join(str(d) for d in cv.rng.integers(0, 10, n))
    freeform(cv, number, end + 12, y, 28, record=False)
    cv.ink = ink


def fr(cv: Canvas, code: str, opt: dict) -> Box | None:
    """Five orange boxes under the recipient's address, town on an orange line after."""
    rng = cv.rng
    x0, y0 = rng.uniform(560, 700), rng.uniform(290, 350)
    corner_marks(cv, x0 - 20, y0 - 20, 1540, 860, ORANGE)
    town = _pick(rng, FR_TOWNS)
    if opt["sender"]:
        sc = str(rng.integers(10000, 96000))
        _sender_printed(cv, 60, 70, ["Exp: " + _pick(rng, FR_NAMES),
                                     f"{rng.integers(1, 99)} {_pick(rng, FR_STREETS)}",
                                     f"{sc} {_pick(rng, FR_TOWNS)}"])
    _postage(cv, opt, town, "LA POSTE")
    _note(cv, opt)
    y = y0 + 70
    _addr(cv, _pick(rng, FR_NAMES), x0 + 30, y, 34)
    y += 70
    _street(cv, opt, x0 + 30, y, 30, _pick(rng, FR_STREETS))
    if rng.random() < 0.4:
        y += 65
        _addr(cv, _pick(rng, FR_EXTRA), x0 + 30, y, 28)
    by = y + 40
    cells = box_row(cv, x0 + 30, by, 5, 70, 90, 8, ORANGE)
    lx = x0 + 30 + 5 * 78 + 30
    cv_line = (cv.p(lx), cv.p(by + 90), cv.p(1500), cv.p(by + 90))
    cv2.line(cv.img, cv_line[:2], cv_line[2:], ORANGE, max(1, cv.p(2)))
    text(cv, town, lx + 20, by + 75, 36, color=cv.ink)
    if code:
        fill_boxes(cv, cells, code)
    if opt["barcode"]:
        ticks(cv, ORANGE)
    return _union(cells) if code else None


def cn(cv: Canvas, code: str, opt: dict) -> Box | None:
    """Six red boxes top left; the sender's six smaller boxes bottom right."""
    rng = cv.rng
    cells = box_row(cv, rng.uniform(50, 90), rng.uniform(45, 80), 6, 80, 100, 14, RED)
    if code:
        fill_boxes(cv, cells, code)
    if opt["stamp"]:
        stamp(cv, cv.w / cv.s - 200, 45)
    else:
        box_row(cv, cv.w / cv.s - 200, 45, 1, 140, 170, 0, RED, line=2)
    if opt["postmark"]:
        postmark(cv, cv.w / cv.s - 360, 170, "BEIJING")
    _note(cv, opt)
    _addr(cv, _pick(rng, CN_ADDR), rng.uniform(180, 260), 330, 34)
    _street(cv, opt, rng.uniform(180, 260), 400, 30, _pick(rng, CN_STREETS), " HAO")
    _addr(cv, _pick(rng, CN_NAMES), rng.uniform(450, 600), 540, 52)
    if opt["sender"]:
        _sender_printed(cv, 650, 700, [_pick(rng, CN_ADDR) + " " + _pick(rng, CN_STREETS)])
    if opt["sender_boxes"] or opt["sender"]:
        sx = cv.w / cv.s - 60 - 6 * 50
        text(cv, "YOUZHENG BIANMA", sx - 250, 825, 16, font=0, color=RED)
        small = box_row(cv, sx, 790, 6, 42, 52, 8, RED, line=2)
        if opt["sender_boxes"] == "printed":
            printed_in_boxes(cv, small, str(rng.integers(100000, 999999)))
    if opt["barcode"]:
        ticks(cv, RED)
    return _union(cells) if code else None


def jp(cv: Canvas, code: str, opt: dict) -> Box | None:
    """Seven red boxes (3 + hyphen + 4) top right; small sender boxes bottom left."""
    rng = cv.rng
    x = cv.w / cv.s - rng.uniform(50, 90) - (7 * 74 + 3 * 8)
    cells = box_row(cv, x, rng.uniform(45, 75), 7, 66, 90, 8, RED, hyphen_after=3)
    if code:
        fill_boxes(cv, cells, code)
    if opt["stamp"]:
        stamp(cv, 60, 45)
    if opt["postmark"]:
        postmark(cv, 300, 150, "TOKYO")
    _note(cv, opt)
    _addr(cv, _pick(rng, JP_ADDR), rng.uniform(220, 300), 360, 34)
    _street(cv, opt, rng.uniform(220, 300), 430, 30, "CHOME", f" {rng.integers(1, 30)}-"
            f"{rng.integers(1, 30)}")
    _addr(cv, _pick(rng, JP_NAMES), rng.uniform(420, 560), 580, 50)
    if opt["sender"]:
        _sender_printed(cv, 60, 740, [_pick(rng, JP_ADDR), _pick(rng, JP_NAMES)[:-5]])
    if opt["sender_boxes"] or opt["sender"]:
        small = box_row(cv, 60, 800, 7, 34, 44, 5, RED, hyphen_after=3, line=1.5)
        if opt["sender_boxes"] == "printed":
            printed_in_boxes(cv, small, str(rng.integers(1000000, 9999999)))
    if opt["barcode"]:
        ticks(cv, RED)
    return _union(cells) if code else None


def us(cv: Canvas, code: str, opt: dict) -> Box | None:
    """Free-form 'CITY ST 12345' (or ZIP+4) at the end of the recipient block."""
    rng = cv.rng
    city, state = US_CITIES[int(rng.integers(len(US_CITIES)))]
    if opt["sender"]:
        sc, sst = US_CITIES[int(rng.integers(len(US_CITIES)))]
        _sender_printed(cv, 60, 70, [_pick(rng, US_NAMES), f"{rng.integers(10, 9999)} "
                                     f"{_pick(rng, US_STREETS)}",
                                     f"{sc} {sst} {rng.integers(10000, 99999)}"])
    _postage(cv, opt, city.upper(), "USPS")
    _note(cv, opt)
    x, y = rng.uniform(480, 640), rng.uniform(400, 470)
    cap = rng.uniform(30, 38)
    _addr(cv, _pick(rng, US_NAMES), x, y, cap)
    _street(cv, opt, x, y + cap * 2.1, cap, _pick(rng, US_STREETS))
    y += cap * 4.2
    end = _addr(cv, f"{city} {state}", x, y, cap)
    if code:
        digits = code if len(code) == 5 else code[:5] + "-" + code[5:]
        freeform(cv, digits, end + cap * rng.uniform(0.6, 1.2), y, cap * rng.uniform(1.1, 1.4))
    if opt["barcode"]:
        ticks(cv, ORANGE if rng.random() < 0.5 else (40, 40, 40))
    return _union(cv.digit_boxes, cv.p(6)) if code else None


def hu(cv: Canvas, code: str, opt: dict) -> Box | None:
    """A free-form 4-digit code on its own line under the town, lower right."""
    rng = cv.rng
    town = _pick(rng, HU_TOWNS)
    if opt["sender"]:
        _sender_printed(cv, 60, 70, ["Felado: " + _pick(rng, HU_NAMES),
                                     f"{rng.integers(1000, 9999)} {_pick(rng, HU_TOWNS)}",
                                     f"{_pick(rng, HU_STREETS)} {rng.integers(1, 99)}."])
    _postage(cv, opt, town.upper(), "MAGYAR POSTA")
    _note(cv, opt)
    x, cap = rng.uniform(820, 960), rng.uniform(30, 36)
    _addr(cv, _pick(rng, HU_NAMES), x, 470, cap)
    _street(cv, opt, x, 545, cap, _pick(rng, HU_STREETS))
    end = _addr(cv, town, x, 620, cap * 1.15)
    if rng.random() < 0.5:  # an underlined town, as many people write it
        cv2.line(cv.img, (cv.p(x), cv.p(632)), (cv.p(end), cv.p(632)), cv.ink, max(1, cv.p(2)))
    if code:
        freeform(cv, code, x + rng.uniform(0, 60), 720, cap * rng.uniform(1.3, 1.7))
    if opt["barcode"]:
        ticks(cv, RED)
    return _union(cv.digit_boxes, cv.p(6)) if code else None


def digits(cv: Canvas, code: str, opt: dict) -> Box | None:
    """A lone row of handwritten digits on plain paper, sometimes on a white label."""
    rng = cv.rng
    height = rng.uniform(70, 120)
    # Room for wide handwriting: a person writing on a label keeps the digits on it.
    width = len(code) * height * 1.15 + 40
    x = rng.uniform(60, max(80, cv.w / cv.s - width - 60))
    y = rng.uniform(150 + height, cv.h / cv.s - 120)
    if rng.random() < 0.5:
        p0 = (cv.p(x - 50), cv.p(y - height - 60))
        p1 = (cv.p(x + width + 20), cv.p(y + 60))
        cv2.rectangle(cv.img, (p0[0] + 6, p0[1] + 6), (p1[0] + 6, p1[1] + 6), (150, 150, 150), -1)
        cv2.rectangle(cv.img, p0, p1, (250, 250, 250), -1)
    if opt["sender"]:
        text(cv, f"Ref. {rng.integers(100, 9999)}", 40, 50, 18, font=0, color=(60, 60, 60))
    if code:
        freeform(cv, code, x, y, height)
    return _union(cv.digit_boxes, cv.p(6)) if code else None


LAYOUTS: dict[str, Callable[[Canvas, str, dict], Box | None]] = {
    "fr": fr, "cn": cn, "jp": jp, "us": us, "us4": us, "hu": hu, "digits": digits,
}
