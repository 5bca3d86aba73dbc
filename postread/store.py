"""The results database: SQLAlchemy 2 models and the one place that writes them.

A ``RunRow`` is one ``postread read``; a ``ScanRow`` is one scan (file page) as read by one
model version, stored at most once (unique content hash + model version); its ``ReadRow``
holds what the reader saw and its ``DigitRow``s each digit's evidence. A person's review
will be a row of its own that points at the scan: the model's read is never overwritten.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

from postread.errors import DatabaseError
from postread.records import CodeRead, DigitPrediction, ScanResult, Status

BUSY_TIMEOUT_S = 60
"""How long a writer waits for another process's transaction before giving up."""


class Base(DeclarativeBase):
    """Base of every stored row."""


class RunRow(Base):
    """One ``postread read`` invocation: the model, the options and what came of it."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version: Mapped[str] = mapped_column(String(200))
    options: Mapped[dict] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(20), default="running")
    """running, finished or interrupted (a killed run stays "running")."""
    scans: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    needs_review: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)


class ScanRow(Base):
    """One scan (a file, or one TIFF page) read by one model version, and its outcome."""

    __tablename__ = "scans"
    __table_args__ = (UniqueConstraint("content_hash", "model_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    """Relative to the folder that was scanned, with forward slashes."""
    page: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    """accepted, needs_review or failed (``records.Status``)."""
    reason: Mapped[str] = mapped_column(Text, default="")
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read: Mapped[ReadRow | None] = relationship(
        back_populates="scan", cascade="all, delete-orphan", uselist=False)


class ReadRow(Base):
    """What the reader saw on a scan; absent when the scan could not be decoded or read."""

    __tablename__ = "reads"
    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"), unique=True)
    code: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(20), default="")
    field_box: Mapped[list[int] | None] = mapped_column(JSON)
    """[x, y, width, height] of the chosen field in scan pixels."""
    field_kind: Mapped[str | None] = mapped_column(String(20))
    why_chosen: Mapped[str] = mapped_column(Text, default="")
    candidates: Mapped[list[dict]] = mapped_column(JSON, default=list)
    """Every field considered, best first: box, kind, score, evidence."""
    turned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Degrees the scan was turned clockwise to read it; boxes are in the turned image."""
    scan: Mapped[ScanRow] = relationship(back_populates="read")
    digits: Mapped[list[DigitRow]] = relationship(
        cascade="all, delete-orphan", order_by="DigitRow.position")


class DigitRow(Base):
    """One digit of a read: its label, probabilities and box."""

    __tablename__ = "digits"
    id: Mapped[int] = mapped_column(primary_key=True)
    read_id: Mapped[int] = mapped_column(ForeignKey("reads.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Float)
    runner_up: Mapped[int] = mapped_column(Integer)
    runner_up_probability: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[list[float]] = mapped_column(JSON)
    box: Mapped[list[int]] = mapped_column(JSON)


class ReviewRow(Base):
    """A person's decision about a scan's read: a row of its own, the read is never changed.

    Going back and changing a decision adds a row; the latest one per content hash is the
    scan's final state, so a decision also holds for the same image read by a newer model.
    """

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(20))
    """confirmed, corrected or unreadable (``review.Action``)."""
    code_before: Mapped[str] = mapped_column(String(20))
    """The model's code the person saw."""
    code_after: Mapped[str] = mapped_column(String(20))
    """The code the person settled on ("" when unreadable)."""
    reviewer: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Store:
    """The database of runs and reads; every write postread makes goes through here."""

    def __init__(self, db: str, create: bool = True):
        """Open the database at a file path or SQLAlchemy URL, creating it if ``create``."""
        self.name = db
        if not create and "://" not in db and not Path(db).expanduser().is_file():
            raise DatabaseError(f"database {db}: no such file (run `postread read` first)")
        self.engine = make_engine(db)
        with self._write() as session:
            _lock_schema(session)
            Base.metadata.create_all(session.connection())
            _add_missing_columns(session)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), database errors made clear."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except SQLAlchemyError as e:
            raise DatabaseError(f"database {self.name}: {_short(e)}") from e

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with Session(self.engine.execution_options(postread_begin="BEGIN")) as session:
                yield session
        except SQLAlchemyError as e:
            raise DatabaseError(f"database {self.name}: {_short(e)}") from e

    def start_run(self, model_version: str, options: dict) -> int:
        """Record the start of a run; returns its id."""
        with self._write() as session:
            run = RunRow(model_version=model_version, options=options, started_at=_now())
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, state: str, counts: dict[str, int]) -> None:
        """Record how a run ended (finished or interrupted) and its counts."""
        with self._write() as session:
            run = session.get_one(RunRow, run_id)
            run.state, run.finished_at = state, _now()
            for name, value in counts.items():
                setattr(run, name, value)

    def done_hashes(self, model_version: str) -> frozenset[str]:
        """Content hashes already read by this model; failed scans are not done (retried)."""
        with self._read() as session:
            return frozenset(session.scalars(
                select(ScanRow.content_hash).where(ScanRow.model_version == model_version,
                                                   ScanRow.status != Status.FAILED.value)))

    def save(self, run_id: int, model_version: str, results: Sequence[ScanResult],
             force: bool = False) -> list[bool]:
        """Store results in one transaction; for each, False when it was already stored.

        A scan already stored (by an earlier run or a concurrent process) is kept unless it
        failed or ``force`` is given; then its read is replaced in place, keeping its id so
        that reviews pointing at it stay attached.
        """
        tries = 3
        while True:
            try:
                return self._save(run_id, model_version, results, force)
            except DatabaseError as e:
                # another process stored one of these scans first (possible on servers,
                # where writes are not serialised like SQLite's): again, it will be skipped
                tries -= 1
                if tries == 0 or not isinstance(e.__cause__, IntegrityError):
                    raise

    def _save(self, run_id: int, model_version: str, results: Sequence[ScanResult],
              force: bool) -> list[bool]:
        stored = []
        digits: list[tuple[ReadRow, CodeRead]] = []
        with self._write() as session:
            # The scans already stored, in one query: a query per result made the session
            # flush the previous result's rows before each (5 ms per scan in the parent).
            known = {row.content_hash: row for row in session.scalars(select(ScanRow).where(
                ScanRow.content_hash.in_({r.content_hash for r in results}),
                ScanRow.model_version == model_version))}
            for result in results:
                row = known.get(result.content_hash)
                if row is not None and (row.run_id == run_id or not (
                        force or row.status == Status.FAILED.value)):
                    stored.append(False)  # a duplicate file, or read already
                    continue
                if row is None:
                    row = ScanRow(content_hash=result.content_hash, model_version=model_version)
                    session.add(row)
                    known[result.content_hash] = row  # the same file twice in this batch
                _fill(session, row, run_id, result)
                if row.read is not None and result.read is not None and result.read.digits:
                    digits.append((row.read, result.read))
                stored.append(True)
            if digits:
                # The digits in one multi-row insert once their reads have ids: as ORM
                # objects, one per digit, they were most of the parent's time per scan.
                session.flush()
                session.execute(insert(DigitRow), [
                    _digit_values(read_row.id, position, digit)
                    for read_row, read in digits for position, digit in enumerate(read.digits)])
        return stored

    def export_rows(self, status: str = "all") -> list[ScanRow]:
        """The latest read of each scan (by content hash), by path and page, with digits loaded.

        ``status`` is accepted, needs_review, failed or all.
        """
        latest = select(func.max(ScanRow.id)).group_by(ScanRow.content_hash)
        query = (select(ScanRow).where(ScanRow.id.in_(latest))
                 .options(selectinload(ScanRow.read).selectinload(ReadRow.digits))
                 .order_by(ScanRow.path, ScanRow.page, ScanRow.id))
        if status != "all":
            query = query.where(ScanRow.status == Status(status).value)
        with self._read() as session:
            return list(session.scalars(query))

    def add_review(self, scan_id: int, action: str, code_after: str, reviewer: str) -> None:
        """Store a person's decision about a scan's read, committed at once (a new row)."""
        with self._write() as session:
            scan = session.get_one(ScanRow, scan_id)
            session.add(ReviewRow(
                scan_id=scan_id, content_hash=scan.content_hash, action=action,
                code_before=scan.read.code if scan.read else "", code_after=code_after,
                reviewer=reviewer, decided_at=_now()))

    def latest_reviews(self) -> dict[str, ReviewRow]:
        """The latest decision for each reviewed scan, by content hash."""
        latest = select(func.max(ReviewRow.id)).group_by(ReviewRow.content_hash)
        with self._read() as session:
            rows = session.scalars(select(ReviewRow).where(ReviewRow.id.in_(latest)))
            return {row.content_hash: row for row in rows}

    def review_history(self) -> list[ReviewRow]:
        """Every decision ever stored, oldest first (the audit trail)."""
        with self._read() as session:
            return list(session.scalars(select(ReviewRow).order_by(ReviewRow.id)))

    def run_options(self) -> dict[int, dict]:
        """Each run's stored options (its scanned folder and decode size), by run id."""
        with self._read() as session:
            rows = session.execute(select(RunRow.id, RunRow.options))
            return {run_id: options for run_id, options in rows}


SCHEMA_LOCK = 0x706F_7374_7265_6164  # "postread"
"""PostgreSQL advisory lock key held while the tables are created or upgraded."""


def _lock_schema(session: Session) -> None:
    """On PostgreSQL, one process at a time creates or upgrades the tables.

    Two ``postread read`` started at once on a new database otherwise both create the
    tables, and the second fails on PostgreSQL's catalogue ("duplicate key value violates
    unique constraint pg_type_typname_nsp_index"). SQLite's BEGIN IMMEDIATE already queues
    them. The lock ends with the transaction.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})


ADDED_COLUMNS = {("reads", "turned"): "INTEGER NOT NULL DEFAULT 0"}
"""Columns added since the first release: a database made before gets them on opening
(create_all makes missing tables, never missing columns), its stored reads kept."""


def _add_missing_columns(session: Session) -> None:
    connection = session.connection()
    present = {table: {c["name"] for c in inspect(connection).get_columns(table)}
               for table in {table for table, _ in ADDED_COLUMNS}}
    for (table, column), definition in ADDED_COLUMNS.items():
        if column not in present[table]:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {definition}"))


def _fill(session: Session, row: ScanRow, run_id: int, result: ScanResult) -> None:
    row.run_id, row.path, row.page = run_id, result.path, result.page
    row.size_bytes, row.status, row.reason = result.size_bytes, result.status.value, result.reason
    row.read_at = _now()
    if row.read is not None:  # replaced: delete first, the new read reuses the unique scan_id
        session.delete(row.read)
        session.flush()
    row.read = None if result.read is None else _read_row(result.read)


def _read_row(read: CodeRead) -> ReadRow:
    chosen = read.field
    return ReadRow(
        code=read.code, confidence=read.confidence, status=read.status.value,
        reason=read.reason, format=read.format,
        field_box=list(chosen.box) if chosen else None,
        field_kind=chosen.kind.value if chosen else None,
        why_chosen=chosen.evidence if chosen else "", turned=read.turned,
        candidates=[{"box": list(c.box), "kind": c.kind.value, "score": c.score,
                     "evidence": c.evidence} for c in read.candidates])


def _digit_values(read_id: int, position: int, digit: DigitPrediction) -> dict:
    """One row of the digits table (``Store._save`` inserts them in bulk)."""
    return dict(read_id=read_id, position=position, label=digit.label,
                probability=digit.probability, runner_up=digit.runner_up,
                runner_up_probability=digit.runner_up_probability,
                probabilities=list(digit.probabilities), box=list(digit.box))


def make_engine(db: str) -> Engine:
    """An engine for a SQLAlchemy URL (anything with ``://``) or a SQLite file path.

    SQLite gets WAL (readers never block the writer), a busy timeout, and ``BEGIN
    IMMEDIATE`` for writes so that two processes queue instead of failing with
    "database is locked" when a read transaction tries to become a write one.
    """
    if "://" in db:
        try:
            url = make_url(db)
        except ArgumentError as e:
            raise DatabaseError(f"database {db}: not a valid URL ({e})") from None
        if url.drivername == "postgresql":  # the driver the postgres extra installs
            url = url.set(drivername="postgresql+psycopg")
    else:
        folder = Path(db).expanduser().absolute().parent
        if not folder.is_dir():
            raise DatabaseError(f"database {db}: folder {folder} does not exist")
        url = URL.create("sqlite+pysqlite", database=str(Path(db).expanduser()))
    try:
        engine = create_engine(url)
    except ImportError as e:
        hint = " (pip install 'postread[postgres]')" if url.drivername == \
            "postgresql+psycopg" else ""
        raise DatabaseError(f"database {db}: its driver is not installed: {e}{hint}") from None
    except ArgumentError as e:
        raise DatabaseError(f"database {db}: {e}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    _enter_wal(cursor)
    # WAL + NORMAL: a commit survives a killed process; only a power cut may lose the last ones
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _enter_wal(cursor) -> None:
    """Put the database in WAL mode, waiting while another process holds it.

    Entering WAL needs the database to itself, and SQLite answers "database is locked"
    at once instead of waiting out the busy timeout: two ``postread read`` started
    together on a new database failed so, one time in eight.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get("postread_begin", "BEGIN IMMEDIATE"))


def _short(error: SQLAlchemyError) -> str:
    """The driver's own one-line message, without SQLAlchemy's SQL echo and links."""
    orig = getattr(error, "orig", None)
    return str(orig if orig is not None else error).splitlines()[0]


def _now() -> datetime:
    return datetime.now(UTC)
