"""postread on PostgreSQL: the commands and guarantees of the SQLite tests, on a real server.

The server is a throwaway one (see ``postgres_server``); each test gets a database of its
own. Skipped, with the reason, where no server can be had.
"""

import csv
import io
import itertools
import os
import signal
import subprocess
import sys
import time

import cv2
import pytest
from postgres_server import new_database, postgres_server
from sqlalchemy import create_engine, text
from test_pipeline import FAKES, STORED, many_scans

from pipelines.synth_envelopes import make_envelope
from postread.store import Store

_numbers = itertools.count()


@pytest.fixture(scope="module")
def server():
    with postgres_server() as url:
        yield url


@pytest.fixture
def database(server):
    return new_database(server, f"postread_test_{os.getpid()}_{next(_numbers)}")


def stored(url: str) -> list[tuple]:
    """``test_pipeline.STORED``'s rows; [] before the tables exist."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT to_regclass('digits')")).scalar():
                return []
            return [tuple(row) for row in conn.execute(text(STORED))]
    finally:
        engine.dispose()


def postread(*args: str, fake: bool = False, delay: float = 0.0) -> subprocess.Popen:
    """The CLI as a subprocess: the installed one, or ``fakes.py`` with the fake reader."""
    command = [sys.executable, str(FAKES)] if fake else [sys.executable, "-m", "postread"]
    env = os.environ | {"POSTREAD_FAKE_DELAY": str(delay)}
    return subprocess.Popen([*command, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process: subprocess.Popen, code: int = 0) -> tuple[str, str]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == code, err
    return out, err


def test_read_rerun_force_and_export_on_postgresql(database, tmp_path):
    # The real reader on generated envelopes; a plain postgresql:// URL.
    codes = {"fr.png": ("69003", "fr"), "cn.png": ("100080", "cn"), "us.png": ("02139", "us")}
    for name, (code, convention) in codes.items():
        env = make_envelope(code, convention, 3, condition="scan", distractors=False)
        cv2.imwrite(str(tmp_path / name), env.image)
    _, err = finish(postread("read", str(tmp_path), "--db", database, "--workers", "2"))
    assert "3 scans" in err
    out, _ = finish(postread("export", "--db", database, "-o", "-"))
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(out))}
    assert {name: rows[name]["code"] for name in codes} == {n: c for n, (c, _) in codes.items()}
    before = {row.path: row.id for row in Store(database).export_rows()}

    _, err = finish(postread("read", str(tmp_path), "--db", database))
    assert "0 scans" in err and "3 skipped" in err
    _, err = finish(postread("read", str(tmp_path), "--db", database, "--force"))
    assert "3 scans" in err
    store = Store(database)
    after = store.export_rows()
    assert {row.path: row.id for row in after} == before  # replaced in place, ids kept
    assert all(len(row.read.digits) == len(codes[row.path][0]) for row in after)

    store.add_review(before["fr.png"], "corrected", "69008", "tester")
    fr = next(row for row in after if row.path == "fr.png")
    assert store.latest_reviews()[fr.content_hash].code_after == "69008"


def test_two_processes_on_one_postgresql_database_and_overlapping_folders(database, tmp_path):
    # On a server, two writers are not queued as on SQLite: the second to store a scan
    # meets the unique constraint, and its batch is stored again without that scan.
    many_scans(tmp_path / "scans", 60)
    both = [postread("read", str(tmp_path / "scans"), "--db", database, "--workers", "2",
                     fake=True),
            postread("read", str(tmp_path / "scans" / "part0"), "--db", database,
                     "--workers", "2", fake=True)]
    for process in both:
        finish(process)
    rows = stored(database)
    assert len(rows) == 60 and len({r[0] for r in rows}) == 60
    assert all(status == "accepted" and digits == 5 for _, status, digits in rows)


def test_sigkill_part_way_then_rerun_on_postgresql(database, tmp_path):
    many_scans(tmp_path / "scans", 100)
    first = postread("read", str(tmp_path / "scans"), "--db", database, "--workers", "2",
                     fake=True, delay=0.03)
    deadline = time.monotonic() + 60
    while len(stored(database)) < 20:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the run stored nothing"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    partial = stored(database)
    assert 20 <= len(partial) < 100
    assert all(digits == 5 for _, _, digits in partial)  # no half-written read is visible
    _, err = finish(postread("read", str(tmp_path / "scans"), "--db", database, fake=True))
    assert f"{100 - len(partial)} scans" in err
    rows = stored(database)
    assert len(rows) == 100 and len({r[0] for r in rows}) == 100
