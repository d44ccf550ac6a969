"""The two database engines imgpipe runs on, behind one small connection class each.

SQLite (the default) is a file that the processes of one host share; PostgreSQL is a server
that processes on many hosts share. Queries are written once, with `?` placeholders and SQL
that both engines accept; the PostgreSQL class turns the placeholders into psycopg's `%s` in
one place. Both classes answer the same calls: `execute` (a DB-API cursor: `rowcount`,
`fetchone()` as a tuple), `query` (rows as dicts), `exclusive` (a transaction no other
writer shares), and the few things whose SQL differs per engine.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time

import sqlite_utils

SQLITE, POSTGRESQL = "sqlite", "postgresql"
ENGINES = (SQLITE, POSTGRESQL)
_SQLITE_PREFIX = "sqlite:///"
_POSTGRESQL_PREFIXES = ("postgresql://", "postgres://")
# Any constant: the key of the lock that lets one process at a time migrate a PostgreSQL schema.
_MIGRATION_LOCK_KEY = 7_316_029


class DatabaseUnavailable(Exception):
    """The database server did not answer, or dropped the connection: a later call may work."""


def split_url(url: str) -> tuple[str, str]:
    """(engine, what to open): `sqlite:///relative/path`, `sqlite:////absolute/path` (the
    SQLAlchemy spelling), `postgresql://user:password@host:port/db`, or a bare file path,
    which is SQLite."""
    if url.startswith(_SQLITE_PREFIX):
        path = url.removeprefix(_SQLITE_PREFIX)
        if not path:
            raise ValueError(f"DATABASE_URL {url!r} names no file: write sqlite:///path/to/imgpipe.db")
        return SQLITE, path
    if url.startswith(_POSTGRESQL_PREFIXES):
        return POSTGRESQL, url
    if "://" in url:
        raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgresql://, got {url.split('://')[0]}://")
    return SQLITE, url


def connect(url: str) -> "Database":
    """Open the database a URL (or a bare SQLite path) names."""
    engine, target = split_url(url)
    return SQLiteDatabase(target) if engine == SQLITE else PostgresDatabase(target)


@functools.lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s`, and a literal `%` doubled, outside quoted text."""
    out, quote = [], None
    for char in sql:
        if quote:
            quote = None if char == quote else quote
            out.append("%%" if char == "%" else char)
        elif char in "'\"":
            quote = char
            out.append(char)
        else:
            out.append({"?": "%s", "%": "%%"}.get(char, char))
    return "".join(out)


class SQLiteDatabase:
    """A SQLite file. WAL lets the API and the workers read while one of them writes."""

    engine = SQLITE
    auto_id = "INTEGER PRIMARY KEY"

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        db = sqlite_utils.Database(self.conn)
        if db.journal_mode != "wal":
            _retry_while_locked(db.enable_wal)
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params=()) -> list[dict]:
        cursor = self.conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    @contextlib.contextmanager
    def exclusive(self):
        """BEGIN IMMEDIATE takes the write lock first (waiting up to busy_timeout for it), so
        what the transaction reads stays true until it commits."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None

    @staticmethod
    def seconds_between(start: str, end: str) -> str:
        """SQL for the seconds from one ISO timestamp column to another."""
        return f"((julianday({end}) - julianday({start})) * 86400.0)"

    def close(self) -> None:
        self.conn.close()


def _retry_while_locked(action, seconds: float = 10.0):
    """Switch to WAL, which SQLite refuses outright (no busy wait) while another process
    does the same, as gunicorn workers starting together do."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class PostgresDatabase:
    """A PostgreSQL database, one autocommitted statement at a time as with SQLite.

    A connection the server dropped (a restart, a failover, a cut link) is replaced at the
    next call; the call that found it broken raises DatabaseUnavailable, as any call during an
    outage does, which the relay waits out as it waits out Redis.
    """

    engine = POSTGRESQL
    auto_id = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"

    def __init__(self, url: str):
        self.url = url
        self.conn = None
        with _unavailable_when_disconnected():
            self.conn = self._connect()

    def _connect(self):
        import psycopg  # here, so that processes on SQLite never load it
        from psycopg.conninfo import conninfo_to_dict

        # A host that does not answer fails the connection in seconds instead of the OS's minutes.
        params = {"connect_timeout": 10, **conninfo_to_dict(self.url)}
        return psycopg.connect(**params, autocommit=True)

    def _live(self):
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()
        return self.conn

    def execute(self, sql: str, params=()):
        with _unavailable_when_disconnected():
            return self._live().execute(pyformat(sql), list(params))

    def query(self, sql: str, params=()) -> list[dict]:
        from psycopg.rows import dict_row

        with _unavailable_when_disconnected(), self._live().cursor(row_factory=dict_row) as cursor:
            cursor.execute(pyformat(sql), list(params))
            return cursor.fetchall()

    @contextlib.contextmanager
    def exclusive(self):
        """A transaction holding an advisory lock, so two processes migrating at once take
        turns and the second finds the work done."""
        with _unavailable_when_disconnected(), self._live().transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK_KEY])
            yield self

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT to_regclass(?) IS NOT NULL", [name]).fetchone()[0]

    @staticmethod
    def seconds_between(start: str, end: str) -> str:
        """SQL for the seconds from one ISO timestamp column to another."""
        return f"CAST(EXTRACT(EPOCH FROM CAST({end} AS timestamptz) - CAST({start} AS timestamptz)) AS DOUBLE PRECISION)"

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def _unavailable_when_disconnected():
    """psycopg's OperationalError (no server, a dropped connection) as DatabaseUnavailable;
    a statement's own errors (bad SQL, a constraint) stay what they are."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(str(error)) from error


Database = SQLiteDatabase | PostgresDatabase
