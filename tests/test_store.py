"""store.py on real SQLite files: saving, skipping, replacing, and database faults."""

import multiprocessing
import sqlite3
from datetime import UTC, datetime

import pytest
from fakes import a_read
from sqlalchemy import event

from postread.errors import DatabaseError
from postread.records import Status
from postread.store import ScanResult, ScanRow, Store


def result(name="a.png", digest="h1", read=None, status=Status.ACCEPTED, page=0) -> ScanResult:
    read = read or a_read(status=status)
    return ScanResult(name, page, digest, 1234, status, read.reason, read)


def test_a_read_is_stored_with_its_field_candidates_and_digits(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    run = store.start_run("m1", {"format": "auto"})
    assert store.save(run, "m1", [result()]) == [True]
    store.finish_run(run, "finished", {"scans": 1, "accepted": 1})
    (row,) = store.export_rows()
    assert (row.path, row.page, row.status, row.size_bytes) == ("a.png", 0, "accepted", 1234)
    assert row.read.code == "12345" and row.read.field_box == [10, 20, 100, 30]
    assert row.read.field_kind == "boxes" and "orange" in row.read.why_chosen
    assert [c["kind"] for c in row.read.candidates] == ["boxes", "freeform"]
    assert [d.label for d in row.read.digits] == [1, 2, 3, 4, 5]
    assert row.read.digits[0].runner_up == 7 and len(row.read.digits[0].probabilities) == 10
    with sqlite3.connect(tmp_path / "r.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT state, scans FROM runs").fetchone() == ("finished", 1)


def test_a_scan_is_stored_once_per_model_and_force_replaces_in_place(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    run1 = store.start_run("m1", {})
    assert store.save(run1, "m1", [result(), result("copy.png")]) == [True, False]  # duplicate
    run2 = store.start_run("m1", {})
    assert store.save(run2, "m1", [result()]) == [False]
    assert store.done_hashes("m1") == {"h1"} and store.done_hashes("m2") == frozenset()
    (before,) = store.export_rows()
    assert store.save(run2, "m1", [result(read=a_read("99999"))], force=True) == [True]
    (after,) = store.export_rows()
    assert after.id == before.id and after.read.code == "99999"  # a review's scan id stays valid
    with sqlite3.connect(tmp_path / "r.db") as raw:
        assert raw.execute("SELECT count(*) FROM reads").fetchone() == (1,)
        assert raw.execute("SELECT count(*) FROM digits").fetchone() == (5,)
    store.save(run2, "m2", [result()])
    assert len(store.export_rows()) == 1  # export shows the newest model's read of a scan


def test_failed_scans_are_not_done_and_get_replaced_by_a_retry(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    run = store.start_run("m1", {})
    store.save(run, "m1", [ScanResult("a.png", 0, "h1", 10, Status.FAILED, "file vanished")])
    assert store.done_hashes("m1") == frozenset()
    run2 = store.start_run("m1", {})
    assert store.save(run2, "m1", [result()]) == [True]
    assert [r.status for r in store.export_rows()] == ["accepted"]


def test_export_filters_by_status(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    run = store.start_run("m1", {})
    store.save(run, "m1", [result("b.png", "h2", status=Status.NEEDS_REVIEW), result(),
                           ScanResult("c.png", 0, "h3", 0, Status.FAILED, "empty file")])
    assert [r.path for r in store.export_rows()] == ["a.png", "b.png", "c.png"]
    assert [r.path for r in store.export_rows("needs_review")] == ["b.png"]
    assert store.export_rows("failed")[0].read is None


def test_missing_folder_and_missing_database_are_clear_errors(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        Store(str(tmp_path / "nope" / "r.db"))
    with pytest.raises(DatabaseError, match="no such file"):
        Store(str(tmp_path / "r.db"), create=False)
    with pytest.raises(DatabaseError, match="not a valid URL|r.db"):
        Store("nosuchdialect://x/r.db")


def test_read_only_database_is_a_clear_error_and_keeps_what_is_stored(tmp_path):
    path = tmp_path / "r.db"
    store = Store(str(path))
    store.save(store.start_run("m1", {}), "m1", [result()])
    store.engine.dispose()
    read_only = Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert len(read_only.export_rows()) == 1  # reading still works
    with pytest.raises(DatabaseError, match="readonly"):
        read_only.start_run("m1", {})


def test_full_disk_fails_cleanly_and_loses_nothing_committed(tmp_path):
    store = Store(str(tmp_path / "r.db"))
    run = store.start_run("m1", {})
    store.save(run, "m1", [result()])
    store.engine.dispose()  # the next connections get the size limit
    pages = sqlite3.connect(tmp_path / "r.db").execute("PRAGMA page_count").fetchone()[0]
    event.listen(store.engine, "connect", lambda conn, _: conn.execute(
        f"PRAGMA max_page_count = {pages + 1}"))
    big = [result(f"{i}.png", f"h{i + 10}") for i in range(300)]
    with pytest.raises(DatabaseError, match="full"):
        store.save(run, "m1", big)
    store.engine.dispose()
    assert [r.path for r in Store(str(tmp_path / "r.db")).export_rows()] == ["a.png"]


def test_a_scan_stored_first_by_another_process_is_skipped_on_retry(tmp_path, monkeypatch):
    """On a server a concurrent insert surfaces as a unique-constraint error: save retries."""
    first, second = Store(str(tmp_path / "r.db")), Store(str(tmp_path / "r.db"))
    run, other_run = first.start_run("m1", {}), first.start_run("m1", {})
    real_save = second._save

    def racing_save(*args):
        monkeypatch.setattr(second, "_save", real_save)
        first.save(other_run, "m1", [result()])  # the other process wins the race
        with second._write() as session:  # what a server reports for the losing insert
            session.add_all([ScanRow(content_hash="h1", model_version="m1", run_id=run,
                                     path="x", page=0, size_bytes=0, status="failed",
                                     read_at=datetime.now(UTC))])
        raise AssertionError("the duplicate insert above must fail")

    monkeypatch.setattr(second, "_save", racing_save)
    assert second.save(run, "m1", [result()]) == [False]
    assert len(second.export_rows()) == 1


def test_a_database_from_before_the_turned_column_opens_with_its_reads_kept(tmp_path):
    path = tmp_path / "old.db"
    store = Store(str(path))
    store.save(store.start_run("m1", {}), "m1", [result()])
    store.engine.dispose()
    with sqlite3.connect(path) as raw:  # the reads table as the first release made it
        raw.execute("ALTER TABLE reads DROP COLUMN turned")
    (row,) = Store(str(path)).export_rows()
    assert (row.read.code, row.read.turned) == ("12345", 0)
    with sqlite3.connect(path) as raw:
        assert "turned" in [c[1] for c in raw.execute("PRAGMA table_info(reads)")]


def _open_each(paths: list[str], barrier, errors) -> None:
    """In a process of its own: open each new database when the other process does."""
    for path in paths:
        barrier.wait(timeout=60)
        try:
            Store(path).start_run("m", {})
        except DatabaseError as e:
            errors.put(str(e))


def test_two_processes_opening_one_new_database_at_once_both_succeed(tmp_path):
    # Entering WAL mode needs the database to itself, and SQLite says "database is
    # locked" at once instead of waiting: two runs started together failed one time in
    # eight, and at the same instant, as here, one time in two.
    context = multiprocessing.get_context("spawn")
    paths = [str(tmp_path / f"r{i}.db") for i in range(16)]
    barrier, errors = context.Barrier(2), context.Queue()
    both = [context.Process(target=_open_each, args=(paths, barrier, errors))
            for _ in range(2)]
    for process in both:
        process.start()
    for process in both:
        process.join(timeout=120)
        assert process.exitcode == 0
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    for path in paths:
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (2,)
