"""Small things every PostgreSQL transaction of the store needs: naming the database in messages,
telling a full disk from other errors, noticing a connection the server closed, and committing
or rolling back on a pooled connection."""

from __future__ import annotations

import errno
import select
from contextlib import suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from perdure.errors import PerdureError


def describe(url: str) -> str:
    """Names a database by user, host, port and name, leaving out any password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable URL)"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"{user}{info.get('host') or 'localhost'}{port}/{info.get('dbname') or ''}"


def disk_full(error: BaseException | None) -> psycopg.errors.DiskFull | OSError | None:
    """What in ``error`` (or what caused it) says a disk is full: the database's (SQLSTATE 53100), or the blob folder's.

    Out of memory (53200) is left a 500: a 503 would tell the client that the disk is full and
    that retrying helps, where the statement that ran out may run out again just the same.
    """
    while error is not None:
        if isinstance(error, psycopg.errors.DiskFull):
            return error
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        error = error.__cause__ or error.__context__
    return None


def hung_up(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection has something to read: then the server has closed it."""
    if conn.closed:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


def commit(conn: psycopg.Connection[Any]) -> None:
    """Commits, or raises (see ``check_committed``)."""
    check_committed(conn.execute("COMMIT"))


def check_committed(commit: psycopg.Cursor[Any]) -> None:
    """Raises unless COMMIT was answered COMMIT: PostgreSQL answers COMMIT of a transaction that a
    failed statement aborted with ROLLBACK, and no error, so nothing would tell the caller it was
    not recorded."""
    status = commit.statusmessage
    if status != "COMMIT":
        raise PerdureError(f"The transaction was not committed (PostgreSQL answered {status}): nothing of it was recorded.")


def rollback(conn: psycopg.Connection[Any]) -> None:
    # A connection that broke mid-transaction cannot roll back; the pool discards it on
    # return, and the error that broke it is the one worth raising.
    with suppress(psycopg.Error):
        conn.rollback()


def aborted_in_pipeline() -> PerdureError:
    """The error for a pipelined transaction whose COMMIT found it aborted: a statement in it
    failed, and whoever ran it did not let the error end the transaction."""
    return PerdureError(
        "The transaction was not committed (a statement in it failed, and its error was caught "
        "without ending the transaction): nothing of it was recorded."
    )
