"""A throw-away PostgreSQL server for the store tests, and the ``db_url`` fixture that runs a test
against SQLite and against PostgreSQL.

Import the fixtures explicitly in a test module (``pytest_plugins`` is only allowed in the root
conftest)::

    from pg_server import db_url, pg_server  # noqa: F401

``pg_server`` (session scope) finds ``initdb``/``pg_ctl`` under /usr/lib/postgresql/*/bin (or on
PATH), creates a cluster in a tmp directory, starts it on a free 127.0.0.1 port with its unix
socket in the same directory, and stops it at the end. As root, the cluster belongs to the
``postgres`` user (PostgreSQL refuses to run as root) and the commands run through ``runuser``.
Without PostgreSQL installed the PostgreSQL half of the tests is skipped, saying why.
``db_url`` gives each test a fresh database (SQLite file, or a new PostgreSQL schema of the one
server, reached through the URL's ``search_path``).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PG_USER = "affectlab"
_counter = itertools.count()


def find_pg_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, newest version first, else None."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                       key=lambda p: [int(x) for x in Path(p).parent.name.split(".")
                                      if x.isdigit()], reverse=True):
        if (Path(cand) / "initdb").is_file() and (Path(cand) / "pg_ctl").is_file():
            return Path(cand)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bin_dir: Path, root: Path):
        self.bin_dir, self.root = bin_dir, root
        self.data, self.sock = root / "data", root / "sock"
        self.port = _free_port()
        self.run_as = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root and no 'postgres' user exists") from exc
            self.run_as = "postgres"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def start(self) -> None:
        self.sock.mkdir(parents=True)
        if self.run_as:
            shutil.chown(self.root, self.run_as)
            shutil.chown(self.sock, self.run_as)
        subprocess.run(self._cmd("initdb", "-D", str(self.data), "-U", PG_USER, "-A", "trust",
                                 "--no-sync", "-E", "UTF8"),
                       check=True, capture_output=True, timeout=120)
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                                 "-l", str(self.root / "server.log"), "start"),
                       check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        # immediate: a throw-away cluster needs no shutdown checkpoint (seconds saved)
        subprocess.run(self._cmd("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w",
                                 "stop"),
                       capture_output=True, timeout=60)

    DATABASE = "postgres"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _connect(self):
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_USER} "
                               "dbname=postgres", autocommit=True)

    def create_database(self) -> str:
        """A new empty schema in the server's one database, made the connection's search path;
        returns a SQLAlchemy URL that sees only that schema. (A schema takes milliseconds; a
        new database copies its ~8 MB template every time.)"""
        name = f"t{os.getpid()}_{next(_counter)}"
        with self._connect() as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url(self.DATABASE)}?options=-csearch_path%3D{name}"


@pytest.fixture(scope="session")
def pg_server():
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl under "
                    "/usr/lib/postgresql/*/bin): apt-get install -y postgresql")
    # directly under /tmp: pytest's own tmp tree is private to root, so the postgres user
    # could not reach a cluster inside it
    root = Path(tempfile.mkdtemp(prefix="affectlab-pg-"))
    server = PgServer(bin_dir, root)
    try:
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, RuntimeError) as exc:
        log = root / "server.log"
        detail = getattr(exc, "stderr", b"") or b""
        text = log.read_text()[-2000:] if log.exists() else ""
        pytest.fail(f"could not start PostgreSQL from {bin_dir}: {exc}\n"
                    f"{detail.decode(errors='replace')}\n{text}")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty database URL: an SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'affectlab.db'}"
    server = request.getfixturevalue("pg_server")
    return server.create_database()
