"""The interactive review session: one read per screen, decided with a few keystrokes.

Keys are read one by one from the terminal in raw mode, so it works in any terminal and
over SSH. Each decision is committed the moment it is made: quitting, a dropped
connection or Ctrl-C loses nothing already decided.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import sys
import tempfile
import termios
import time
import tty
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from postread import overlay, terminal_image
from postread.errors import PostreadError, UsageError
from postread.review import Action, QueueItem, decide, record
from postread.store import Store
from postread.stored_scan import crop_with_margin

KEYS = "Enter accept · digits+Enter correct · u unreadable · s skip · b back · ? help · q quit"
HELP = """\
Enter          accept the code as read (the model was right)
0-9 then Enter replace the code with the digits typed (a '-' is ignored: ZIP+4)
Backspace/Esc  delete the last digit / clear what was typed
u              no code can be read on this scan: mark it unreadable
s              skip: decide later (nothing is stored)
b              back to the previous read; a new decision there replaces yours
o              write the annotated scan (every field, digit boxes) to a PNG and show its path
?              show or hide this help
q / Ctrl-C     quit; every decision made so far is already saved"""
FIXED_LINES = 10
"""Text lines on a screen besides the image (header, code, digits, prompt, keys...)."""
BOLD, DIM, RED, YELLOW, GREEN, RESET = (
    "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[0m")


@dataclass
class Session:
    """Where a review stands: the queue, the current read, what was typed and decided."""

    items: Sequence[QueueItem]
    """The queue, lowest confidence first."""
    decide_and_store: Callable[[QueueItem, Action, str], None]
    """Stores one decision (called at once, so quitting loses nothing)."""
    index: int = 0
    """The read on screen; ``len(items)`` is the closing screen."""
    typed: str = ""
    """Digits typed for the read on screen."""
    message: str = ""
    """One line of feedback (an error, the overlay's path)."""
    show_help: bool = False
    decided: dict[int, tuple[Action, str]] = field(default_factory=dict)
    """This session's latest decision per queue position."""
    decisions: int = 0
    """Decisions stored in this session (a changed decision counts again)."""
    started: float = field(default_factory=time.monotonic)

    @property
    def current(self) -> QueueItem | None:
        """The read on screen, None on the closing screen."""
        return self.items[self.index] if self.index < len(self.items) else None

    def per_hour(self, now: float | None = None) -> float:
        """Decisions per hour since the session started."""
        elapsed = (now or time.monotonic()) - self.started
        return self.decisions * 3600.0 / elapsed if elapsed > 0 else 0.0

    def key(self, key: str) -> bool:
        """Act on one key press; returns False when the session should end."""
        self.message = ""
        item = self.current
        if key in ("q", "\x03", "\x04"):  # q, Ctrl-C, Ctrl-D
            return False
        if key == "?":
            self.show_help = not self.show_help
        elif key == "b":
            self._move(max(0, self.index - 1))
        elif item is None:
            self.message = "all reads done: b goes back, q quits"
        elif key.isdigit() or key == "-":
            self.typed = (self.typed + key)[:16]
        elif key in ("\x7f", "\x08"):
            self.typed = self.typed[:-1]
        elif key == "\x1b":
            self.typed = ""
        elif key in ("\r", "\n"):
            try:
                self._store(item, *decide(item.code, self.typed))
            except UsageError as e:
                self.message = str(e)
        elif key == "u":
            self._store(item, Action.UNREADABLE, "")
        elif key == "s":
            self._move(self.index + 1)
        elif key == "o":
            self.message = _write_overlay(item)
        return True

    def _store(self, item: QueueItem, action: Action, code: str) -> None:
        self.decide_and_store(item, action, code)
        self.decided[self.index] = (action, code)
        self.decisions += 1
        self._move(self.index + 1)

    def _move(self, index: int) -> None:
        self.index, self.typed = index, ""


def _write_overlay(item: QueueItem) -> str:
    try:
        image = item.image()
    except PostreadError as e:
        return f"no overlay: {e}"
    path = Path(tempfile.gettempdir()) / f"postread-show-{item.scan.id}.png"
    cv2.imwrite(str(path), overlay.annotate(image, item.scan))
    return f"annotated scan written to {path}"


class ImageCache:
    """Field images by queue position, decoded once (going back must be instant)."""

    def __init__(self) -> None:
        """An empty cache."""
        self._images: dict[int, np.ndarray | str] = {}

    def get(self, index: int, item: QueueItem) -> np.ndarray | str:
        """The field with some margin around it, or why it cannot be shown."""
        if index not in self._images:
            try:
                image = item.image()
                box = item.scan.read.field_box if item.scan.read else None
                self._images[index] = crop_with_margin(image, box) if box else image
            except PostreadError as e:
                self._images[index] = str(e)
        return self._images[index]


def render(session: Session, images: ImageCache, cols: int, rows: int) -> list[str]:
    """The screen for the session's state, as lines of at most ``cols`` visible cells."""
    total, item = len(session.items), session.current
    position = f"{min(session.index + 1, total)} of {total}"
    lines = [f"{BOLD}postread review{RESET} · {position} · {session.decisions} decided · "
             f"{session.per_hour():.0f}/h"]
    image_rows = max(1, rows - FIXED_LINES)
    if session.show_help:
        lines += HELP.splitlines()
    elif item is None:
        lines += ["", f"{GREEN}All {total} reads have been seen.{RESET} "
                  "b goes back to change a decision, q quits."]
    else:
        page = f" page {item.scan.page}" if item.scan.page else ""
        lines.append(f"file {item.scan.path}{page} · scan {item.scan.id} · {item.scan.status}")
        picture = images.get(session.index, item)
        if isinstance(picture, str):
            lines.append(f"{RED}image unavailable: {picture}{RESET}")
        else:
            lines += terminal_image.render(picture, cols - 1, image_rows)
        lines += _read_lines(session, item)
    lines.append(f"{RED}{session.message}{RESET}" if session.message else "")
    lines.append(f"{DIM}{KEYS}{RESET}")
    return lines


def _read_lines(session: Session, item: QueueItem) -> list[str]:
    read = item.scan.read
    digits = []
    for d in read.digits:
        colour = GREEN if d.probability >= 0.9 else YELLOW if d.probability >= 0.5 else RED
        digits.append(f"{colour}{d.label}{RESET} {d.probability:.0%} "
                      f"{DIM}(2nd {d.runner_up} {d.runner_up_probability:.0%}){RESET}")
    lines = [f"read  {BOLD}{item.code or '-'}{RESET}  confidence {item.confidence:.3f}  "
             f"format {read.format or '-'}",
             "      " + "  ".join(digits),
             f"why   {item.scan.reason or read.reason or 'accepted by the model'}"]
    if session.index in session.decided:
        action, code = session.decided[session.index]
        lines.append(f"{YELLOW}decided: {action.value} {code}{RESET} (s keeps it)")
    lines.append(f"code> {session.typed}\x1b[7m \x1b[27m")
    return lines


@contextlib.contextmanager
def raw_terminal(fd: int, out) -> Iterator[None]:
    """Raw keys on ``fd`` and the alternate screen on ``out``, both undone on any exit."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        out.write("\x1b[?1049h\x1b[?25l")  # alternate screen (the shell's text comes back)
        out.flush()
        yield
    finally:
        out.write("\x1b[?25h\x1b[?1049l")
        out.flush()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> tuple[int, int]:
    """(columns, lines) of the terminal on ``fd`` (stdout may be redirected: ask the tty)."""
    try:
        return tuple(os.get_terminal_size(fd))
    except OSError:
        return tuple(shutil.get_terminal_size())


def _keys(fd: int, redraw: Callable[..., None]) -> Iterator[str]:
    """Key presses from ``fd``; redraws when the window changes size in the meantime."""
    size = terminal_size(fd)
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            if terminal_size(fd) != size:
                size = terminal_size(fd)
                redraw(resized=True)
            continue
        try:
            data = os.read(fd, 64)
        except OSError:  # EIO: the terminal was hung up
            data = b""
        if not data:
            return  # the terminal went away (SSH dropped): every decision is already stored
        text = data.decode("utf-8", "replace")
        if text.startswith("\x1b["):
            continue  # arrow and function keys: not used
        yield from text


def run(items: Sequence[QueueItem], store: Store, reviewer: str) -> Session:
    """Review ``items`` interactively on the controlling terminal; returns the final state.

    Raises:
        UsageError: There is no terminal to talk to (use the non-interactive options).
    """
    try:
        tty_file = open("/dev/tty", "r+b", buffering=0)
    except OSError:
        raise UsageError("review needs a terminal; scripts can use --list, --set, "
                         "--accept and --unreadable") from None
    fd = tty_file.fileno()
    out = os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace")
    session = Session(items, lambda item, action, code: record(store, item, action, code,
                                                              reviewer))
    images = ImageCache()
    shown: list[str] = []

    def redraw(resized: bool = False) -> None:
        cols, rows = terminal_size(fd)
        lines = render(session, images, cols, rows)
        # only the lines that changed are sent: typing a digit costs a few bytes, not the
        # picture again, which keeps the session snappy over a slow SSH link
        parts = [f"\x1b[{row + 1};1H{line}\x1b[K" for row, line in enumerate(lines)
                 if resized or row >= len(shown) or shown[row] != line]
        out.write("".join(parts) + f"\x1b[{len(lines) + 1};1H\x1b[J")
        out.flush()
        shown[:] = lines
        if session.index + 1 < len(items):
            images.get(session.index + 1, items[session.index + 1])  # while they look

    try:
        with raw_terminal(fd, out):
            redraw(resized=True)
            for key in _keys(fd, redraw):
                if not session.key(key):
                    break
                redraw()
    finally:
        out.close()
        tty_file.close()
    print(f"{session.decisions} decisions stored ({session.per_hour():.0f}/h); "
          f"{sum(1 for i in range(len(items)) if i not in session.decided)} of {len(items)} "
          "reads left undecided", file=sys.stderr)
    return session
