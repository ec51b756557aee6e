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

import binascii
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from perdure.protocol.signed_tokens import SignedTokens

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
        self._tokens = SignedTokens(secret, b"perdure dashboard session v1", b"perdure dashboard csrf v1")
        self.clock = clock

    def issue(self, access_key_id: str, generation: int) -> tuple[Session, str]:
        """A new session for this key in its current session generation, and its cookie value."""
        session = Session(access_key_id, generation, secrets.token_urlsafe(18), self.clock() + SESSION_SECONDS)
        body = json.dumps(
            {"k": session.access_key_id, "g": session.generation, "s": session.session_id, "e": session.expires}
        )
        return session, self._tokens.sign(body)

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie proves, or None when it is missing, forged, malformed or expired."""
        if not cookie:
            return None
        try:
            payload = self._tokens.payload(cookie)
            if payload is None:
                return None
            data = json.loads(payload)
            session = Session(str(data["k"]), int(data["g"]), str(data["s"]), float(data["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > self.clock() else None

    def csrf_token(self, session: Session) -> str:
        return self._tokens.csrf_token(session.session_id)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return self._tokens.check_csrf(session.session_id, token)
