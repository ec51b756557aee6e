"""Authentication of the HTTP API: AWS Signature Version 4 as boto3 and the AWS CLI sign, or a bearer token.

``Authenticator`` wraps the API. A request passes when it carries either

- ``Authorization: Bearer TOKEN`` with the token of an active key, or
- ``Authorization: AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/lambda/aws4_request,
  SignedHeaders=…, Signature=…`` made with the secret of an active key (any region, service
  ``lambda``), an ``X-Amz-Date`` within five minutes of the server's clock, and ``host`` and
  ``x-amz-date`` among the signed headers.

Anything else gets 403 in Lambda's error shape, with AWS's error codes
(``MissingAuthenticationTokenException``, ``UnrecognizedClientException``,
``IncompleteSignatureException``, ``InvalidSignatureException``), before the request reaches
a route: a refused request changes nothing. ``/health`` stays open, for load balancers.

The canonical request is rebuilt from what arrived, as the SigV4 specification and botocore
(``botocore.auth.SigV4Auth.canonical_request``) build it:

- the URI is the *raw* path, percent-encoded once more (``quote(path, safe="/~")``): an ARN
  sent as ``arn%3Aaws%3A…%2Fdurable-execution%2F…`` is signed as ``arn%253Aaws%253A…``.
  Every service but S3 double-encodes so. A path with empty, ``.`` or ``..`` segments is
  refused: the specification normalizes them away before signing, but the router matches
  raw segments, so a signature over the normalized path must not cover another raw one;
- the query is decoded as the routes decode it (``+`` is a space), each name and value
  encoded with only ``A-Za-z0-9-_.~`` left bare, and sorted;
- the payload hash is always the SHA-256 of the body received: ``UNSIGNED-PAYLOAD`` is
  refused, and so is an ``X-Amz-Content-SHA256`` that does not match the body.

So the method, path, query, body and every signed header are covered. Not covered, as with
AWS itself: headers the client did not sign (botocore signs only ``host`` and ``x-amz-date``
for Lambda), and replays of a captured request within its five minutes. Over plain HTTP a
token or signed request can be captured: beyond a trusted network, put TLS in front.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from perdure.api.body_limit import replaying
from perdure.api.http import error_response
from perdure.api.keys import KeyRing
from perdure.errors import PerdureError

MAX_SKEW_SECONDS = 300
OPEN_PATHS = frozenset({"/health"})
SERVICE = "lambda"
ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_HOW = (
    "Sign requests with SigV4 using a key pair from `perdure keys create` (boto3 and the AWS CLI do, "
    "given it as their credentials), or send `Authorization: Bearer TOKEN` with its token."
)
_log = logging.getLogger("perdure.auth")


class AuthenticationError(PerdureError):
    """A request the API refuses: no credentials, unknown or revoked ones, or a bad signature."""

    status = 403


class MissingAuthenticationError(AuthenticationError):
    code = "MissingAuthenticationTokenException"


class UnrecognizedClientError(AuthenticationError):
    code = "UnrecognizedClientException"


class IncompleteSignatureError(AuthenticationError):
    code = "IncompleteSignatureException"


class InvalidSignatureError(AuthenticationError):
    code = "InvalidSignatureException"


@dataclass(frozen=True)
class SigV4Header:
    """What an ``Authorization: AWS4-HMAC-SHA256 …`` header says."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


_FIELD = re.compile(r"\s*(Credential|SignedHeaders|Signature)=([^,\s]*)\s*")


def parse_sigv4(value: str) -> SigV4Header:
    """Parses the part of the header after ``AWS4-HMAC-SHA256``."""
    fields: dict[str, str] = {}
    for part in value.split(","):
        match = _FIELD.fullmatch(part)
        if match is None or match[1] in fields:
            raise IncompleteSignatureError(
                f"The Authorization header is malformed near {part.strip()!r}: it must be "
                f"'{ALGORITHM} Credential=ID/DATE/REGION/{SERVICE}/aws4_request, SignedHeaders=…, Signature=…'."
            )
        fields[match[1]] = match[2]
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise IncompleteSignatureError(f"The Authorization header has no {' or '.join(missing)}. {_HOW}")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not re.fullmatch(r"\d{8}", scope[1]):
        raise IncompleteSignatureError(
            f"The credential {fields['Credential']!r} is malformed: "
            f"it must be ID/YYYYMMDD/REGION/{SERVICE}/aws4_request."
        )
    return SigV4Header(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
    )


def canonical_uri(raw_path: str) -> str:
    """The path as SigV4 signs it: the raw path percent-encoded once more ('/' and '~' left as they are)."""
    segments = raw_path.split("/")[1:]
    # A trailing slash is signed as sent (botocore keeps it): only inner segments must be real.
    inner = segments[:-1] if segments and segments[-1] == "" else segments
    if not raw_path.startswith("/") or any(s in ("", ".", "..") for s in inner):
        raise InvalidSignatureError(
            f"The path {raw_path!r} has empty, '.' or '..' segments; send it normalized, as signed."
        )
    return quote(raw_path, safe="/~")


def canonical_query(raw_query: str) -> str:
    """The query as SigV4 signs it: names and values decoded as the routes read them, re-encoded, sorted."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs))


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, list[str]],
    signed_headers: tuple[str, ...],
    payload_sha256: str,
) -> str:
    """The canonical request of the SigV4 specification, from the request as received."""
    lines = [f"{name}:{','.join(' '.join(v.split()) for v in headers.get(name, []))}" for name in signed_headers]
    return "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            "\n".join(lines) + "\n",
            ";".join(signed_headers),
            payload_sha256,
        ]
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def signature(secret: str, amz_date: str, header: SigV4Header, canonical: str) -> str:
    """The signature a client holding ``secret`` computes over ``canonical``."""
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, header.scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = _hmac(f"AWS4{secret}".encode(), header.date)
    for part in (header.region, header.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


class _Disconnected(Exception):
    """The client went away while its body was being read."""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class Authenticator:
    """ASGI middleware: passes on requests authenticated by an active key; answers others 403."""

    def __init__(self, app: ASGIApp, keys: KeyRing, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self.app = app
        self.keys = keys
        self.clock = clock or (lambda: datetime.datetime.now(datetime.UTC))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            receive = await self._authenticate(scope, receive)
        except _Disconnected:
            return
        except AuthenticationError as error:
            await error_response(error.code, error.message, error.status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope, receive: Receive) -> Receive:
        """Returns the ``receive`` to hand the app, or raises ``AuthenticationError``."""
        headers = _headers(scope)
        values = headers.get("authorization", [])
        if not values:
            raise MissingAuthenticationError(
                f"Missing Authentication Token: the request carries no Authorization header. {_HOW}"
            )
        if len(values) > 1:
            raise IncompleteSignatureError("The request carries several Authorization headers; send one.")
        scheme, _, credentials = values[0].strip().partition(" ")
        if scheme.lower() == "bearer":
            key = await run_in_threadpool(self.keys.key_for_token, credentials.strip())
            if key is None:
                raise UnrecognizedClientError(
                    "The bearer token is not valid: it is not the token of any active key (it may be revoked). "
                    "`perdure keys create` makes a new key with its token."
                )
            return receive
        if scheme != ALGORITHM:
            raise IncompleteSignatureError(
                f"Authorization scheme {scheme!r} is not supported: use {ALGORITHM} (SigV4) or Bearer. {_HOW}"
            )
        header = parse_sigv4(credentials)
        amz_date = self._check_date(header, headers)
        key = await run_in_threadpool(self.keys.active_key, header.access_key_id)
        if key is None:
            raise UnrecognizedClientError(
                f"The security token included in the request is invalid: no active key has the access key ID "
                f"{header.access_key_id!r} (it may be revoked). `perdure keys list` shows the keys."
            )
        secret = self.keys.signing_secret(key)
        if secret is None:
            _log.warning(
                "Refused a request signed with key %s (%s): it was made under another server secret. "
                "Give this server the PERDURE_SECRET (or data folder secret file) `perdure keys create` used.",
                key.access_key_id, key.name,
            )
            raise InvalidSignatureError(
                f"Key {key.access_key_id} cannot be verified by this server (it was made under another "
                "server secret); the server's log says more."
            )
        body = await _read_body(receive)
        payload_sha256 = hashlib.sha256(body).hexdigest()
        declared = headers.get("x-amz-content-sha256", [payload_sha256])[0]
        if declared != payload_sha256:
            raise InvalidSignatureError(
                f"X-Amz-Content-SHA256 is {declared!r} but the body received hashes to {payload_sha256}: "
                "the body must be signed, and must not change after signing."
            )
        canonical = canonical_request(
            scope["method"],
            (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            header.signed_headers,
            payload_sha256,
        )
        if not hmac.compare_digest(signature(secret, amz_date, header, canonical), header.signature):
            raise InvalidSignatureError(
                "The request signature we calculated does not match the signature you provided. Check your "
                "secret access key and signing method, and that nothing changed the request after it was signed."
            )
        return replaying(body, receive)

    def _check_date(self, header: SigV4Header, headers: dict[str, list[str]]) -> str:
        """Returns ``X-Amz-Date`` once it is signed, matches the scope and is within five minutes of now."""
        if header.service != SERVICE:
            raise InvalidSignatureError(
                f"The credential scope names the service {header.service!r}; sign for {SERVICE!r}."
            )
        for required in ("host", "x-amz-date"):
            if required not in header.signed_headers:
                raise InvalidSignatureError(f"The signed headers must include {required!r}.")
        amz_date = headers.get("x-amz-date", [""])[0]
        try:
            when = datetime.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=datetime.UTC)
        except ValueError:
            raise IncompleteSignatureError(
                f"X-Amz-Date must be the signing time as YYYYMMDD'T'HHMMSS'Z', not {amz_date!r}."
            ) from None
        if amz_date[:8] != header.date:
            raise InvalidSignatureError(
                f"The date in the credential scope ({header.date}) is not the date of X-Amz-Date ({amz_date})."
            )
        now = self.clock()
        skew = (when - now).total_seconds()
        if abs(skew) > MAX_SKEW_SECONDS:
            stamp = now.strftime(_AMZ_DATE)
            side = "earlier" if skew < 0 else "later"
            raise InvalidSignatureError(
                f"Signature expired: {amz_date} is {abs(skew):.0f} s {side} than the server's time {stamp}, "
                f"more than the {MAX_SKEW_SECONDS // 60} minutes allowed. Sign the request again (check the clock)."
            )
        return amz_date
