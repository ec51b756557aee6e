"""Signed tokens: ``v1.PAYLOAD.MAC``, a payload and an HMAC over it, and CSRF tokens tied to a string.

The dashboard's session cookies and approval links are both such tokens, each under keys of its
own, derived from the server secret with a label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class SignedTokens:
    """Signs and opens tokens with the key ``mac_label`` derives from ``secret``; CSRF tokens with ``csrf_label``'s."""

    def __init__(self, secret: bytes, mac_label: bytes, csrf_label: bytes) -> None:
        self._mac_key = hmac.new(secret, mac_label, hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret, csrf_label, hashlib.sha256).digest()

    def sign(self, body: str) -> str:
        payload = _b64(body.encode())
        return f"v1.{payload}.{self._mac(payload)}"

    def payload(self, token: str) -> bytes | None:
        """The body ``sign`` put in ``token``, or None for a token it did not make (changed, cut
        short, or signed with another key). A malformed payload raises ``binascii.Error``."""
        version, _, rest = token.partition(".")
        payload, _, mac = rest.partition(".")
        if version != "v1" or not hmac.compare_digest(self._mac(payload), mac):
            return None
        return _unb64(payload)

    def csrf_token(self, key: str) -> str:
        """The CSRF token of ``key`` (a session's ID, a link's token)."""
        return _b64(hmac.new(self._csrf_key, key.encode(), hashlib.sha256).digest())

    def check_csrf(self, key: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(key), given or "")

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._mac_key, payload.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
