"""The command line in-process (CliRunner, exit code first) and the installed entry point."""

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import plug_in, write_code_image
from typer.testing import CliRunner

from postread import __version__
from postread.classify import load_classifier as real_load_classifier
from postread.cli import app

runner = CliRunner()


@pytest.fixture
def scans(tmp_path, monkeypatch):
    """Three good scans, one unsure, and a text file; the CLI uses the fake reader."""
    plug_in(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POSTREAD_DB", raising=False)
    root = tmp_path / "scans"
    write_code_image(root / "a.png", "75011")
    write_code_image(root / "sub" / "b.jpg", "10001")
    write_code_image(root / "c.webp", "12345")
    write_code_image(root / "d.png", "55555", sure=False)
    (root / "notes.txt").write_text("not a scan")
    return root


def export(*args) -> list[dict]:
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_read_then_export(scans):
    result = runner.invoke(app, ["read", str(scans), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # stdout is for data only
    assert "4 scans" in result.stderr and "3 accepted, 1 need review, 0 failed, 1 skipped" \
        in result.stderr
    assert "skipped notes.txt: not an image file" in result.stderr
    rows = export()
    assert [(r["file"], r["code"], r["status"]) for r in rows] == [
        ("a.png", "75011", "accepted"), ("c.webp", "12345", "accepted"),
        ("d.png", "55555", "needs_review"), ("sub/b.jpg", "10001", "accepted")]
    assert rows[2]["reason"].startswith("low confidence")
    assert [r["file"] for r in export("--status", "needs_review")] == ["d.png"]


def test_rerun_skips_and_force_reads_again(scans):
    assert runner.invoke(app, ["read", str(scans), "--workers", "1"]).exit_code == 0
    again = runner.invoke(app, ["read", str(scans), "--workers", "1"])
    assert again.exit_code == 0, again.output
    assert "0 scans" in again.stderr and "5 skipped" in again.stderr
    forced = runner.invoke(app, ["read", str(scans), "--workers", "1", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "4 scans" in forced.stderr
    with sqlite3.connect("postread.db") as db:
        assert db.execute("SELECT count(*) FROM scans").fetchone() == (4,)
        assert db.execute("SELECT count(*) FROM runs WHERE state = 'finished'").fetchone() == (3,)


def test_bad_files_fail_alone_and_exit_6(scans):
    (scans / "empty.png").write_bytes(b"")
    (scans / "half.png").write_bytes((scans / "a.png").read_bytes()[:200])
    (scans / "text.jpg").write_text("hello")
    result = runner.invoke(app, ["read", str(scans), "--workers", "1"])
    assert result.exit_code == 6, result.output
    assert "failed empty.png: empty file (0 bytes)" in result.stderr
    failed = {r["file"]: r["reason"] for r in export("--status", "failed")}
    assert failed.keys() == {"empty.png", "half.png", "text.jpg"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert len(export("--status", "accepted")) == 3


def test_a_crashing_classifier_fails_each_scan_and_exits_6(scans, monkeypatch):
    monkeypatch.setenv("POSTREAD_FAKE", "crash")
    result = runner.invoke(app, ["read", str(scans), "--workers", "1"])
    assert result.exit_code == 6, result.output
    reasons = {r["reason"] for r in export()}
    assert reasons == {"reader crashed: RuntimeError: model exploded"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (["read", "nope"], 3, "no such folder"),
    (["read", "empty"], 3, "no scans"),
    (["read", "scans", "--format", "xx"], 2, "unknown code format"),
    (["read", "scans", "--review-below", "2"], 2, "between 0 and 1"),
    (["read", "scans", "--db", "missing/dir/r.db"], 5, "does not exist"),
    (["read", "scans", "--db", "postgresql+nodriver://host/db"], 5, "nodriver"),
    (["read", "scans", "--db", "mysql+pymysql://host/db"], 5, "driver is not installed"),
    (["export", "--db", "none.db"], 5, "no such file"),
    (["export", "stray"], 2, "unexpected argument"),
])
def test_errors_are_one_line_with_their_exit_code(scans, args, code, message):
    (scans.parent / "empty").mkdir()
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_corrupt_model_is_refused_before_any_scan_is_read(scans, tmp_path, monkeypatch):
    from postread import classify

    monkeypatch.setattr(classify, "load_classifier", real_load_classifier)
    models = tmp_path / "models"
    models.mkdir()
    (models / "digits-1.0-deadbeef.onnx").write_bytes(b"not the bytes the card names")
    (models / "digits-1.0-deadbeef.json").write_text(json.dumps({
        "file": "digits-1.0-deadbeef.onnx", "sha256": "0" * 64, "input": {"name": "x"},
        "preprocessing": {"mean": 0.1, "std": 0.3}, "calibration": {"temperature": 1.0}}))
    result = runner.invoke(app, ["read", str(scans), "--model", str(models)])
    assert result.exit_code == 4, result.output
    assert "does not match its card" in result.stderr
    assert not Path("postread.db").exists()  # refused before the database was even opened


def test_db_from_env_and_csv_to_a_file(scans, monkeypatch):
    monkeypatch.setenv("POSTREAD_DB", "from_env.db")
    assert runner.invoke(app, ["read", str(scans), "--workers", "1"]).exit_code == 0
    result = runner.invoke(app, ["export", "-o", "out.csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "exported 4 rows" in result.stderr
    with open("out.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert len(export("-")) == 4


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"postread {__version__}"
    result = runner.invoke(app, ["read", "--help"])
    assert result.exit_code == 0 and "postread read scans/" in result.stdout


def test_installed_entry_point(scans, tmp_path):
    postread = str(Path(sys.executable).with_name("postread"))  # the venv's installed script
    run = subprocess.run([postread, "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"postread {__version__}"
    run = subprocess.run([postread, "read", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 3 and "no such folder" in run.stderr and run.stdout == ""


def test_database_faults_exit_5_and_keep_what_is_stored(scans, monkeypatch):
    from sqlalchemy import event

    from postread import store

    assert runner.invoke(app, ["read", str(scans), "--workers", "1"]).exit_code == 0
    read_only = runner.invoke(app, ["read", str(scans), "--force", "--workers", "1",
                                    "--db", "sqlite:///file:postread.db?mode=ro&uri=true"])
    assert read_only.exit_code == 5, read_only.output
    assert "readonly" in read_only.stderr
    for i in range(40):
        write_code_image(scans / "more" / f"{i}.png", f"{i:05d}")
    real_engine = store.make_engine

    def full_disk(db):  # the database may not grow by more than one page
        engine = real_engine(db)
        event.listen(engine, "connect", lambda conn, _: conn.execute(
            f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 1}"))
        return engine

    monkeypatch.setattr(store, "make_engine", full_disk)
    full = runner.invoke(app, ["read", str(scans), "--workers", "1"])
    assert full.exit_code == 5, full.output
    assert "full" in full.stderr, full.stderr
    monkeypatch.setattr(store, "make_engine", real_engine)
    assert len(export()) == 4  # the earlier reads are intact
