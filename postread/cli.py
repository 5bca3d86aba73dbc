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

from postread import __version__, classify
from postread.errors import ExitCode, PostreadError, UsageError
from postread.export import write_csv
from postread.pipeline import RunSummary, read_batch
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
         "e.g. postgresql://host/db).")]


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
        typer.echo(f"postread {__version__}")
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

    postread read scans/                       # every scan under scans/, into ./postread.db

    postread read scans/ --format fr --workers 2

    postread read scans/ --db results.db --force   # read again with the same model

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
    rows = Store(db, create=False).export_rows(status.value)
    if output == "-":
        count = write_csv(rows, sys.stdout)
    else:
        try:
            with open(output, "w", newline="", encoding="utf-8") as out:
                count = write_csv(rows, out)
        except OSError as e:
            raise UsageError(f"{output}: cannot write the CSV here ({e.strerror})") from None
    typer.echo(f"exported {count} rows", err=True)
