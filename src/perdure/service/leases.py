"""Names lease owners after their process, so a dead owner's leases can be taken back at once."""

from __future__ import annotations

import os
import secrets
import socket


def lease_owner_id() -> str:
    """Names this process as a lease owner: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """True for an owner on this host whose process is gone (its leases can be taken at once)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
