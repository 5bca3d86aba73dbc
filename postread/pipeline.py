"""Read scans: ``read_scan`` runs the stages on one decoded scan, ``read_file`` on a file.

This is what a worker process runs (``batch.py`` runs a folder and writes the database).
Workers compute (decode, locate, segment, classify) and hand back plain ``ScanResult``s.
The module imports only what reading needs, not the database or the terminal libraries:
each spawned worker imports it afresh, and start-up is paid per worker.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import cv2

from postread.assemble import read_image
from postread.classify import DigitClassifier
from postread.errors import ScanError
from postread.records import CodeRead, Scan, ScanResult, Status
from postread.scan import ScanFile, failed_file_hash
from postread.settings import Settings

Reader = Callable[[Scan, DigitClassifier, Settings], CodeRead]
"""Reads one decoded scan (``read_scan``; tests inject others)."""


def read_scan(scan: Scan, classifier: DigitClassifier, settings: Settings) -> CodeRead:
    """Read the recipient's postal code on one decoded scan (``assemble.read_image``).

    Locate the candidate fields, cut them into digits, classify, assemble: the stages of
    STYLE.md's diagram, any way up.
    """
    return read_image(scan.image, classifier, settings.format, settings.review_below)


def read_file(path: Path, root: Path, classifier: DigitClassifier, settings: Settings,
              done: frozenset[str], reader: Reader = read_scan) -> tuple[list[ScanResult], int]:
    """Read every page of one file not in ``done``; returns its results and the pages skipped.

    A bad file or page, or a reader that raises, becomes a ``failed`` result with a
    one-line reason: one scan never stops a batch.
    """
    try:
        scan_file = ScanFile(path)
    except ScanError as e:
        return [failed(path, root, str(e))], 0
    rel = path.relative_to(root).as_posix()
    results, skipped = [], 0
    for page in range(len(scan_file.sizes)):
        content_hash = scan_file.content_hash(page)
        if content_hash in done:
            skipped += 1
            continue
        try:
            read = reader(scan_file.decode(page, settings.max_side), classifier, settings)
        except ScanError as e:
            status, reason, read = Status.FAILED, str(e), None
        except Exception as e:  # any reader bug is this scan's failure only
            status, read = Status.FAILED, None
            reason = f"reader crashed: {type(e).__name__}: {e}".splitlines()[0][:300]
        else:
            status, reason, read = read.status, read.reason, _plain(read)
        results.append(ScanResult(rel, page, content_hash, scan_file.size_bytes,
                                  status, reason, read))
    return results, skipped


def _plain(read: CodeRead) -> CodeRead:
    """The read without its fields' ink masks: small to pickle, and the store never keeps them."""
    field = read.field.without_ink() if read.field is not None else None
    return dataclasses.replace(read, field=field,
                               candidates=tuple(c.without_ink() for c in read.candidates))


def file_size(path: Path) -> int:
    """The file's size in bytes (0 when it is gone or unreadable)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


_worker: dict = {}
"""Per-worker-process state, set once by ``init_worker``."""


def init_worker(parent: int, load, root, settings, done, reader) -> None:
    """In a new worker process: open the classifier once and keep what ``work`` needs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone handles Ctrl-C
    _die_with_parent(parent)
    keep_freed_memory()
    # One thread per worker: the pool already runs one worker per core, and OpenCV's own
    # threads in every worker would only compete with each other for the same cores.
    cv2.setNumThreads(1)
    _worker.update(classifier=load(), root=root, settings=settings, done=done, reader=reader)
    # At exit a worker has sent every result: skip the interpreter's teardown (freeing
    # onnxruntime, OpenCV and every module, ~0.25 s that the parent's shutdown waits for).
    atexit.register(_exit_now)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
"""glibc's mallopt parameters (malloc.h)."""


def keep_freed_memory() -> None:
    """Linux (glibc): keep freed memory for the next scan rather than give it back at once.

    Every scan allocates and frees the same large buffers (the decoded image, the working
    view and its maps). By default glibc returns such blocks to the system on free and the
    next scan faults them back in page by page: 1,000-2,800 page faults and 2-6 ms of
    system time a scan. Kept, they are reused: a phone photo read in 55 ms instead of 65, a
    JPEG scan in 31 instead of 33, at the same peak memory. Blocks over 64 MB (a huge scan)
    still go back to the system.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 64 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)


def _die_with_parent(parent: int) -> None:
    """Linux: end this worker when the parent dies (a SIGKILLed parent cannot stop it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def work(path: Path) -> tuple[list[ScanResult], int]:
    """In a worker: read one file with what ``init_worker`` set up."""
    w = _worker
    return read_file(path, w["root"], w["classifier"], w["settings"], w["done"], w["reader"])


def failed(path: Path, root: Path, reason: str) -> ScanResult:
    """The failed result of a file that could not be read at all, with why."""
    return ScanResult(path.relative_to(root).as_posix(), 0, failed_file_hash(path),
                      file_size(path), Status.FAILED, reason)
