"""What a function URL hands its function and answers its caller, in Lambda's shapes.

The event is Lambda's function-URL event (API Gateway's payload format 2.0): ``version``,
``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies``, ``headers``,
``queryStringParameters``, ``requestContext`` (with ``http``, ``requestId``, ``timeEpoch``),
``body`` and ``isBase64Encoded``. The reply reads the execution's result as Lambda reads a
function URL's response: an object with ``statusCode`` gives the status, ``headers``,
``cookies`` and ``body`` (base64 with ``isBase64Encoded``); any other result is sent as JSON with
status 200.

Two things are left out of the event because they are credentials of Perdure's, which an
execution's input (stored, shown on the dashboard) must not hold: the ``Authorization``
header of a URL whose ``AuthType`` is ``AWS_IAM`` (its API key's token or signature), and the
dashboard's session cookie, which a browser sends with a request to the same host.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from perdure.api.dashboard.sessions import COOKIE_NAME
from perdure.service.validation import unstorable

# Bodies of these types are passed as text (when they are UTF-8); any other body is base64, as Lambda does.
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-www-form-urlencoded")
_TEXT_SUFFIXES = ("+json", "+xml")
# What a request is, for an idempotency key: the same key with another of these is another request.
IDENTITY = ("rawPath", "rawQueryString", "body", "isBase64Encoded")
# What HTTP allows as a header's name (RFC 9110's token).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class UrlRequest:
    """The parts of an HTTP request to a function URL that its event is made of."""

    function_name: str
    # The path below /url/NAME ("/" for none), still percent-encoded as it arrived.
    raw_path: str
    body: bytes
    drop_authorization: bool
    account_id: str
    now: float


def _is_text(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return not media or media.startswith("text/") or media in _TEXT_TYPES or media.endswith(_TEXT_SUFFIXES)


def _body(body: bytes, content_type: str) -> tuple[str | None, bool]:
    """The event's ``body`` and ``isBase64Encoded``."""
    if not body:
        return None, False
    if _is_text(content_type):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        # Text the store cannot hold (NUL, say) travels as base64 rather than being refused.
        if text is not None and unstorable(text) is None:
            return text, False
    return base64.b64encode(body).decode("ascii"), True


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Repeated names joined with commas, as Lambda joins repeated headers and query parameters."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def url_event(request: Request, url: UrlRequest) -> dict[str, Any]:
    """Lambda's function-URL event for ``request``."""
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    headers: list[tuple[str, str]] = []
    cookies: list[str] = []
    for name, value in request.headers.items():
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip() and c.strip().split("=", 1)[0] != COOKIE_NAME]
        elif not (name == "authorization" and url.drop_authorization):
            headers.append((name, value))
    body, encoded = _body(url.body, request.headers.get("content-type", ""))
    moment = datetime.datetime.fromtimestamp(url.now, datetime.UTC)
    host = request.headers.get("host", "")
    client = request.scope.get("client")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.raw_path,
        "rawQueryString": raw_query,
        "headers": _joined(headers),
        "requestContext": {
            "accountId": url.account_id,
            "apiId": url.function_name,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "http": {
                "method": request.method,
                "path": url.raw_path,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "sourceIp": client[0] if client else "",
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(url.now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = _joined(parse_qsl(raw_query, keep_blank_values=True))
    if body is not None:
        event["body"] = body
    return event


def same_request(stored_input: str | None, event: dict[str, Any]) -> bool:
    """Whether an execution's input is the event of a request like ``event`` (a retry with its key)."""
    try:
        stored = json.loads(stored_input or "")
    except ValueError:
        return False
    return isinstance(stored, dict) and all(stored.get(key) == event.get(key) for key in IDENTITY)


def url_reply(result: str | None, headers: dict[str, str]) -> Response:
    """The HTTP reply for an execution's result, as Lambda answers a function URL with a function's response."""
    try:
        value = json.loads(result or "null")
    except ValueError:
        value = None
    if not isinstance(value, dict) or "statusCode" not in value:
        return Response(result or "null", status_code=200, headers=headers, media_type="application/json")
    status = value.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return _bad_response(f"its statusCode is {status!r}, not an HTTP status between 100 and 599", headers)
    given = value.get("headers") or {}
    body = value.get("body")
    if not isinstance(given, dict) or not (body is None or isinstance(body, str)):
        return _bad_response("its headers must be an object and its body a string", headers)
    cookies = value.get("cookies") or []
    sent = {str(k): str(v) for k, v in given.items()}
    if not isinstance(cookies, list) or not all(_TOKEN.fullmatch(name) for name in sent):
        return _bad_response("a header's name is not an HTTP token (or cookies is not a list)", headers)
    if not all(_sendable(text) for text in [*sent.values(), *map(str, cookies)]):
        return _bad_response("a header's value or a cookie is not one line of Latin-1 text", headers)
    content = (body or "").encode("utf-8")
    if value.get("isBase64Encoded") and body:
        try:
            content = base64.b64decode(body, validate=True)
        except binascii.Error:
            return _bad_response("its body is marked isBase64Encoded but is not base64", headers)
    reply = Response(content, status_code=status, headers={**sent, **headers})
    for cookie in cookies:
        reply.headers.append("set-cookie", str(cookie))
    return reply


def _sendable(text: str) -> bool:
    """Whether ``text`` can be a header's name or value: HTTP/1.1 carries Latin-1, one line."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in text and "\n" not in text and "\x00" not in text


def _bad_response(problem: str, headers: dict[str, str]) -> Response:
    # Lambda answers a malformed function response with 502: the caller's request was fine.
    message = f"The function's response cannot be sent as an HTTP reply: {problem}."
    return Response(json.dumps({"Message": message}), status_code=502, headers=headers, media_type="application/json")
