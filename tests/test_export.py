"""export.py: the CSV columns, RFC 4180 quoting and spreadsheet-safe cells."""

import csv
import io

from fakes import a_read

from postread.export import COLUMNS, REVIEW_COLUMNS, write_csv
from postread.records import Status
from postread.store import ScanResult, Store


def exported(tmp_path, results) -> str:
    store = Store(str(tmp_path / "r.db"))
    store.save(store.start_run("m1", {}), "m1", results)
    out = io.StringIO()
    write_csv(store.export_rows(), out)
    return out.getvalue()


def test_columns_in_order_and_one_row_per_scan(tmp_path):
    read = a_read("75011")
    text = exported(tmp_path, [ScanResult("dir/a.png", 0, "h1", 1, Status.ACCEPTED, "", read)])
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS + REVIEW_COLUMNS == (
        "file", "page", "code", "confidence", "status", "format", "digits",
        "digit_confidences", "reason", "model_code", "reviewer", "reviewed_at")
    assert rows[1] == ["dir/a.png", "0", "75011", "0.9000", "accepted", "fr", "7;5;0;1;1",
                       "0.9800;0.9800;0.9800;0.9800;0.9800", "", "75011", "", ""]
    assert text.endswith("\r\n")


def test_quoting_and_formula_cells_are_neutralised(tmp_path):
    results = [
        ScanResult("=HYPERLINK(1).png", 0, "h1", 1, Status.FAILED, "-1 pixels, \"odd\", ok"),
        ScanResult("@sum.png", 0, "h2", 1, Status.FAILED, "+cmd|' /C calc'!A0"),
        ScanResult("tab.png", 0, "h3", 1, Status.FAILED, "\tstarts with a tab\nand two lines"),
        ScanResult("plain, comma.png", 0, "h4", 1, Status.FAILED, "empty file (0 bytes)"),
    ]
    rows = {r["file"]: r for r in csv.DictReader(io.StringIO(exported(tmp_path, results)))}
    assert rows["'=HYPERLINK(1).png"]["reason"] == "'-1 pixels, \"odd\", ok"
    assert rows["'@sum.png"]["reason"] == "'+cmd|' /C calc'!A0"
    assert rows["tab.png"]["reason"] == "'\tstarts with a tab\nand two lines"
    assert rows["plain, comma.png"]["code"] == "" and rows["plain, comma.png"]["confidence"] == "0"
