"""A process's own PostgreSQL connection, outside the pool: it listens for work and holds the process's liveness lock.

Wake-ups: transactions that make an execution ready or expire its lease send
``NOTIFY perdure_ready, '<function>'``, and those that move a timer send it with an empty
payload (anyone may fire a timer). A listener serving some functions wakes for notifications of those and for empty ones
only, so a worker of one function sleeps through the commits of another's.

Liveness: a lease owner (a server's or worker's scheduler) takes a session-level advisory lock
on a key made from its name, on this connection, before it leases anything. The lock lives as
long as the session: when the process dies, or its machine is lost (the server's keepalives
end the session within seconds, see ``perdure.store.pg_settings``), PostgreSQL lets it go, and
another process that finds the lock free knows the owner is gone without waiting for its leases
to lapse. After the connection is lost (a database restart drops every session at once), it is
opened again and the lock taken again by the next ``listen``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

import psycopg

from perdure.store.pg_settings import liveness_options

NOTIFY_CHANNEL = "perdure_ready"
# The advisory lock key of a lease owner (one 64-bit key space, apart from the two-int keys of
# execution names; a collision with a blob's key would need 2^64 tries).
OWNER_LOCK = "hashtextextended(%s, 4242)"


class Listener:
    """One connection that listens on ``NOTIFY_CHANNEL`` and holds this process's owner lock, if it has one.

    Meant for one thread at a time (the scheduler's watcher); ``hold`` and ``connected_since``
    may be called from others.
    """

    def __init__(self, url: str, parameters: Mapping[str, Any] | None = None) -> None:
        self._url = url
        # libpq parameters beside the URL (``perdure.store.pg_settings.connection_parameters``).
        self._parameters = dict(parameters or {})
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._lock = threading.Lock()
        self._owner: str | None = None
        self._since: float | None = None

    def hold(self, owner: str) -> None:
        """Takes the liveness lock of ``owner`` now, and again after every reconnection, until ``close``.

        Waits for the lock: a process checking whether ``owner`` is alive holds it for a moment.
        """
        with self._lock:
            self._owner = owner
            if self._conn is None:
                self._connect()
            else:
                self._conn.execute(f"SELECT pg_advisory_lock({OWNER_LOCK})", (owner,))

    def connected_since(self) -> float | None:
        """Since when (``time.monotonic``) the connection has been open, holding the lock if there is one; None while it is not."""
        return self._since

    def listen(self, timeout: float, functions: Collection[str] | None = None) -> bool:
        """Waits up to ``timeout`` seconds for a notification that concerns ``functions`` (None: every one).

        Returns True when one came, or may have: the first call (which subscribes) and a call
        that lost its connection return True at once, since a notification may have been
        missed; while the database cannot be reached, it waits (up to a second) and returns
        True, so that the caller's next query reports the failure.
        """
        with self._lock:
            if self._conn is None:
                try:
                    self._connect()
                except psycopg.OperationalError:
                    self._drop()
                    time.sleep(min(timeout, 1.0))
                return True
            deadline = time.monotonic() + timeout
            try:
                # Once at least, even with no time to wait: a lost connection shows here.
                while True:
                    for notify in self._conn.notifies(timeout=max(0.0, deadline - time.monotonic()), stop_after=1):
                        if not notify.payload or functions is None or notify.payload in functions:
                            return True
                    if time.monotonic() >= deadline:
                        return False
            except psycopg.OperationalError:
                self._drop()
                return True

    def _connect(self) -> None:
        self._since = None
        conn: psycopg.Connection[tuple[object, ...]] = psycopg.connect(
            self._url, autocommit=True, options=liveness_options(self._url), **self._parameters
        )
        self._conn = conn
        if self._owner is not None:
            conn.execute(f"SELECT pg_advisory_lock({OWNER_LOCK})", (self._owner,))
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self._since = time.monotonic()

    def _drop(self) -> None:
        self._since = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
