"""Dashboard sessions: a signed, expiring cookie made at sign-in, and its CSRF token.

The cookie holds ``v1.PAYLOAD.MAC``: PAYLOAD is base64url JSON naming the API key that signed
in (its access key ID), the key's session generation, a random session ID and the expiry; MAC
is HMAC-SHA256 of PAYLOAD under a key derived from the server secret. Nothing secret is in the
cookie: it proves only that this server issued it. The key is looked up again on every request,
so revoking it (``perdure keys revoke``) ends its sessions at once, and so does signing out: it
bumps the key's generation in the store, and a cookie of an older one is refused (a cookie is
a bearer credential, and one copied before sign-out must not outlive it).

The CSRF token of a session is HMAC-SHA256 of its session ID under another derived key: a page
of another site cannot read it (same-origin policy), so it cannot forge an action.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE_NAME = "perdure_session"
# What keeps the dashboard's use of the server secret apart from its other uses (KeyRing.derived_secret).
SECRET_LABEL = b"perdure dashboard"
SESSION_SECONDS = 12 * 3600
# Who a development-mode session (``perdure serve --dev``, no keys) belongs to.
DEV_KEY_ID = "dev"


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the key it signed in with, the key's session generation then, its ID and when it expires."""

    access_key_id: str
    generation: int
    session_id: str
    expires: float


class SessionSigner:
    """Makes and checks session cookies and CSRF tokens with keys derived from ``secret``."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._mac_key = hmac.new(secret, b"perdure dashboard session v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret, b"perdure dashboard csrf v1", hashlib.sha256).digest()
        self.clock = clock

    def issue(self, access_key_id: str, generation: int) -> tuple[Session, str]:
        """A new session for this key in its current session generation, and its cookie value."""
        session = Session(access_key_id, generation, secrets.token_urlsafe(18), self.clock() + SESSION_SECONDS)
        body = json.dumps(
            {"k": session.access_key_id, "g": session.generation, "s": session.session_id, "e": session.expires}
        )
        payload = _b64(body.encode())
        return session, f"v1.{payload}.{self._mac(payload)}"

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie proves, or None when it is missing, forged, malformed or expired."""
        if not cookie:
            return None
        version, _, rest = cookie.partition(".")
        payload, _, mac = rest.partition(".")
        if version != "v1" or not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["k"]), int(data["g"]), str(data["s"]), float(data["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > self.clock() else None

    def csrf_token(self, session: Session) -> str:
        return _b64(hmac.new(self._csrf_key, session.session_id.encode(), hashlib.sha256).digest())

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), token or "")

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._mac_key, payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
