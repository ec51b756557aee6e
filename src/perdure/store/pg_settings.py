"""How a process uses its PostgreSQL connections: pool size and the time limits each session runs under.

Read from the environment (``PostgresSettings.from_environment``), so that every process of a
deployment (``perdure serve``, ``perdure worker`` and the worker processes they start, which
inherit it) uses the same values without a flag on each command:

- ``PERDURE_PG_POOL_SIZE`` (default 10): connections each process may open for transactions.
  A `perdure worker --workers N` opens up to ``1 + (N + 1) * pool size`` (its own pool, one per
  worker process, and one connection that listens and holds its liveness lock); PostgreSQL's
  ``max_connections`` (100 by default) bounds the sum over all machines.
- ``PERDURE_PG_STATEMENT_TIMEOUT`` (seconds, default 60; 0 turns it off): a statement running
  longer is cancelled. Perdure's own statements take milliseconds; this ends one stuck behind
  something pathological instead of holding a pooled connection for ever.
- ``PERDURE_PG_LOCK_TIMEOUT`` (seconds, default 20; 0 turns it off): a wait for a row lock
  (an execution another transaction is changing) longer than this is given up. Such waits last
  as long as another process's transaction, normally milliseconds.
- ``PERDURE_PG_IDLE_IN_TRANSACTION_TIMEOUT`` (seconds, default 60; 0 turns it off): the server
  ends a session that sits inside a transaction doing nothing for this long, so a process frozen
  or cut off mid-transaction releases the executions it had locked.

A setting given in the URL's own ``options`` (``?options=-c%20statement_timeout%3D5s``) wins
over these, as PostgreSQL applies the last ``-c`` it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from perdure.errors import InvalidParameterError

# The client gives up on a connection whose server has vanished (a failover that left the old
# primary's address dead, a network cut) after about idle + interval * count seconds with no
# answer to its probes, rather than after the operating system's default of two hours.
_CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
# The server drops a connection whose client has vanished (a machine lost, a network cut)
# after about idle + interval * count seconds of silence, rather than after the operating
# system's default of two hours: the liveness lock of a lost worker must be let go in seconds.
_KEEPALIVE = {"tcp_keepalives_idle": 2, "tcp_keepalives_interval": 1, "tcp_keepalives_count": 3}


@dataclass(frozen=True)
class PostgresSettings:
    """A process's connection pool size and its sessions' time limits (in seconds; 0: none)."""

    pool_size: int = 10
    statement_timeout: float = 60.0
    lock_timeout: float = 20.0
    idle_in_transaction_timeout: float = 60.0
    # How long opening a connection, or waiting for a free one in the pool, may take.
    connect_timeout: float = 30.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> PostgresSettings:
        """The settings the ``PERDURE_PG_*`` variables give, the defaults for those not set."""
        defaults = cls()
        return cls(
            pool_size=int(_number(environ, "PERDURE_PG_POOL_SIZE", defaults.pool_size, minimum=1, whole=True)),
            statement_timeout=_number(environ, "PERDURE_PG_STATEMENT_TIMEOUT", defaults.statement_timeout),
            lock_timeout=_number(environ, "PERDURE_PG_LOCK_TIMEOUT", defaults.lock_timeout),
            idle_in_transaction_timeout=_number(
                environ, "PERDURE_PG_IDLE_IN_TRANSACTION_TIMEOUT", defaults.idle_in_transaction_timeout
            ),
        )

    def session_options(self, url: str) -> str:
        """The ``options`` connection parameter for pooled sessions: these limits, then the URL's own options."""
        limits = {
            "statement_timeout": self.statement_timeout,
            "lock_timeout": self.lock_timeout,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout,
        }
        ours = " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in limits.items())
        return f"{ours} {_url_options(url)}".strip()


def connection_parameters(url: str, connect_timeout: float) -> dict[str, Any]:
    """libpq parameters for every connection a store opens: ``connect_timeout`` and client keepalives, where the URL sets none."""
    given = conninfo_to_dict(url)
    ours: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout)), **_CLIENT_KEEPALIVES}
    return {name: value for name, value in ours.items() if name not in given}


def liveness_options(url: str) -> str:
    """The ``options`` of the connection that holds a liveness lock: short keepalives, then the URL's own options."""
    ours = " ".join(f"-c {name}={value}" for name, value in _KEEPALIVE.items())
    return f"{ours} {_url_options(url)}".strip()


def _url_options(url: str) -> str:
    info: dict[str, Any] = conninfo_to_dict(url)
    return str(info.get("options") or "")


def _number(environ: Mapping[str, str], name: str, default: float, minimum: float = 0, whole: bool = False) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        kind = "a whole number" if whole else "a number of seconds"
        raise InvalidParameterError(
            f"{name}={raw!r} is not {kind} of at least {minimum:g}: set it to one, as in {name}={default:g}, "
            "or unset it for that default."
        )
    return float(value)


# SQLSTATEs after which the same request may work a moment later: the session ended by a
# shutdown, crash or administrator (57P01-57P04), a server still starting (57P03), a
# statement or lock wait over its time limit (57014, 55P03), a session idle in a transaction
# too long (25P03), too many connections (53300), and a write sent to a server that is (now)
# a read-only standby, as after a failover that moved the primary elsewhere (25006).
_TRANSIENT = {"57P01", "57P02", "57P03", "57P04", "57014", "55P03", "25P03", "53300", "25006"}


def unavailable(error: BaseException) -> str | None:
    """Why ``error`` (or what caused it) says the database cannot be used now, or None if it does not.

    A lost connection (no SQLSTATE: the server went away mid-request, or cannot be reached),
    a pool that found no connection in time, or one of ``_TRANSIENT``.
    """
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, psycopg.Error):
            state = current.sqlstate
            # A pipeline aborted by a failed statement of its own is no lost connection.
            lost = (
                state is None
                and isinstance(current, psycopg.OperationalError)
                and not isinstance(current, psycopg.errors.PipelineAborted)
            )
            if lost or state in _TRANSIENT or (state or "").startswith("08"):
                return (str(current).strip().splitlines() or [type(current).__name__])[0]
        current = current.__cause__ or current.__context__
    return None
