"""Read a folder: scans to workers, results into the database, a progress bar on stderr.

The parent process alone writes the database and draws the progress bar; workers run
``pipeline.read_file`` and hand back plain ``ScanResult``s.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from postread.classify import DigitClassifier
from postread.errors import InputError
from postread.pipeline import (
    Reader,
    failed,
    init_worker,
    keep_freed_memory,
    read_file,
    read_scan,
    work,
)
from postread.records import ScanResult, Status
from postread.scan import find_scans
from postread.settings import Settings
from postread.store import Store

FLUSH_EVERY_S = 0.5
"""Results are committed in batches at least this often (each scan stays atomic)."""
WORKER_DIED = "worker process died while reading it (out of memory?)"
"""The reason stored for the files a dead worker took with it (retried by the next run)."""


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

    The pool starts once the database has said which scans are done. Starting it before
    (SQLAlchemy imported after, the done set handed over by a queue) was tried: on 2 cores
    the parent's and the workers' imports then compete for the same CPU, and runs of 1 and
    20 scans took as long as before, within noise (0.80-0.82 s and 1.35 s).
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
        # One worker is one core, as each pool worker is: OpenCV's own threads would
        # take the others (a user asks for one worker to leave the machine to others).
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        # Not given back like the threads: glibc cannot report the old setting, and this
        # one changes only when freed memory goes back to the system, never a result.
        keep_freed_memory()
        try:
            for path in files:
                yield read_file(path, root, classifier, settings, done, reader)
        finally:
            cv2.setNumThreads(threads)
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
                                            initializer=init_worker, initargs=init_args)

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
                    in_flight[self.executor.submit(work, path)] = path
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
                    yield [failed(path, self.root, WORKER_DIED)], 0
            if self.broken:
                for path in in_flight:  # all lost with the pool; failed now, retried next run
                    yield [failed(path, self.root, WORKER_DIED)], 0
                return
