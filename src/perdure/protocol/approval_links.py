"""Approval links: a signed, expiring URL that lets whoever holds it approve or reject one callback.

A link is ``PUBLIC_URL/approve/TOKEN``, where TOKEN is ``v1.PAYLOAD.MAC``: PAYLOAD is base64url
JSON naming the callback, the link's expiry (epoch seconds) and the summary shown to the
approver; MAC is HMAC-SHA256 of PAYLOAD under a key derived from the server secret
(``PERDURE_SECRET`` or the data folder's ``secret``) with a label of its own. So a server and
its workers make and check links with no table of links: a link changed in any byte, or made
under another secret, fails its MAC; one past its expiry is refused; and one whose callback has
been completed, timed out or ended with its execution opens nothing, as the callback's own
state is what makes a link work once.

The payload is signed, not encrypted: the callback's ID and the summary can be read from the
link. A callback ID alone completes nothing without an API key, and the link itself is the
credential for its one callback: send it only to the person who decides.

The approval page's form carries a CSRF token that is HMAC-SHA256 of the link's token under
another derived key, so a form of one link's page cannot be posted to another link.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from perdure.errors import InvalidParameterError
from perdure.protocol.signed_tokens import SignedTokens

PATH_PREFIX = "/approve/"
DEFAULT_EXPIRES_SECONDS = 3 * 86400
# A year, as the longest a callback's execution usually waits; a link past its callback's end opens nothing anyway.
MAX_EXPIRES_SECONDS = 366 * 86400
# Shown on a page and carried in a URL that goes into an e-mail or a chat: a paragraph.
MAX_SUMMARY_CHARS = 1000
_LINK_LABEL = b"perdure approval links v1"
_CSRF_LABEL = b"perdure approval csrf v1"


class LinkRefused(Exception):
    """A token that opens nothing: forged, changed, malformed or expired; ``reason`` is for the approver."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


@dataclass(frozen=True)
class LinkClaims:
    """What a valid link says: the callback it completes, until when, and the summary to show."""

    callback_id: str
    expires: float
    summary: str


@dataclass(frozen=True)
class ApprovalLink:
    """A link just made: its URL and when it expires (epoch seconds)."""

    url: str
    expires: float


def check_public_url(url: str) -> str:
    """Returns the server's public base URL without a trailing slash; refuses one that cannot prefix a link."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidParameterError(
            f"The public URL {url!r} must be http:// or https:// with a host, and no query or fragment: "
            "the address people reach this server at, for example https://perdure.example.com."
        )
    return url.rstrip("/")


def check_summary(summary: str) -> str:
    if len(summary) > MAX_SUMMARY_CHARS:
        raise InvalidParameterError(
            f"The approval link's summary is {len(summary)} characters long; keep it to {MAX_SUMMARY_CHARS} "
            "(a paragraph saying what is approved), and link to the details from it."
        )
    return summary


def check_expires(seconds: float) -> float:
    if not 1 <= seconds <= MAX_EXPIRES_SECONDS:
        raise InvalidParameterError(
            f"An approval link expires 1 second to {MAX_EXPIRES_SECONDS // 86400} days after it is made, "
            f"not {seconds:g} seconds; give, for example, 3 days."
        )
    return seconds


class ApprovalLinks:
    """Makes and reads approval links with keys derived from the server secret, under ``public_url``."""

    def __init__(self, server_secret: bytes, public_url: str, clock: Callable[[], float] = time.time) -> None:
        self._tokens = SignedTokens(server_secret, _LINK_LABEL, _CSRF_LABEL)
        self.public_url = check_public_url(public_url)
        self.clock = clock

    def make(self, callback_id: str, summary: str = "", expires_seconds: float = DEFAULT_EXPIRES_SECONDS) -> ApprovalLink:
        """A link that approves or rejects ``callback_id`` until ``expires_seconds`` from now."""
        expires = round(self.clock() + check_expires(expires_seconds))
        body = json.dumps({"c": callback_id, "e": expires, "s": check_summary(summary)}, separators=(",", ":"), ensure_ascii=False)
        return ApprovalLink(f"{self.public_url}{PATH_PREFIX}{self._tokens.sign(body)}", expires)

    def read(self, token: str) -> LinkClaims:
        """What a link's token says; raises ``LinkRefused`` for one this server did not make, or that has expired."""
        try:
            payload = self._tokens.payload(token)
            if payload is None:
                raise LinkRefused(
                    "This approval link is not valid: it was changed, cut short, or made by another server. "
                    "Ask for a new link."
                )
            data = json.loads(payload)
            claims = LinkClaims(str(data["c"]), float(data["e"]), str(data["s"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise LinkRefused("This approval link is not valid. Ask for a new link.") from None
        if claims.expires <= self.clock():
            raise LinkRefused("This approval link has expired. Ask for a new link.", expired=True)
        return claims

    def csrf_token(self, token: str) -> str:
        """The token the approval page's form carries, tied to this one link."""
        return self._tokens.csrf_token(token)

    def check_csrf(self, token: str, given: str | None) -> bool:
        return self._tokens.check_csrf(token, given)
