"""Names lease owners after their process, so a dead owner's leases can be taken back at once."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) comes after the command name, which is in parentheses and may hold spaces.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


# The last field of the name of an owner that holds its liveness lock for as long as it lives
# (``Store.hold_owner_lock``): only such owners are judged by their lock, so that an owner that
# takes none (an older version's, during a rolling upgrade) is not thought dead.
LOCKED_SUFFIX = ":locked"


def lease_owner_id(locked: bool = False) -> str:
    """Names this process as a lease owner: ``host:pid:start:random``, then ``:locked`` if it holds a liveness lock.

    ``start`` (when the process started, where the system tells) tells this process from a
    later one that is given the same pid: a restarted container's server often is.
    """
    pid = os.getpid()
    name = f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '-'}:{secrets.token_hex(4)}"
    return name + LOCKED_SUFFIX if locked else name


def holds_lock(owner: str) -> bool:
    """Whether ``owner`` named itself as holding a liveness lock (``lease_owner_id(locked=True)``)."""
    return owner.endswith(LOCKED_SUFFIX)


def owner_is_dead(owner: str) -> bool:
    """True for an owner on this host whose process is gone (its leases can be taken at once).

    An owner on another host, or one whose process cannot be checked, counts as alive: its
    leases lapse on their own.
    """
    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    # The pid is taken: by the owner, or by a later process that was given its number.
    started = parts[2] if len(parts) >= 4 else "-"
    now_started = _start_ticks(pid)
    return started != "-" and now_started is not None and now_started != started
