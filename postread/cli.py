"""The ``postread`` command line: parse options, call the pipeline, map errors to exit codes.

stdout carries data (CSV); stderr carries messages, the progress bar and the summary.
"""

from __future__ import annotations

import functools
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import postread
from postread import classify, digit_export, overlay, review_screen
from postread import review as review_queue
from postread.batch import RunSummary, read_batch
from postread.errors import ExitCode, PostreadError, UsageError
from postread.export import write_csv
from postread.settings import DEFAULT_REVIEW_BELOW, Settings
from postread.store import Store

app = typer.Typer(
    help="Read handwritten recipient postal codes from envelope scans.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    epilog="Typical use: `postread read scans/` then `postread export -o codes.csv`.",
)

DbOption = Annotated[str, typer.Option(
    "--db", envvar="POSTREAD_DB", metavar="PATH_OR_URL",
    help="Results database: a SQLite file path, or a SQLAlchemy URL (anything with `://`, "
         "e.g. postgresql://user@host/db, with `pip install 'postread[postgres]'`).")]


class StatusFilter(StrEnum):
    """Which stored reads ``export`` writes."""

    accepted = "accepted"
    needs_review = "needs_review"
    failed = "failed"
    all = "all"


def _exits(command):
    """Turn postread's errors and Ctrl-C into one line on stderr and their exit code."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except PostreadError as e:
            typer.echo(f"postread: {e}", err=True)
            raise typer.Exit(int(e.exit_code)) from None
        except KeyboardInterrupt:
            typer.echo("postread: interrupted", err=True)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    return wrapper


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"postread {postread.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Read handwritten recipient postal codes from envelope scans into a database."""


@app.command(epilog="""
**Examples**

Every scan under scans/, into ./postread.db (run it again to resume or add new scans):

    postread read scans/

French envelopes only (5 boxes), two worker processes:

    postread read scans/ --format fr --workers 2

Read again what this model already read, into another database:

    postread read scans/ --db results.db --force

**Exit codes:** 0 all read · 3 no scans · 4 model missing or corrupt · 5 database error ·
6 finished, some scans failed · 130 interrupted (run again to resume).
""")
@_exits
def read(
    scans_dir: Annotated[Path, typer.Argument(
        help="Folder of scans, read recursively: PNG, JPEG, TIFF (each page), BMP, WebP.",
        show_default=False)],
    db: DbOption = "postread.db",
    workers: Annotated[int, typer.Option(
        help="Worker processes (0 = one per CPU core).", min=0)] = 0,
    format: Annotated[str, typer.Option(
        "--format", metavar="auto|us|fr|cn|jp|hu|digits:N",
        help="Code format to expect; auto accepts all conventions, a named one is stricter.")
    ] = "auto",
    review_below: Annotated[float, typer.Option(
        help="Reads less confident than this (0..1) are stored as needs_review.")
    ] = DEFAULT_REVIEW_BELOW,
    force: Annotated[bool, typer.Option(
        "--force", help="Read again scans this model has already read.")] = False,
    model: Annotated[Path | None, typer.Option(
        envvar="POSTREAD_MODEL", metavar="CARD_OR_DIR",
        help="Model card (.json), its .onnx, or a folder of cards [default: the shipped model]")
    ] = None,
) -> None:
    """Read the recipient's postal code on every scan under SCANS_DIR into the database.

    Scans this model already read are skipped, so an interrupted run resumes where it stopped.
    """
    settings = Settings(db=db, workers=workers, format=format, review_below=review_below,
                        force=force, model=model)
    load = functools.partial(classify.load_classifier, settings.model, threads=1)
    summary = read_batch(scans_dir, settings, load, console=Console(stderr=True))
    typer.echo(_summary_line(summary), err=True)
    if summary.interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    raise typer.Exit(int(ExitCode.PARTIAL if summary.failed else ExitCode.OK))


def _summary_line(s: RunSummary) -> str:
    rate = s.scans / s.seconds if s.seconds else 0.0
    line = (f"{s.scans} scans in {s.seconds:.1f} s ({rate:.1f} scans/s): {s.accepted} accepted, "
            f"{s.needs_review} need review, {s.failed} failed, {s.skipped} skipped")
    if s.interrupted:
        line = f"interrupted: {line}; run the same command again to read the rest"
    return line


@app.command(epilog="""
**Examples**

    postread export -o codes.csv                 # every stored read

    postread export --status needs_review -      # CSV on stdout, for a person to check

    postread export --db postgresql://host/postread -o - | head

Columns: file,page,code,confidence,status,format,digits,digit_confidences,reason.
Cells that a spreadsheet would run as formulas are prefixed with `'`.
""")
@_exits
def export(
    destination: Annotated[str | None, typer.Argument(
        metavar="[-]", help="`-` (the default) writes to stdout; same as `-o -`.",
        show_default=False)] = None,
    db: DbOption = "postread.db",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE|-", help="Where to write the CSV; - is stdout.",
        show_default=False)] = None,
    status: Annotated[StatusFilter, typer.Option(
        help="Only reads with this status.")] = StatusFilter.all,
) -> None:
    """Write the stored reads as CSV, one row per scan (or TIFF page)."""
    if destination not in (None, "-") or (destination and output not in (None, "-")):
        raise UsageError(f"unexpected argument {destination!r}: use -o FILE, or - for stdout")
    output = output or "-"
    store = Store(db, create=False)
    rows, reviews = store.export_rows(status.value), store.latest_reviews()
    if output == "-":
        count = write_csv(rows, sys.stdout, reviews)
    else:
        try:
            with open(output, "w", newline="", encoding="utf-8") as out:
                count = write_csv(rows, out, reviews)
        except OSError as e:
            raise UsageError(f"{output}: cannot write the CSV here ({e.strerror})") from None
    typer.echo(f"exported {count} rows", err=True)


@app.command(epilog="""
**Keys:** Enter accepts · digits then Enter correct · `u` unreadable · `s` skip · `b` back ·
`o` annotated PNG · `?` help · `q` quits (every decision is already saved).

**Examples**

    postread review                              # needs_review reads, lowest confidence first

    postread review --status all --below 0.99 --reviewer ana

    postread review --list --csv > queue.csv

    postread review --set a.png=75011 --accept b.png --unreadable c.png
""")
@_exits
def review(
    db: DbOption = "postread.db",
    status: Annotated[str, typer.Option(
        metavar="needs_review|accepted|all", help="Which reads to queue.")] = "needs_review",
    below: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Only reads less confident than this.")] = None,
    reviewer: Annotated[str | None, typer.Option(
        help="Name stored with each decision [default: your login name].")] = None,
    list_queue: Annotated[bool, typer.Option(
        "--list", help="Print the queue (a table, or CSV with --csv) instead of reviewing.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="With --list: CSV on stdout.")] = False,
    set_codes: Annotated[list[str] | None, typer.Option(
        "--set", metavar="FILE=CODE", help="Record that FILE's code is CODE (repeatable).")
    ] = None,
    accept: Annotated[list[str] | None, typer.Option(
        metavar="FILE", help="Confirm FILE's code as read (repeatable).")] = None,
    unreadable: Annotated[list[str] | None, typer.Option(
        metavar="FILE", help="Mark FILE as unreadable (repeatable).")] = None,
) -> None:
    """Check low-confidence reads: confirm, correct or reject each, one screen per read.

    FILE is a stored path, a file name, or a scan id; `path#N` is page N of a TIFF.
    A decision is stored beside the model's read, never over it.
    """
    store = Store(db, create=False)
    who = reviewer or review_queue.default_reviewer()
    if set_codes or accept or unreadable:
        count = review_queue.record_many(store, who, set_codes or (), accept or (),
                                         unreadable or ())
        typer.echo(f"stored {count} decisions by {who}", err=True)
        return
    items = review_queue.load_queue(store, status, below)
    if list_queue:
        if as_csv:
            review_queue.write_queue_csv(items, sys.stdout)
        else:
            Console().print(review_queue.queue_table(items))
        return
    if not items:
        typer.echo("nothing to review", err=True)
        return
    review_screen.run(items, store, who)


@app.command()
@_exits
def show(
    file_or_id: Annotated[str, typer.Argument(
        metavar="FILE_OR_ID", help="A stored path, file name or scan id.", show_default=False)],
    db: DbOption = "postread.db",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="PNG to write [default: <name>.annotated.png here].")] = None,
) -> None:
    """Write an annotated copy of a scan: candidate fields, digit boxes, code and status."""
    written = overlay.write_annotated(Store(db, create=False), file_or_id, output)
    typer.echo(str(written))


@app.command("export-digits")
@_exits
def export_digits(
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Folder for the crops and labels.csv.", show_default=False)],
    db: DbOption = "postread.db",
) -> None:
    """Write the digits of reviewed reads as 28x28 PNGs with labels.csv, for training."""
    summary = digit_export.export_digits(Store(db, create=False), output)
    for line in summary.skipped:
        typer.echo(f"skipped {line}", err=True)
    typer.echo(f"wrote {summary.digits} digits from {summary.reads} reviewed reads to "
               f"{output} ({summary.recut} cut from their stored box)", err=True)
