"""Who may see the dashboard and act through it.

Every page needs a session (``perdure.api.dashboard.sessions``) made by signing in with the
bearer token of an active API key, and not ended since by signing out (which ends every
session of that key: the store keeps one session generation per key). Every action (a POST) must also

- come from a page of this server: ``Origin`` names this host and, when the browser sends
  ``Sec-Fetch-Site``, it says ``same-origin``; and
- carry the session's CSRF token, in the ``X-Perdure-CSRF`` header (htmx sends it) or the
  ``csrf`` form field.

A request failing any check is refused before anything is read or changed.

With ``perdure serve --dev`` there are no keys and the API is open to this machine; the
dashboard is open as well (a session is made on the first visit, and the page says so), but
actions still need the CSRF token and a same-origin ``Origin``, so another site's page cannot
drive a local server through the browser; and every request must name a loopback ``Host``
(``perdure.api.dev_guard``), so a page cannot get a session by DNS rebinding either.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from perdure.api.dashboard.sessions import COOKIE_NAME, DEV_KEY_ID, Session, SessionSigner
from perdure.api.keys import KeyRing

CSRF_HEADER = "x-perdure-csrf"


class Refused(Exception):
    """A request the dashboard refuses, with the reason shown to the person."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Viewer:
    """The signed-in person behind a request."""

    session: Session
    csrf_token: str
    # The API key's name, or None in development mode.
    key_name: str | None

    @property
    def dev(self) -> bool:
        return self.key_name is None


class Guard:
    """Checks sessions against the server's keys (``keys`` is None in development mode)."""

    def __init__(self, signer: SessionSigner, keys: KeyRing | None) -> None:
        self.signer = signer
        self.keys = keys

    @property
    def dev(self) -> bool:
        return self.keys is None

    async def viewer(self, request: Request) -> Viewer | None:
        """The viewer of a request with a valid session cookie whose key is still active, else None."""
        session = self.signer.read(request.cookies.get(COOKIE_NAME))
        if session is None:
            return None
        if self.keys is None:
            if session.access_key_id != DEV_KEY_ID:
                return None
            return Viewer(session, self.signer.csrf_token(session), None)
        key = await run_in_threadpool(self.keys.active_key, session.access_key_id)
        if key is None or session.generation != key.session_generation:
            return None
        return Viewer(session, self.signer.csrf_token(session), key.name)

    async def sign_in(self, token: str) -> tuple[Session, str] | None:
        """A new session, and its cookie, for the active key with this bearer token; else None."""
        if self.keys is None:
            return self.signer.issue(DEV_KEY_ID, 0)
        key = await run_in_threadpool(self.keys.key_for_token, token.strip())
        if key is None:
            return None
        return self.signer.issue(key.access_key_id, key.session_generation)

    async def sign_out(self, viewer: Viewer) -> None:
        """Ends every session of the viewer's key, this one with them (development sessions end with the process)."""
        if self.keys is not None:
            await run_in_threadpool(self.keys.end_sessions, viewer.session.access_key_id)

    def check_origin(self, request: Request) -> None:
        """Refuses a POST that a page of another site (or no page at all) sent."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site != "same-origin":
            raise Refused(f"Refused: the request came from another site (Sec-Fetch-Site: {fetch_site}).")
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            raise Refused("Refused: the request carries no Origin header; send actions from the dashboard's pages.")
        # The host is compared, not the scheme: behind a TLS proxy the page is https while
        # this server sees http.
        if urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
            raise Refused(f"Refused: the request came from {origin}, not from this server's pages.")

    def check_csrf(self, viewer: Viewer, request: Request, form: dict[str, str]) -> None:
        token = request.headers.get(CSRF_HEADER) or form.get("csrf")
        if not self.signer.check_csrf(viewer.session, token):
            raise Refused(
                "Refused: the form's security token is missing or is not this session's. "
                "Reload the page and try again."
            )
