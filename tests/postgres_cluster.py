"""Throwaway PostgreSQL clusters for tests.

Starts a private PostgreSQL server in a temporary directory, listening on
127.0.0.1 on a free port, with durability switched off for speed. When the
current user is root (as in CI) the server is run as the ``postgres`` system
user through ``runuser``, because PostgreSQL refuses to run as root.

Binaries are found via ``REGULARS_PG_BIN``, else the highest-versioned
``/usr/lib/postgresql/*/bin`` containing ``initdb``, else ``PATH``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

SUPERUSER = "regulars"
_PG_USER = "postgres"
_START_ATTEMPTS = 5


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    parts: list[int] = []
    for piece in version.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def find_pg_bindir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    env = os.environ.get("REGULARS_PG_BIN")
    if env:
        bindir = Path(env)
        if not (bindir / "initdb").is_file():
            raise RuntimeError(f"REGULARS_PG_BIN={env!r} does not contain an 'initdb' executable")
        return bindir
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.path.isfile(os.path.join(d, "initdb"))
    ]
    if candidates:
        return Path(max(candidates, key=_version_key))
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: no 'initdb' in REGULARS_PG_BIN, "
        "/usr/lib/postgresql/*/bin or PATH. Install the PostgreSQL server "
        "(Debian: apt-get install postgresql-15) or set REGULARS_PG_BIN."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    if _as_root():
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError(
                "Running as root but 'runuser' (util-linux) is not available; "
                "PostgreSQL cannot run as root."
            )
        cmd = [runuser, "-u", _PG_USER, "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}"
        )
    return result


def _prepare_tmpdir(tmpdir: str) -> None:
    if not _as_root():
        return
    import pwd

    try:
        pw = pwd.getpwnam(_PG_USER)
    except KeyError:
        raise RuntimeError(
            f"Running as root but there is no '{_PG_USER}' system user to run "
            "PostgreSQL as (install the postgresql package or run as non-root)."
        ) from None
    os.chown(tmpdir, pw.pw_uid, pw.pw_gid)
    os.chmod(tmpdir, 0o700)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster on 127.0.0.1 and yield its base URL.

    The URL looks like ``postgresql+psycopg://regulars@127.0.0.1:PORT/postgres``.
    The cluster is stopped and its directory removed on exit.
    """
    bindir = find_pg_bindir()
    initdb = str(bindir / "initdb")
    pg_ctl = str(bindir / "pg_ctl")
    tmpdir = tempfile.mkdtemp(prefix="regulars-pg-")
    datadir = os.path.join(tmpdir, "data")
    logfile = os.path.join(tmpdir, "server.log")
    started = False
    try:
        _prepare_tmpdir(tmpdir)
        _run(
            [
                initdb,
                "-D",
                datadir,
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        last_error = ""
        for _attempt in range(_START_ATTEMPTS):
            port = _free_port()
            opts = (
                f"-h 127.0.0.1 -p {port} -k {tmpdir} -F -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            result = _run(
                [pg_ctl, "-w", "-t", "30", "-D", datadir, "-l", logfile, "-o", opts, "start"],
                check=False,
            )
            if result.returncode == 0:
                started = True
                break
            log = ""
            with contextlib.suppress(OSError):
                log = Path(logfile).read_text(errors="replace")
            last_error = f"{result.stdout}{result.stderr}\n{log}"
            # Most likely a port collision: make sure it is down and retry.
            _run([pg_ctl, "-D", datadir, "stop", "-m", "immediate"], check=False)
        if not started:
            raise RuntimeError(
                f"could not start PostgreSQL after {_START_ATTEMPTS} attempts:\n{last_error}"
            )
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run([pg_ctl, "-D", datadir, "stop", "-m", "immediate"], check=False)
        shutil.rmtree(tmpdir, ignore_errors=True)


def _admin_connect(base_url: str) -> psycopg.Connection[tuple[Any, ...]]:
    u = make_url(base_url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or SUPERUSER,
        password=u.password or None,
        dbname=u.database or "postgres",
        autocommit=True,
    )


def create_database(base_url: str) -> str:
    """Create a fresh uniquely named database on the cluster and return its URL."""
    name = f"regulars_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect(base_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url: str = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    return url


def clone_database(base_url: str, template_url: str, url: str) -> None:
    """Replace the database named by ``url`` with a copy of ``template_url``'s (nobody may be
    connected to the template)."""
    name, template = make_url(url).database, make_url(template_url).database
    if not name or not template:
        raise ValueError(f"URLs without a database name: {url!r}, {template_url!r}")
    drop_database(base_url, url)
    with _admin_connect(base_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def drop_database(base_url: str, url: str) -> None:
    """Drop the database named by ``url`` (forcing off any open connections)."""
    name = make_url(url).database
    if not name:
        raise ValueError(f"URL has no database name: {url!r}")
    with _admin_connect(base_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
