"""Read scans: ``read_scan`` runs the stages on one scan; ``read_batch`` runs a folder.

Workers compute (decode, locate, segment, classify) and hand back plain ``ScanResult``s;
the parent process alone writes the database and draws the progress bar.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from postread.assemble import assemble, parse_format
from postread.classify import DigitClassifier
from postread.errors import InputError, ScanError
from postread.field import locate
from postread.orientation import read_any_way_up
from postread.records import CodeRead, Scan, Status
from postread.scan import ScanFile, failed_file_hash, find_scans, reduction_for
from postread.settings import Settings
from postread.store import ScanResult, Store

Reader = Callable[[Scan, DigitClassifier, Settings], CodeRead]
"""Reads one decoded scan (``read_scan``; tests inject others)."""
FLUSH_EVERY_S = 0.5
"""Results are committed in batches at least this often (each scan stays atomic)."""


def read_scan(scan: Scan, classifier: DigitClassifier, settings: Settings) -> CodeRead:
    """Read the recipient's postal code on one decoded scan: the stages of STYLE.md's diagram."""
    code_format = parse_format(settings.format)

    def read(image):
        # Locate: every candidate code field (colour box rows, free-form digit rows)
        fields = locate(image)
        # Segment + classify + assemble: cut each candidate into digits, classify them, pick
        # the recipient's field, apply the code format, decide accepted or needs_review
        return assemble(image, fields, classifier, code_format, settings.review_below)

    # An envelope the wrong way up is read again turned (only when it did not read upright)
    return read_any_way_up(scan.image, read)


def read_file(path: Path, root: Path, classifier: DigitClassifier, settings: Settings,
              done: frozenset[str], reader: Reader = read_scan) -> tuple[list[ScanResult], int]:
    """Read every page of one file not in ``done``; returns its results and the pages skipped.

    A bad file or page, or a reader that raises, becomes a ``failed`` result with a
    one-line reason: one scan never stops a batch.
    """
    rel = path.relative_to(root).as_posix()
    try:
        scan_file = ScanFile(path)
    except ScanError as e:
        return [ScanResult(rel, 0, failed_file_hash(path), _size(path), Status.FAILED, str(e))], 0
    results, skipped = [], 0
    for page, size in enumerate(scan_file.sizes):
        content_hash = scan_file.content_hash(page)
        if content_hash in done:
            skipped += 1
            continue
        try:
            reduce = reduction_for(*size, settings.max_side) if isinstance(size, tuple) else 1
            read = reader(scan_file.decode(page, reduce), classifier, settings)
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
    def strip(f):
        return dataclasses.replace(f, ink=None) if f is not None and f.ink is not None else f
    return dataclasses.replace(read, field=strip(read.field),
                               candidates=tuple(strip(c) for c in read.candidates))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclasses.dataclass
class RunSummary:
    """What a ``read_batch`` did, for the closing summary and the exit code."""

    files: int = 0
    """Scan files found in the folder."""
    scans: int = 0
    """Scans read and stored by this run."""
    accepted: int = 0
    needs_review: int = 0
    failed: int = 0
    skipped: int = 0
    """Scans already read, duplicates, and files that are not images."""
    seconds: float = 0.0
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        """The counts stored with the run."""
        return {"scans": self.scans, "accepted": self.accepted,
                "needs_review": self.needs_review, "failed": self.failed,
                "skipped": self.skipped}


def read_batch(root: Path, settings: Settings, load: Callable[[], DigitClassifier],
               reader: Reader = read_scan, console: Console | None = None) -> RunSummary:
    """Read every scan under ``root`` into the database; Ctrl-C stops, keeping what is stored.

    ``load`` opens the classifier: once here, to check the model before any scan is read,
    then once in each worker process, so it must be picklable (a module-level function or
    a ``functools.partial`` of one), and so must ``reader``. After a Ctrl-C the summary
    says ``interrupted`` and the run is stored as such.
    """
    console = console or Console(stderr=True)
    found = list(find_scans(root))
    files = [f.path for f in found if not f.skip_reason]
    if not files:
        raise InputError(f"{root}: no scans in this folder (PNG, JPEG, TIFF, BMP or WebP)")
    classifier = load()
    store = Store(settings.db)
    summary = RunSummary(files=len(files), skipped=len(found) - len(files))
    for f in found:
        if f.skip_reason:
            console.print(f"skipped {f.path.relative_to(root).as_posix()}: {f.skip_reason}",
                          highlight=False, markup=False)
    done = frozenset() if settings.force else store.done_hashes(classifier.version)
    options = settings.options() | {"root": str(root.absolute())}
    run_id = store.start_run(classifier.version, options)
    started = time.monotonic()
    pending: list[ScanResult] = []

    def flush() -> None:
        stored = store.save(run_id, classifier.version, pending, settings.force)
        for result, new in zip(pending, stored, strict=True):
            _tally(summary, result, new, console)
        pending.clear()

    with _progress(console) as progress:
        task = progress.add_task("reading", total=len(files))
        last_flush, advance = time.monotonic(), 0
        try:
            for results, skipped in _compute(files, root, classifier, settings, done, load,
                                              reader):
                summary.skipped += skipped
                pending.extend(results)
                advance += 1
                if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                    flush()
                    progress.advance(task, advance)  # only once stored: never ahead of the DB
                    last_flush, advance = time.monotonic(), 0
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            flush()
            progress.advance(task, advance)
            summary.seconds = time.monotonic() - started
            store.finish_run(run_id, "interrupted" if summary.interrupted else "finished",
                             summary.counts())
    return summary


def _tally(summary: RunSummary, result: ScanResult, new: bool, console: Console) -> None:
    if not new:
        summary.skipped += 1
        return
    summary.scans += 1
    setattr(summary, result.status.value, getattr(summary, result.status.value) + 1)
    if result.status is Status.FAILED:
        page = f" page {result.page}" if result.page else ""
        console.print(f"failed {result.path}{page}: {result.reason}", highlight=False,
                      markup=False)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True,
                    disable=not console.is_terminal)


def _compute(files: list[Path], root: Path, classifier: DigitClassifier, settings: Settings,
             done: frozenset[str], load: Callable[[], DigitClassifier], reader: Reader
             ) -> Iterator[tuple[list[ScanResult], int]]:
    """Each file's results, in completion order: in this process for one worker, else a pool."""
    if settings.workers == 1:
        for path in files:
            yield read_file(path, root, classifier, settings, done, reader)
        return
    todo = deque(files)
    while True:  # a new pool after a worker died (killed for memory, crashed in native code)
        init_args = (os.getpid(), load, root, settings, done, reader)
        with _Pool(settings.workers, root, init_args) as pool:
            yield from pool.run(todo)
            if not pool.broken:
                return


class _Pool:
    """A process pool fed a few files at a time, so Ctrl-C or a dead worker loses little."""

    def __init__(self, workers: int, root: Path, init_args: tuple):
        self.workers, self.root = workers, root
        self.broken = False
        # spawn: workers start clean, without the parent's ONNX session or database handles
        self.executor = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=init_args)

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc) -> None:
        # cancel what has not started; workers ignore SIGINT and end after their current file
        self.executor.shutdown(wait=exc[0] is None, cancel_futures=True)

    def run(self, todo: deque[Path]) -> Iterator[tuple[list[ScanResult], int]]:
        """Results of files taken from ``todo`` until it is empty or a worker dies."""
        in_flight: dict[Future, Path] = {}
        while True:
            while len(in_flight) < 2 * self.workers and todo and not self.broken:
                path = todo.popleft()
                try:
                    in_flight[self.executor.submit(_work, path)] = path
                except BrokenProcessPool:  # a worker died since the last wait: not started
                    todo.appendleft(path)
                    self.broken = True
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                path = in_flight.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    self.broken = True
                    yield [_died(path, self.root)], 0
            if self.broken:
                for path in in_flight:  # all lost with the pool; failed now, retried next run
                    yield [_died(path, self.root)], 0
                return


_worker: dict = {}
"""Per-worker-process state, set once by ``_init_worker``."""


def _init_worker(parent: int, load, root, settings, done, reader) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone handles Ctrl-C
    _die_with_parent(parent)
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


def _die_with_parent(parent: int) -> None:
    """Linux: end this worker when the parent dies (a SIGKILLed parent cannot stop it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _work(path: Path) -> tuple[list[ScanResult], int]:
    w = _worker
    return read_file(path, w["root"], w["classifier"], w["settings"], w["done"], w["reader"])


def _died(path: Path, root: Path) -> ScanResult:
    return ScanResult(path.relative_to(root).as_posix(), 0, failed_file_hash(path), _size(path),
                      Status.FAILED, "worker process died while reading it (out of memory?)")
