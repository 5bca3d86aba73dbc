"""The working view used to locate fields: upright, paper-only, ~1200 px, with its ink maps.

Location works on one normalised picture of the envelope whatever the input: binarised
images are inverted, phone photos are cut down to the paper, a tilt of a few degrees is
straightened, and the size is brought to a fixed long side so that every size threshold
in the locators is in the same units. ``View.to_scan`` maps working pixels back to scan
pixels so that fields are reported (and cut at full resolution) in scan coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from postread.records import RowTraits

WORK_LONG_SIDE = 1200
"""Long side of the working view in pixels."""
MAX_SKEW_DEG = 10.0
"""Largest tilt the deskew search considers (larger rotations are not straightened)."""
PAPER_MAX_COSINE = 0.4
"""A photographed sheet's corners are within about 23 degrees of square."""
PAPER_MAX_ASPECT = 3.0
"""An envelope's long side is at most about 2.4 times its short side (C6 1.4, DL 2.0, US
#10 2.3); a brighter region longer than this is an address label, not the paper."""
BOX_LINE_MIN = 50
"""Shortest straight ink run (working pixels) taken for a box outline in colourless scans."""
PALE_BELOW = 2.0
"""Pale strokes are sought when Otsu's ink level is this many times the floor (bold print
beside the pale ink); below it, Otsu already keeps everything above the floor."""
PALE_CORE, PALE_MIN_CORE = 2.0, 5
"""A pale mark has at least this many pixels this many times darker than the floor: paper
texture and a scanner's edge shadow stay just above the floor (up to ~35 levels in the
cases looked at), pencil strokes reach 60-90."""
PALE_STRONG_SHARE = 0.3
"""A pale region this much of which is strong ink is the soft rim of a strong stroke."""
PALE_MIN_HEIGHT, PALE_MAX_HEIGHT = 0.008, 0.2
"""Pale marks kept are character-sized (shares of the view's height and width)."""
INK_FLOOR = 30.0
"""The least darkness below the paper (red channel) that a field's ink reaches. A crop's
ink level is Otsu's, which in an empty box finds whatever is darkest: a photo's paper
texture or JPEG ringing beside the printed outline, 15-25 levels, read as a stray 1 (at
20, an empty recipient's row then held a sure-looking sender's code). Pencil reaches 60-90."""
FAINT_PRINT_EXCESS = 8
"""Redness above the paper's that counts as printed box colour when looking for boxes."""


@dataclass(frozen=True)
class View:
    """The envelope as the locators see it."""

    to_scan: np.ndarray
    """3 x 3 homography from working pixels to scan pixels."""
    inverted: bool
    """True when the scan was white-on-black and has been inverted."""
    notes: tuple[str, ...]
    """What was done to the scan, for the fields' evidence."""
    ink: np.ndarray
    """Working-size uint8 mask, 255 = dark ink (box colours dropped out); its shape is the
    working view's (long side ~WORK_LONG_SIDE)."""
    boxes: np.ndarray
    """Working-size uint8 mask, 255 = red/orange printed colour (boxes, stamps, ticks)."""
    colourless: bool = False
    """No printed colour at all: ``boxes`` holds straight ink lines instead."""
    darkness: np.ndarray | None = None
    """Working-size uint8 darkness below the paper (``ink_darkness``): pale ink shows here
    even where Otsu's ``ink`` split (set by the darkest print) leaves it out."""


def is_binarised_negative(image: np.ndarray) -> bool:
    """True for an already-binarised scan with white strokes on a black ground (BGR or grey)."""
    gray = _gray(image)
    # One histogram instead of three full-size comparisons (a photo has 12 Mpx).
    counts = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    extreme = (counts[:40].sum() + counts[216:].sum()) / gray.size
    return bool(extreme > 0.95 and counts[:128].sum() / gray.size > 0.6)


def box_colour_mask(image_bgr: np.ndarray, min_excess: int = 20) -> np.ndarray:
    """255 where a pixel is clearly redder than the paper (red/orange boxes, stamps, ticks)."""
    return excess_mask(redness_excess(image_bgr), min_excess)


def redness_excess(image_bgr: np.ndarray) -> np.ndarray:
    """Redness above the paper's own, clipped at 0 (uint8), thresholded by ``excess_mask``.

    The paper's redness: buff or tinted paper has some of its own. One median over the
    whole image is the paper's in a scan, but in a photo where a grey or green desk fills
    much of the frame it is the desk's, and a buff envelope then reads as red print from
    edge to edge. Paper is the bright part of a photo: the median is taken over the pixels
    brighter than Otsu's split of the brightness.
    """
    return _redness_excess(*cv2.split(image_bgr))


def _redness_excess(blue: np.ndarray, green: np.ndarray, red_channel: np.ndarray) -> np.ndarray:
    """``redness_excess`` from the image's three channels (uint8, already split)."""
    # max(G, B) serves both the redness R - max(G, B) and the brightness (max of all three).
    others = cv2.max(blue, green)
    bright = cv2.max(others, red_channel)
    level, paper = cv2.threshold(bright, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    counts = _redness_counts(red_channel, others, paper)
    if counts.sum() <= 0.1 * others.size:
        counts = _redness_counts(red_channel, others, None)
    tint = _hist_median(counts, -255)
    if tint >= 0:
        # R - (max(G, B) + tint) in two saturating uint8 steps: exact once clipped at 0
        # (where the first saturates, R is below it anyway).
        return cv2.subtract(red_channel, cv2.add(others, tint))
    redness = cv2.subtract(red_channel, others, dtype=cv2.CV_16S) - np.int16(tint)
    return np.clip(redness, 0, 255).astype(np.uint8)


def _redness_counts(red_channel: np.ndarray, others: np.ndarray,
                    mask: np.ndarray | None) -> np.ndarray:
    """Count of each redness R - max(G, B), index 0 = -255, under ``mask``.

    On a working view a joint histogram of the two uint8 images, summed along its
    diagonals, is a third of the cost of a 511-bin histogram of the int16 difference;
    on a field's crop its fixed cost (~0.07 ms) is more than the whole 511-bin one.
    Both count the same integers.
    """
    if red_channel.size < 100_000:
        red = cv2.subtract(red_channel, others, dtype=cv2.CV_16S)
        shifted = (red + 255).astype(np.uint16)
        return cv2.calcHist([shifted], [0], mask, [511], [0, 511]).ravel()
    joint = cv2.calcHist([red_channel, others], [0, 1], mask, [256, 256], [0, 256, 0, 256])
    # Row r holds R = r with max(G, B) reversed, so r - m + 255 is r + column. Rows padded
    # to 512 and read back 511 wide shift row r right by r: each column is one redness.
    padded = np.zeros((256, 512), np.float32)
    padded[:, :256] = joint[:, ::-1]
    return padded.ravel()[:256 * 511].reshape(256, 511).sum(axis=0, dtype=np.float64)


def excess_mask(excess: np.ndarray, min_excess: int = 20) -> np.ndarray:
    """255 where ``redness_excess`` is above ``min_excess`` (see ``box_colour_mask``)."""
    return cv2.compare(excess, min_excess, cv2.CMP_GT)  # 255 / 0, in one pass


def _hist_median(counts: np.ndarray, first: int = 0) -> int:
    """``int(np.median(values))`` of the integers counted in ``counts`` (index 0 = ``first``)."""
    cumulative = np.cumsum(counts)
    n = int(cumulative[-1])

    def kth(k: int) -> int:  # the k-th smallest value, 0-based
        return int(np.searchsorted(cumulative, k + 1)) + first

    return int(kth(n // 2) if n % 2 else (kth(n // 2 - 1) + kth(n // 2)) / 2)


def ink_darkness(red: np.ndarray) -> np.ndarray:
    """How many levels darker than the paper each pixel of the red channel is (uint8).

    The red channel is the scanner's classic drop-out channel: red and orange print is
    as bright as paper there, while black, blue and pencil ink stay dark.
    """
    height, width = red.shape
    # A grey closing removes strokes thinner than the kernel and leaves the paper level,
    # which follows uneven light and shadows in photos. The level is smooth, so it is
    # found at a quarter of the size (a full-size closing and blur cost 5x the decode).
    # OpenCV's area path is 3x faster for a factor of exactly 4 (fx=0.25, ~0.4 ms less),
    # but its level then sits a fraction of a pixel elsewhere: tried, 3 reads on the six
    # evaluation sets broke and none mended (photos, where shadows make the level vary).
    small = cv2.resize(red, (max(1, width // 4), max(1, height // 4)),
                       interpolation=cv2.INTER_AREA).astype(np.float32)
    size = max(5, (min(small.shape) // 8) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    paper = cv2.GaussianBlur(cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel), (0, 0), size / 3)
    # Whole levels at full size: a third of the cost of float there, and the subtraction
    # saturates at 0 (max(paper - red, 0)) by itself.
    paper = cv2.resize(np.rint(paper).astype(np.uint8), (width, height),
                       interpolation=cv2.INTER_LINEAR)
    return cv2.subtract(paper, red)


def ink_mask(boxes: np.ndarray, dark: np.ndarray, pale: bool = True) -> np.ndarray:
    """Binary ink (255) by Otsu on the darkness (``ink_darkness``), red/orange print removed.

    With ``pale``, marks drawn wholly in pale ink are kept too (``_pale_strokes``).
    """
    peak = max(float(dark.max()), 1.0)
    # Stretched to 0..255 by a lookup table (whole levels in, whole levels out).
    scaled = cv2.LUT(dark, (np.arange(256) * (255.0 / peak)).clip(0, 255)
                     .astype(np.uint8))
    level, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # Otsu alone splits faint paper texture when there is little ink: keep a floor.
    floor = 25.0 * 255.0 / peak
    # On whole levels "above a float level" is "above its floor", which cv2.threshold does.
    _, mask = cv2.threshold(scaled, max(level, floor), 255, cv2.THRESH_BINARY)
    if pale and level > PALE_BELOW * floor:
        _pale_strokes(scaled, floor, mask)
    return cv2.bitwise_and(mask, cv2.compare(boxes, 0, cv2.CMP_EQ))  # boxes dropped


def _pale_strokes(scaled: np.ndarray, floor: float, mask: np.ndarray) -> None:
    """Add to ``mask`` the marks drawn wholly in pale ink (a pencil code beside bold print).

    Otsu splits the page's darkest ink from the rest, and beside bold black print a code
    in pencil falls below its level entirely (on 1,000 generated envelopes, 8 codes were
    never seen). A pale mark is a region above the floor with a darker core (noise has
    none) that is mostly not strong ink (the soft rim of a strong stroke is).
    """
    _, core = cv2.threshold(scaled, PALE_CORE * floor, 255, cv2.THRESH_BINARY)
    # Most pages have no pale mark: every dark core pixel is then a strong stroke's or
    # its one-pixel rim's. Only a page with enough core beyond that needs the components
    # (1.6 ms of a scan's ~28 ms of reading; skipped on half to three quarters of scans).
    # Two pixels of rim was too wide: a thin pencil code flecked with strong pixels went
    # unseen.
    beside = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    if cv2.countNonZero(cv2.subtract(core, beside)) < PALE_MIN_CORE:
        return
    _, pale = cv2.threshold(scaled, floor, 255, cv2.THRESH_BINARY)
    count, labels, stats, _ = components_with_stats(pale)
    area, heights, widths = (stats[:, cv2.CC_STAT_AREA], stats[:, cv2.CC_STAT_HEIGHT],
                             stats[:, cv2.CC_STAT_WIDTH])
    strong = np.bincount(labels[mask > 0], minlength=count)
    cores = np.bincount(labels[core > 0], minlength=count)
    height, width = mask.shape
    keep = ((strong < PALE_STRONG_SHARE * area) & (cores >= PALE_MIN_CORE)
            & (heights >= PALE_MIN_HEIGHT * height) & (heights <= PALE_MAX_HEIGHT * height)
            & (widths <= PALE_MAX_HEIGHT * width))
    keep[0] = False
    # Painted mark by mark: there are few, and a lookup over the whole view costs more.
    for index in np.flatnonzero(keep):
        x, y, w, h = stats[index, :4]
        window = mask[y:y + h, x:x + w]
        window[labels[y:y + h, x:x + w] == index] = 255


def _gray(image: np.ndarray) -> np.ndarray:
    """A BGR image in grey; a grey one as it is (make_view converts once for two uses)."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _scale_matrix(factor: float) -> np.ndarray:
    return np.diag([factor, factor, 1.0])


def find_paper(image: np.ndarray) -> np.ndarray | None:
    """The paper's four corners (TL, TR, BR, BL) when a photo (BGR or grey) shows background.

    The paper is the largest bright region (Otsu's split). On a light desk that region
    may take part of the desk with it and be no four-cornered sheet; brighter levels
    are then tried, and the first that gives a sheet wins. When none does, the image is
    left as it is: warping a region that is no sheet (a label, paper and desk together)
    skews and crops the envelope, which costs more than background left around it.
    """
    gray = _gray(image)
    # Most input is a flat scan, paper to its edges. A glance at a quarter of the size
    # tells it for a tenth of the cost; its paper share runs a point below the full
    # size's (never above it by more than 0.001 on 800 development envelopes).
    glance = cv2.resize(gray, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    blur = cv2.GaussianBlur(glance, (0, 0), 0.75)
    otsu, _ = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if _largest_bright(blur, otsu, 4)[1] >= 0.95:
        return None
    blur = cv2.GaussianBlur(gray, (0, 0), 3)
    otsu, _ = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    levels = [otsu]
    for step in range(4):
        if step == 1:  # the brighter levels, only needed when Otsu's region is no sheet
            top = float(np.percentile(blur, 95))
            levels = np.linspace(otsu, max(otsu, top - 10), 4)  # starts at otsu exactly
        paper, share = _largest_bright(blur, levels[step], 15)
        if paper is None:
            break
        # Paper filling the frame is a scan; a small bright blob is not an envelope.
        if step == 0 and not 0.15 < share < 0.9:
            return None
        if not 0.15 < share < 0.9:
            continue
        corners = _sheet_corners(cv2.convexHull(paper), cv2.contourArea(paper),
                                 min(gray.shape), box_fallback=True)
        if corners is not None:
            return corners
    return _outlined_sheet(gray)


def _outlined_sheet(gray: np.ndarray) -> np.ndarray | None:
    """The paper's corners from its outline, where no brightness level cuts it out whole.

    A shadow across a photographed envelope (the phone, a hand) darkens part of the paper
    below the desk beside the lit part, so no one level splits paper from desk; the edge
    between them stays sharp where the shadow's own edge is soft. The largest closed
    outline that makes a sheet is taken.
    """
    blur = cv2.GaussianBlur(gray, (0, 0), 2)
    high, _ = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edges = cv2.dilate(cv2.Canny(blur, 0.25 * high, 0.5 * high), np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(edges, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for outline in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
        area = cv2.contourArea(outline)
        if not 0.15 < area / gray.size < 0.95:
            continue
        corners = _sheet_corners(cv2.convexHull(outline), area, min(gray.shape),
                                 box_fallback=False)
        if corners is not None:
            return corners
    return None


def _sheet_corners(hull: np.ndarray, area: float, frame: int,
                   box_fallback: bool) -> np.ndarray | None:
    """A region's hull as a sheet's four corners (TL, TR, BR, BL), or None if it is none.

    A hull that does not simplify to four corners is taken as its smallest enclosing
    rectangle with ``box_fallback`` (a bright region's ragged edge), else given up.
    """
    quad = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    if len(quad) != 4:
        if not box_fallback:
            return None
        quad = cv2.boxPoints(cv2.minAreaRect(hull))
    corners = _order_corners(quad.reshape(4, 2).astype(np.float32))
    return corners if _sheet_like(corners, area, frame) else None


def _largest_bright(blur: np.ndarray, level: float, close: int) -> tuple[np.ndarray | None, float]:
    """The largest region brighter than ``level`` (gaps up to ``close`` closed); its share."""
    bright = (blur > level).astype(np.uint8) * 255
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((close, close), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None, 0.0
    largest = max(contours, key=cv2.contourArea)
    return largest, cv2.contourArea(largest) / float(blur.size)


def _sheet_like(corners: np.ndarray, area: float, frame: int) -> bool:
    """Whether a quadrilateral can be a photographed envelope.

    Long sides, near-right corners, filled, and no more elongated than an envelope.
    """
    sides = [float(np.linalg.norm(corners[k] - corners[k - 1])) for k in range(4)]
    if (sides[0] + sides[2]) > PAPER_MAX_ASPECT * (sides[1] + sides[3]) or \
            (sides[1] + sides[3]) > PAPER_MAX_ASPECT * (sides[0] + sides[2]):
        return False
    for k in range(4):
        a, b = corners[k - 1] - corners[k], corners[(k + 1) % 4] - corners[k]
        if min(np.linalg.norm(a), np.linalg.norm(b)) < 0.2 * frame:
            return False
        cosine = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        if abs(cosine) > PAPER_MAX_COSINE:
            return False
    return area > 0.9 * cv2.contourArea(corners)


def _order_corners(points: np.ndarray) -> np.ndarray:
    """The corners as TL, TR, BR, BL.

    Walking round the centre keeps four distinct corners: picking each by the extremes of
    x + y and y - x can take one point twice on a tilted sheet.
    """
    centre = points.mean(axis=0)
    ring = points[np.argsort(np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0]))]
    return np.roll(ring, -int(np.argmin(ring.sum(axis=1))), axis=0).astype(np.float32)


def _paper_homography(corners: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Homography from the photo to an upright paper rectangle, and that rectangle's size."""
    tl, tr, br, bl = corners
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    return cv2.getPerspectiveTransform(corners, target), (int(round(width)), int(round(height)))


def skew_angle(ink: np.ndarray) -> float:
    """Tilt in degrees that maximises the sharpness of the ink's row profile.

    Whole degrees are tried on the ink at a quarter of the working size, fifths of a
    degree around the best on the ink at half size (the search's cost is the turning of
    the ink: the coarse search at half size was a tenth of a scan's reading time).
    Projecting the ink's pixels onto the turned rows instead (one bincount for all
    angles) is 1.9 ms a scan cheaper, but its rounding picks other near-ties of the
    noisy profile: tried twice (ab78251, dcdba83), it cost 0.2-0.3 points exact on both
    fresh sets each time, and was reverted.
    """
    if not ink.any():
        return 0.0  # nothing to level (every angle would tie, and the first is -10 deg)
    half = cv2.resize(ink, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    quarter = cv2.resize(half, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    coarse = max(np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 0.1, 1.0),
                 key=lambda angle: _sharpness(quarter, angle))
    return float(max(np.arange(coarse - 1, coarse + 1.01, 0.2),
                     key=lambda angle: _sharpness(half, angle)))


def _sharpness(ink: np.ndarray, angle: float) -> float:
    """How sharp the row profile of ``ink`` turned by ``angle`` is (sum of squared steps)."""
    centre = (ink.shape[1] / 2, ink.shape[0] / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    turned = cv2.warpAffine(ink, matrix, ink.shape[::-1], flags=cv2.INTER_NEAREST)
    # Row sums in int32 (exact) are quicker than numpy's sum to float64.
    profile = cv2.reduce(turned, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    return float(np.sum(np.diff(profile.astype(np.float64)) ** 2))


def _ink_maps(image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Redness excess, darkness and the ink mask of one picture, from one channel split.

    Redness and darkness are worked out once per picture and thresholded as needed. The
    mask leaves pale strokes out: it is only measured for the skew.
    """
    blue, green, red = cv2.split(image_bgr)
    excess, darkness = _redness_excess(blue, green, red), ink_darkness(red)
    return excess, darkness, ink_mask(excess_mask(excess), darkness, pale=False)


def make_view(image_bgr: np.ndarray) -> View:
    """Normalise a scan for location: invert, downscale, crop to paper, straighten."""
    notes = []
    height, width = image_bgr.shape[:2]
    factor = WORK_LONG_SIDE / max(height, width)
    # Area averaging only where it matters: below half size, where bilinear would skip
    # pixels (aliasing). Above it bilinear reads every pixel anyway, at a quarter of the
    # cost of OpenCV's area path for non-integer factors (~7 ms -> ~1.6 ms on a 300 dpi
    # scan decoded at half size).
    interpolation = (cv2.INTER_AREA if factor < 0.5 else
                     cv2.INTER_LINEAR if factor < 1 else cv2.INTER_CUBIC)
    small = cv2.resize(image_bgr, None, fx=factor, fy=factor, interpolation=interpolation)
    # Judged and inverted at working size: the same shares of dark and light, at a
    # fraction of the pixels (a photo decoded at 2000 px has 2.8 times as many).
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    inverted = is_binarised_negative(gray)
    if inverted:
        small = 255 - small
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        notes.append("binarised negative inverted")
    to_small = _scale_matrix(factor)
    warp, size = np.eye(3), (small.shape[1], small.shape[0])
    corners = find_paper(gray)
    if corners is not None:
        warp, size = _paper_homography(corners)
        notes.append("envelope cut out of the photo background")
    # A flat scan needs no warp (an identity warp copies the pixels exactly).
    upright = small if corners is None else cv2.warpPerspective(
        small, warp, size, borderValue=(255, 255, 255))
    excess, darkness, ink = _ink_maps(upright)
    angle = skew_angle(ink)
    if abs(angle) >= 0.4:
        centre = (size[0] / 2, size[1] / 2)
        rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)
        warp = np.vstack([rotation, [0, 0, 1]]) @ warp
        # The maps are turned rather than the picture (turning it and working its maps
        # out again cost three times as much). What turns in from outside is paper: no
        # redness, no darkness.
        # Turning the finished masks instead, nearest pixel, is cheaper still but moved
        # field edges on binarised and low-resolution scans (-1.2 points exact on dev600).
        excess = cv2.warpAffine(excess, rotation, size, flags=cv2.INTER_LINEAR)
        darkness = cv2.warpAffine(darkness, rotation, size, flags=cv2.INTER_LINEAR)
        notes.append(f"straightened {angle:+.1f} deg")
    ink = ink_mask(excess_mask(excess), darkness)
    # Faint boxes differ from the paper by only a few levels of redness; scans have almost
    # no redness noise, and only box-shaped holes count, so a low threshold is safe here.
    boxes = excess_mask(excess, FAINT_PRINT_EXCESS)
    colourless = not boxes.any()
    if colourless:
        # No colour to drop out (a binarised or grey scan): boxes are straight ink lines.
        # Thin printed boxes come out dotted in a binarised scan and greyed at this size,
        # below Otsu's ink level, and a French row is not found (so for the 5 of the 11
        # binarised French envelopes read wrong over the seven evaluation sets that were
        # looked at). The darkness keeps them (above ~40 levels), but lines sought in it
        # found a row in 2 of those 5, of 4 misplaced boxes, not 5 (and as the rows'
        # outline evidence too, in 1).
        boxes = outline_lines(ink, BOX_LINE_MIN)
        notes.append("no colour: boxes sought as straight lines")
    return View(to_scan=np.linalg.inv(warp @ to_small), inverted=inverted,
                notes=tuple(notes), ink=ink, boxes=boxes, colourless=colourless,
                darkness=darkness)


@dataclass(frozen=True)
class Found:
    """A field candidate in working-view pixels, before it is mapped back to the scan."""

    rect: tuple[int, int, int, int]
    """The field's (x, y, w, h) in the working view, margins for overhanging ink included."""
    kind: str
    """``boxes`` or ``freeform`` (the FieldKind value)."""
    score: float
    """0..1, higher = more likely the recipient's code."""
    evidence: str
    """Why it was found and scored so."""
    cells: tuple[tuple[int, int, int, int], ...] = ()
    """Box rows: each box (x, y, w, h) in the working view; free-form: each digit's ink box."""
    row: RowTraits = RowTraits()
    """Free-form: what was seen of the row, handed on to its ``CodeField``."""


def mend_across(ink: np.ndarray, line: np.ndarray, kernel: tuple[int, int]) -> None:
    """Put back, in place, a removed ``line``'s pixels where a stroke crosses it.

    A stroke crosses where ``ink`` lies on both sides of the line within ``kernel``
    (rows, columns): a digit the line ran through is one mark again, and the line where
    nothing crosses it stays out. It is a closing across the gap, kept on the line's
    pixels only (on grey ink, at the fainter side's level).
    """
    taken = line > 0
    ink[taken] = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones(kernel, np.uint8))[taken]


def line_mask(ink: np.ndarray, length: int) -> np.ndarray:
    """Straight horizontal and vertical runs of ink at least ``length`` long (box outlines).

    Thin printed lines come out of a binarisation dotted, so gaps up to an eighth of
    ``length`` along the line are bridged first; only runs along one axis are bridged,
    which leaves handwriting (curved, slanted) as it was.
    """
    across, down = _straight_runs(ink, length)
    return across | down


def _straight_runs(ink: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical runs at least ``length`` long, gaps of ``_gap`` bridged."""
    length, bridge = max(3, int(length)), _gap(length)
    across = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((1, bridge), np.uint8))
    across = long_runs(across, length, 1)
    down = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((bridge, 1), np.uint8))
    down = long_runs(down, length, 0)
    return across, down


def _gap(length: int) -> int:
    """The longest gap bridged along a straight line of ``length``: an eighth of it."""
    return max(1, int(length) // 8)


def long_runs(ink: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Ink in straight runs of at least ``length`` along rows (``axis`` 1) or columns (0).

    An opening with a one-pixel-thin kernel works on each row (column) alone, so only
    rows holding enough ink for such a run are opened: a few, against the whole view
    (``ink`` is 0 / 255, as the counts of full pixels that decide it assume).
    Runs touching the image's edge need only half the length (the edge counts as ink),
    hence the half; the result is the whole opening's, pixel for pixel.
    """
    kernel = np.ones((1, length) if axis == 1 else (length, 1), np.uint8)
    counts = cv2.reduce(ink, axis, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    lines = np.flatnonzero(counts >= 255 * (length // 2))
    runs = np.zeros_like(ink)
    if lines.size and axis == 1:
        runs[lines] = cv2.morphologyEx(ink[lines], cv2.MORPH_OPEN, kernel)
    elif lines.size:
        runs[:, lines] = cv2.morphologyEx(ink[:, lines], cv2.MORPH_OPEN, kernel)
    return runs


def outline_lines(ink: np.ndarray, length: int) -> np.ndarray:
    """Straight lines that can belong to box outlines: each meets a line across it at an end.

    A box's top and bottom lines end at its sides (and the sides at them), while a
    digit's straight bar (the top of a 7, the base of a 2) floats inside the box; taken
    for an outline, such a bar would split the box's hole in two.
    """
    across, down = _straight_runs(ink, length)
    bridge = _gap(length)  # an end meets a line across it as far off as a line's gap
    return _meeting(across, down, 1, bridge) | _meeting(down, across, 0, bridge)


def _meeting(own: np.ndarray, other: np.ndarray, axis: int, bridge: int) -> np.ndarray:
    """The lines of ``own`` (along ``axis``) with an end within ``bridge`` of ``other``'s."""
    lines = np.zeros(own.shape, np.uint8)
    # Labelled within the lines' bounding box only: a scan has few long lines, often none,
    # and labelling the whole view cost ~1 ms a direction. Coordinates below are the box's.
    left, top, width, height = cv2.boundingRect(own)
    if not width:
        return lines
    window = (slice(top, top + height), slice(left, left + width))
    # ``other`` grown by ``bridge``, worked out only where the window needs it: within
    # ``bridge`` of it.
    y0, x0 = max(0, top - bridge), max(0, left - bridge)
    around = other[y0:top + height + bridge, x0:left + width + bridge]
    reach = np.ones((2 * bridge + 1, 2 * bridge + 1), np.uint8)
    grown = cv2.dilate(around, reach) > 0
    near = grown[top - y0:top - y0 + height, left - x0:left - x0 + width]
    kept = lines[window]
    count, labels, stats, _ = components_with_stats(own[window])
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        if axis == 1:  # horizontal: its left or right end meets a vertical line
            ends = (near[y:y + h, x:x + bridge + 1], near[y:y + h, x + w - bridge - 1:x + w])
        else:  # vertical: its top or bottom end meets a horizontal line
            ends = (near[y:y + bridge + 1, x:x + w], near[y + h - bridge - 1:y + h, x:x + w])
        if any(end.any() for end in ends):
            # The kept line's pixels, looked up within its own box only.
            box = (slice(y, y + h), slice(x, x + w))
            kept[box][labels[box] == label] = 255
    return lines


def components_with_stats(binary: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats`` (8-connected), 16-bit labels where they fit.

    The same components and stats; with uint16 labels OpenCV takes a third of the time on
    a working view (2.5 -> 0.8 ms). Every component has a pixel, so fewer than 65535 ink
    pixels cannot overflow the labels.
    """
    ltype = cv2.CV_16U if cv2.countNonZero(binary) < 65535 else cv2.CV_32S
    return cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, ltype, cv2.CCL_DEFAULT)


def soft_ink(crop_bgr: np.ndarray, line_length: int | None = None,
             outlines: np.ndarray | None = None) -> np.ndarray:
    """Anti-aliased ink strength of a small crop: 0 paper, 255 the ink's core, print dropped.

    Grey levels are kept (not a hard threshold) because the classifier was trained on
    MNIST's anti-aliased strokes. Printed boxes are dropped by their colour or, in a
    colourless (binarised) scan, as straight lines at least ``line_length`` long; when
    ``outlines`` (a bool mask of where the box outlines run) is given, only lines there
    are dropped, so that thick strokes and digits' straight bars stay whole.
    """
    red = crop_bgr[:, :, 2].astype(np.float32)
    printed = box_colour_mask(crop_bgr) > 0
    if line_length:
        dark = (red < np.percentile(red, 80) - 40).astype(np.uint8) * 255
        found = line_mask(dark, line_length)
        lines = cv2.dilate(found, np.ones((3, 3), np.uint8)) > 0
        lines &= ~_strokes_along(dark, found, line_length)
        if outlines is None:
            printed |= lines
        else:
            # Pieces of a dotted outline too short for a line lie wholly along it.
            printed |= (lines & outlines) | _within(dark, outlines)
    dark = np.clip(_paper_level(red, printed) - red, 0, None)
    dark[printed] = 0
    scaled = np.clip(dark * (255.0 / max(float(dark.max()), 1.0)), 0, 255).astype(np.uint8)
    level, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(float(level) * float(dark.max()) / 255.0, INK_FLOOR)
    strokes = dark[dark > level]
    if strokes.size == 0:
        return np.zeros(red.shape, np.uint8)
    low, core = 0.6 * level, max(float(np.percentile(strokes, 60)), level + 1.0)
    soft = (np.clip((dark - low) / (core - low), 0, 1) * 255).astype(np.uint8)
    return _bridge_print(soft, printed)


def _strokes_along(dark: np.ndarray, lines: np.ndarray, line_length: int) -> np.ndarray:
    """Where handwriting runs along a printed line: ink wider than the lines, not a bar.

    Without colour a stroke written on a box's side is dropped with the outline: a 0
    against the side lost it and read 2 (04751 read 24751), another read 3 (504302 read
    504332). Binarised box rows were 89.3% exact, against 99.0% for the same digits read
    clean; with this, 91.6%. Where a stroke lies along the line the ink is wider than the
    line alone, and an opening by a square a pixel wider than the lines keeps it. Straight
    bars at least twice ``line_length`` long (most of a box's side) stay print all the
    same: a postage label's thick ticks are no digits.
    """
    if not lines.any():
        return np.zeros(dark.shape, bool)
    size = int(round(2 * _half_width(lines > 0))) + 1
    thick = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((size, size), np.uint8))
    bars = cv2.dilate(line_mask(thick, 2 * line_length), np.ones((3, 3), np.uint8))
    return cv2.subtract(thick, bars) > 0


def _within(binary: np.ndarray, band: np.ndarray | None) -> np.ndarray:
    """Ink components lying (almost) wholly in ``band``: outline pieces, not digits."""
    if band is None:
        return np.zeros(binary.shape, bool)
    count, labels = cv2.connectedComponents(binary, connectivity=8)
    total = np.bincount(labels.ravel(), minlength=count)
    inside = np.bincount(labels[band].ravel(), minlength=count)
    pieces = inside >= 0.85 * np.maximum(total, 1)
    pieces[0] = False
    return pieces[labels]


def _paper_level(red: np.ndarray, printed: np.ndarray) -> np.ndarray | float:
    """The paper's brightness under each pixel of a crop (red channel).

    A shadow or uneven light across a photographed field makes one global paper level
    call half the field ink; a grey closing (strokes are much thinner than a third of
    the field's height) follows the light instead. Worked out at a quarter size: it is
    smooth, and a full-size closing of a 4600 px scan's field is slow.
    """
    height, width = red.shape
    if min(height, width) < 24:
        background = red[~printed] if np.any(~printed) else red
        return float(np.percentile(background, 80))
    small = cv2.resize(red, (max(1, width // 4), max(1, height // 4)),
                       interpolation=cv2.INTER_AREA)
    size = max(3, (min(small.shape) // 3) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.GaussianBlur(paper, (0, 0), size / 2)
    return cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)


def _half_width(mask: np.ndarray) -> float:
    """Half the width of the lines in a bool ``mask`` (its widest parts: 95th percentile)."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.percentile(distance[mask], 95))


def _bridge_print(soft: np.ndarray, printed: np.ndarray) -> np.ndarray:
    """Refill strokes where a printed line crossing them was dropped out."""
    if not printed.any():
        return soft
    size = 2 * int(np.ceil(_half_width(printed))) + 3
    closed = cv2.morphologyEx(soft, cv2.MORPH_CLOSE, np.ones((size, size), np.uint8))
    return np.where(printed, closed, soft).astype(np.uint8)
