"""batch.py: batches with bad files, dying workers, and fault tests on real subprocesses.

Subprocesses run ``tests/fakes.py`` (the ``postread`` CLI with the fake reader plugged in)
so that they can be killed part-way through at a predictable pace.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import FakeClassifier, code_image, fake_read, load_fake, write_code_image
from test_scan import png_claiming, tiff_with_bad_page

from pipelines.synth_envelopes import make_envelope
from postread.batch import read_batch
from postread.classify import load_classifier
from postread.pipeline import read_file
from postread.settings import Settings
from postread.store import Store

FAKES = Path(__file__).with_name("fakes.py")


def many_scans(root: Path, count: int) -> list[str]:
    """``count`` distinct small PNG code images; returns their codes."""
    codes = [f"{i:05d}" for i in range(count)]
    for i, code in enumerate(codes):
        write_code_image(root / f"part{i % 2}" / f"{code}.png", code)
    return codes


STORED = ("SELECT s.content_hash, s.status, count(d.id) FROM scans s "
          "LEFT JOIN reads r ON r.scan_id = s.id LEFT JOIN digits d ON d.read_id = r.id "
          "GROUP BY s.id")
"""(content_hash, status, digit count) of every stored scan, in SQL that SQLite and
PostgreSQL both take."""


def stored(db: Path) -> list[tuple]:
    """``STORED``'s rows; [] before the tables exist."""
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(STORED).fetchall()
    except sqlite3.OperationalError:
        return []


def start(root: Path, db: Path, *args: str, delay: float = 0.0) -> subprocess.Popen:
    env = os.environ | {"POSTREAD_FAKE_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, str(FAKES), "read", str(root), "--db", str(db),
                             *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for_rows(db: Path, at_least: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while len(stored(db)) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run stored nothing"
        time.sleep(0.05)


def assert_complete(db: Path, count: int) -> None:
    rows = stored(db)
    assert len(rows) == count and len({r[0] for r in rows}) == count  # each scan once
    assert all(status == "accepted" and digits == 5 for _, status, digits in rows)


def test_sigkill_part_way_then_rerun_stores_every_scan_once(tmp_path):
    many_scans(tmp_path / "scans", 120)
    db = tmp_path / "r.db"
    first = start(tmp_path / "scans", db, "--workers", "2", delay=0.03)
    wait_for_rows(db, 20, first)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    partial = stored(db)
    assert 20 <= len(partial) < 120
    assert all(digits == 5 for _, _, digits in partial)  # no half-written read is visible
    second = start(tmp_path / "scans", db, "--workers", "2")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"{120 - len(partial)} scans" in err
    assert_complete(db, 120)


def test_ctrl_c_exits_130_keeps_work_and_a_rerun_finishes(tmp_path):
    many_scans(tmp_path / "scans", 80)
    db = tmp_path / "r.db"
    # 80 x 0.06 s over 2 workers: the run outlasts the wait for its first rows with room to
    # spare (at 0.03 s a busy machine once saw the run end before the signal was sent).
    first = start(tmp_path / "scans", db, "--workers", "2", delay=0.06)
    wait_for_rows(db, 10, first)
    os.killpg(first.pid, signal.SIGINT)  # as a terminal does: the parent and its workers
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    done = len(stored(db))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT state, scans FROM runs").fetchall() == [("interrupted", done)]
    second = start(tmp_path / "scans", db, "--workers", "1")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert_complete(db, 80)


def test_two_processes_on_one_database_and_overlapping_folders(tmp_path):
    many_scans(tmp_path / "scans", 60)
    db = tmp_path / "r.db"
    both = [start(tmp_path / "scans", db, "--workers", "1"),
            start(tmp_path / "scans" / "part0", db, "--workers", "1")]
    for process in both:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "locked" not in err
    assert_complete(db, 60)


def test_every_bad_file_is_a_failed_scan_and_the_batch_completes(tmp_path):
    root = tmp_path / "scans"
    write_code_image(root / "good.png", "12345")
    (root / "zero.png").write_bytes(b"")
    good_png = (root / "good.png").read_bytes()
    write_code_image(root / "good.jpg", "54321")
    (root / "cut.png").write_bytes(good_png[: len(good_png) // 2])
    (root / "cut.jpg").write_bytes((root / "good.jpg").read_bytes()[:300])
    (root / "random.png").write_bytes(np.random.default_rng(1).bytes(3000))
    (root / "text.jpg").write_text("a letter, not a scan")
    cv2.imwrite(str(root / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    (root / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    pages = [code_image("11111"), code_image("22222"), code_image("33333")]
    (root / "pages.tif").write_bytes(tiff_with_bad_page(pages, bad=1))
    (root / "loop").symlink_to(root)
    (root / "self.png").symlink_to(root / "self.png")
    summary = read_batch(root, Settings(db=str(tmp_path / "r.db"), workers=1), load_fake,
                         fake_read)
    assert (summary.accepted, summary.failed, summary.skipped) == (4, 9, 1)
    rows = {(r.path, r.page): r for r in Store(str(tmp_path / "r.db")).export_rows()}
    assert rows[("pages.tif", 0)].read.code == "11111"
    assert rows[("pages.tif", 2)].read.code == "33333"
    assert "TIFF page 1" in rows[("pages.tif", 1)].reason
    assert "100000x100000" in rows[("huge.png", 0)].reason
    assert "symbolic links" in rows[("self.png", 0)].reason
    assert all(r.reason and "\n" not in r.reason for r in rows.values() if r.status == "failed")


def vanishing_read(scan, classifier, settings):
    """Reads normally, and deletes b.png while reading a.png (a file vanishing mid-run)."""
    if scan.path.name == "a.png":
        (scan.path.parent / "b.png").unlink()
    return fake_read(scan, classifier, settings)


def test_a_file_that_vanishes_mid_run_fails_alone(tmp_path):
    for name in ("a", "b", "c"):
        write_code_image(tmp_path / "scans" / f"{name}.png", "12345" if name != "c" else "67890")
    summary = read_batch(tmp_path / "scans", Settings(db=str(tmp_path / "r.db"), workers=1),
                         FakeClassifier, vanishing_read)
    assert (summary.accepted, summary.failed) == (2, 1)
    (row,) = Store(str(tmp_path / "r.db")).export_rows("failed")
    assert row.path == "b.png" and "vanished" in row.reason


def test_one_worker_reads_on_one_core(tmp_path):
    # --workers 1 reads in the main process; OpenCV's own threads would use every core.
    threads_seen = []

    def counting_read(scan, classifier, settings):
        threads_seen.append(cv2.getNumThreads())
        return fake_read(scan, classifier, settings)

    write_code_image(tmp_path / "scans" / "a.png", "12345")
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        read_batch(tmp_path / "scans", Settings(db=str(tmp_path / "r.db"), workers=1),
                   FakeClassifier, counting_read)
        assert threads_seen == [1]
        assert cv2.getNumThreads() == 2  # the caller's setting is given back
    finally:
        cv2.setNumThreads(before)


def dying_read(scan, classifier, settings):
    """Kills its worker process on die.png, like the kernel's out-of-memory killer would."""
    if scan.path.name == "die.png":
        os._exit(9)
    return fake_read(scan, classifier, settings)


def test_a_dead_worker_fails_its_scan_and_the_pool_goes_on(tmp_path):
    codes = many_scans(tmp_path / "scans", 12)
    write_code_image(tmp_path / "scans" / "die.png", "99999")
    summary = read_batch(tmp_path / "scans", Settings(db=str(tmp_path / "r.db"), workers=2),
                         FakeClassifier, dying_read)
    failed = Store(str(tmp_path / "r.db")).export_rows("failed")
    assert "die.png" in {r.path for r in failed}
    assert all("worker process died" in r.reason for r in failed)
    assert summary.accepted + summary.failed == len(codes) + 1
    again = read_batch(tmp_path / "scans", Settings(db=str(tmp_path / "r.db"), workers=1),
                       FakeClassifier, fake_read)  # failed scans are retried on the next run
    assert (again.failed, again.scans) == (0, len(failed))


def test_workers_return_plain_results_without_ink(tmp_path):
    # The real reader keeps each field's ink map and its cutter (which holds the whole
    # scan); a worker must pickle back neither.
    env = make_envelope("40527", "fr", seed=3, condition="scan", distractors=False)
    cv2.imwrite(str(tmp_path / "a.png"), env.image)
    (result,), _ = read_file(tmp_path / "a.png", tmp_path, load_classifier(),
                             Settings(workers=1), frozenset())
    assert result.read.code == "40527" and result.read.candidates
    assert all(f.ink is None and f.cut_ink is None and f.ink_mask() is None
               for f in (result.read.field, *result.read.candidates))


FAULTS_PER_SCAN = """
import resource, sys
import cv2, numpy as np
from postread.pipeline import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
photo = np.full((3000, 4000, 3), 200, np.uint8)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):  # a phone photo's pixels in a new OpenCV image, scan after scan
    cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) // 10)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_scans_freed_buffers_are_reused_not_faulted_in_again():
    # Given back to the system on free, a photo's 36 MB of pixels are faulted in again page
    # by page for the next scan (here ~600 faults, huge pages helping); kept, the next scan
    # reuses them (~60).
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", FAULTS_PER_SCAN, mode],
                             capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert 4 * faults("keep") < faults("default")


def test_a_worker_imports_no_database_or_terminal_library():
    # Every spawned worker imports the main module and the reading code afresh; SQLAlchemy,
    # typer and rich there would add ~0.5 s to each worker's start for nothing.
    code = ("import sys, postread.__main__, postread.pipeline\n"
            "print(sorted(m for m in ('sqlalchemy', 'rich', 'typer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
