"""A throwaway PostgreSQL server for the tests that check postread on PostgreSQL.

``POSTREAD_TEST_POSTGRES_URL`` names a server of your own (a superuser's URL: each test
makes a database of its own there). Without it, a server is started from the local
PostgreSQL binaries (``initdb`` and ``pg_ctl`` on the PATH or under
/usr/lib/postgresql/*/bin) in a temporary folder, on a free port, and stopped at the end;
as root it runs as the ``postgres`` user, since PostgreSQL refuses to run as root. With
neither, or without the psycopg driver, the tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_VARIABLE = "POSTREAD_TEST_POSTGRES_URL"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A superuser's URL to a running server (skips the calling test when there is none)."""
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
    if os.environ.get(URL_VARIABLE):
        yield os.environ[URL_VARIABLE]
        return
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(f"no PostgreSQL server binaries (initdb, pg_ctl), and {URL_VARIABLE} unset")
    prefix: list[str] = []
    user = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        with contextlib.suppress(KeyError):
            user = pwd.getpwnam("postgres")
        if not (runuser and user):
            pytest.skip("running as root, and no postgres user to run a server as")
        prefix = [runuser, "-u", "postgres", "--"]
    # Straight under the temporary folder: pytest's own folders are closed to other users.
    folder = Path(tempfile.mkdtemp(prefix="postread-postgres-"))
    try:
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        data, port = folder / "data", _free_port()
        _run([*prefix, initdb, "-D", str(data), "--auth=trust", "-U", "postread", "-E", "UTF8"])
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"),
              "-w", "start"])
        try:
            yield f"postgresql://postread@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr or done.stdout}")


def new_database(admin_url: str, name: str) -> str:
    """Create an empty database ``name`` on the server; returns its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         password=url.password, dbname=url.database, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)
