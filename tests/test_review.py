"""``postread review``: the interactive session through a real pseudo-terminal, and the
non-interactive forms, checked in the database and in ``postread export``."""

import csv
import io
import re
import sys
from pathlib import Path

import pexpect
import pytest
from typer.testing import CliRunner

from postread.cli import app
from postread.review import Action, decide, default_reviewer
from postread.store import Store

POSTREAD = str(Path(sys.executable).with_name("postread"))  # the venv's installed script
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(db, *args, log=None):
    child = pexpect.spawn(POSTREAD, ["review", "--db", db, *args], dimensions=(40, 110),
                          env={"TERM": "xterm-256color", "PATH": "/usr/bin:/bin",
                               "HOME": str(Path(db).parent), "TMPDIR": str(Path(db).parent),
                               "LOGNAME": "tester-login"},
                          encoding="utf-8", timeout=20)
    child.logfile_read = log
    return child


def screen(child, pattern):
    """Wait for ``pattern`` on the terminal; returns what was drawn up to it."""
    child.expect(pattern)
    return child.before + child.after


def history(db):
    return [(r.action, r.code_before, r.code_after, r.reviewer)
            for r in Store(db).review_history()]


def export(db):
    result = CliRunner().invoke(app, ["export", "--db", db, "-o", "-"])
    assert result.exit_code == 0, result.output
    return {row["file"]: row for row in csv.DictReader(io.StringIO(result.stdout))}


def test_session_confirm_correct_unreadable_back_and_change(db):
    log = io.StringIO()
    child = spawn(db, "--reviewer", "ana", log=log)
    first = screen(child, r"1 of 3.*?code> ")  # the first screen is drawn whole
    assert "a.png" in first and "75017" in first and "low confidence 0.30" in first
    assert "\u2580" in first and "\x1b[38;2;" in first  # the field drawn in true colour
    child.send("75011\r")  # correct a.png
    screen(child, r"2 of 3.*?file b\.png")  # later screens send only changed lines
    child.send("\r")  # confirm b.png as read
    screen(child, r"3 of 3.*?file c\.png")
    child.send("u")  # c.png unreadable
    screen(child, r"All 3 reads have been seen")
    child.send("b")  # back to c.png: the decision is shown and can be changed
    screen(child, r"file c\.png.*?decided: unreadable")
    child.send("12-34\r")  # typed with a separator: still the model's code, so confirmed
    screen(child, r"All 3 reads have been seen")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert history(db) == [("corrected", "75017", "75011", "ana"),
                           ("confirmed", "100080", "100080", "ana"),
                           ("unreadable", "1234", "", "ana"),
                           ("confirmed", "1234", "1234", "ana")]
    rows = export(db)
    assert [rows["a.png"][k] for k in ("code", "status", "model_code", "reviewer")] == \
        ["75011", "reviewed", "75017", "ana"]
    assert rows["c.png"]["code"] == "1234" and rows["c.png"]["status"] == "reviewed"
    assert rows["d.png"]["status"] == "accepted" and rows["d.png"]["reviewer"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", rows["a.png"]["reviewed_at"])


def test_skip_then_quit_midway_keeps_what_was_decided(db):
    child = spawn(db)
    screen(child, r"1 of 3.*?code> ")
    child.send("s")  # skip a.png: nothing stored
    screen(child, r"2 of 3.*?file b\.png")
    child.send("u")
    screen(child, r"3 of 3.*?file c\.png")
    child.send("9")  # typed but not entered when quitting: not a decision
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert history(db) == [("unreadable", "100080", "", "tester-login")]  # the login name
    assert export(db)["b.png"]["status"] == "unreadable"
    # the next session starts with what is left, lowest confidence first
    child = spawn(db)
    assert "a.png" in screen(child, r"1 of 2.*?code> ")
    child.sendcontrol("c")  # Ctrl-C in raw mode is a key: quits like q
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_help_filters_and_other_keys_ignored(db):
    child = spawn(db, "--status", "all", "--below", "0.5")
    assert "1 of 2" in screen(child, r"1 of 2.*?code> ")  # a (0.30) and b (0.45) only
    child.send("?")
    screen(child, r"mark it unreadable")
    child.send("?")
    child.send("o")  # the annotated scan, for when the terminal picture is not enough
    child.expect(r"annotated scan written to (\S+\.png)")
    assert Path(child.match.group(1)).stat().st_size > 1000
    child.send("12a\r")  # letters are not keys for digits; 12 is a correction of a.png
    screen(child, r"2 of 2")
    child.send("q")
    child.expect(pexpect.EOF)
    assert history(db) == [("corrected", "75017", "12", "tester-login")]


def test_list_table_and_csv_in_queue_order(db):
    runner = CliRunner()
    table = runner.invoke(app, ["review", "--db", db, "--list"])
    assert table.exit_code == 0, table.output
    assert table.stdout.index("a.png") < table.stdout.index("b.png") < table.stdout.index("c.png")
    assert "d.png" not in table.stdout
    listed = runner.invoke(app, ["review", "--db", db, "--list", "--csv", "--status", "all"])
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [r["file"] for r in rows] == ["a.png", "b.png", "c.png", "d.png"]
    assert rows[0]["digits"] == "7;5;0;1;7" and rows[0]["reason"] == "low confidence 0.30"


def test_set_accept_unreadable_from_the_command_line(db):
    runner = CliRunner()
    result = runner.invoke(app, ["review", "--db", db, "--reviewer", "bot", "--set",
                                 "a.png=75011", "--accept", "b.png", "--unreadable", "3"])
    assert result.exit_code == 0, result.output
    assert history(db) == [("corrected", "75017", "75011", "bot"),
                           ("confirmed", "100080", "100080", "bot"),
                           ("unreadable", "1234", "", "bot")]
    listed = runner.invoke(app, ["review", "--db", db, "--list", "--csv"])
    assert listed.stdout.strip() == "id,file,page,code,confidence,status,digits," \
                                    "digit_confidences,reason"  # nothing left to review
    assert export(db)["b.png"]["status"] == "reviewed"


@pytest.mark.parametrize("args", [["--set", "a.png=75O11"], ["--set", "a.png"],
                                  ["--accept", "nope.png"], ["--accept", "a.png",
                                                             "--unreadable", "99"]])
def test_bad_references_store_nothing(db, args):
    result = CliRunner().invoke(app, ["review", "--db", db, *args])
    assert result.exit_code == 2, result.output
    assert history(db) == []


def test_no_terminal_is_a_usage_error(db):
    import subprocess

    run = subprocess.run([POSTREAD, "review", "--db", db], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60, start_new_session=True)
    assert run.returncode == 2 and "needs a terminal" in run.stderr


def test_decide():
    assert decide("75011", "") == (Action.CONFIRMED, "75011")
    assert decide("75011", "75011") == (Action.CONFIRMED, "75011")
    assert decide("75011", "75012") == (Action.CORRECTED, "75012")
    assert decide("", "12345-6789") == (Action.CORRECTED, "123456789")
    with pytest.raises(Exception, match="type the code"):
        decide("", "")
    assert default_reviewer()
