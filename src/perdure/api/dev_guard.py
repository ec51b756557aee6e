"""What keeps the open server of ``perdure serve --dev`` to the programs of this machine.

With ``--dev`` there are no keys: the API and dashboard answer anything that reaches the
loopback address. A web page open in the developer's browser reaches it too (issue 11):

- a "simple" cross-site request (``text/plain``, a form post) needs no CORS preflight, so a
  page could POST ``{}`` to ``http://127.0.0.1:8500/…/invocations`` and start an execution;
- with DNS rebinding the page's own name resolves to 127.0.0.1, the browser treats the server
  as the page's origin, and the page reads replies and gets a dashboard session; only the
  ``Host`` header still names the page's site.

So ``DevGuard`` answers only requests whose ``Host`` is a loopback name (``localhost``,
``127.x.x.x``, ``[::1]``; any port), on every route. On the API it also refuses a request a
browser marks as sent by another site (an ``Origin`` not of this host; ``Sec-Fetch-Site``
``cross-site`` or ``same-site``, the latter being another port of localhost) and a body that
is not JSON (a ``Content-Type`` other than ``application/json`` or
``application/x-amz-json-*``). A body with no ``Content-Type`` is accepted: boto3, the AWS
CLI and perdure's client send invoke payloads and callback results so, and a browser adds an
``Origin`` to such a cross-site request. The dashboard's actions have their own origin and
CSRF checks (``perdure.api.dashboard.guard``); its pages may be opened from a link. A function
URL (``/url/NAME``) takes a body of any type, as a webhook sends it: the other checks stand.

Every refusal comes before anything reads the body or changes anything.
"""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from perdure.api.dashboard import is_dashboard_path
from perdure.api.function_urls import is_function_url_path
from perdure.api.http import error_response
from perdure.errors import PerdureError

_JSON_TYPES = ("application/json",)
_JSON_PREFIX = "application/x-amz-json-"


class ForbiddenRequestError(PerdureError):
    """A request a development server refuses: not addressed to this machine, or sent by another site."""

    code = "AccessDeniedException"
    status = 403


class UnsupportedMediaTypeError(PerdureError):
    """A request body a development server refuses because it is not JSON."""

    code = "UnsupportedMediaTypeException"
    status = 415


def is_loopback(host: str) -> bool:
    """Whether a host name or address (no port; IPv6 without brackets) is this machine's loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8500`` is ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


class DevGuard:
    """ASGI middleware of a server with no keys: refuses requests that a web page could have sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check(scope)
            except PerdureError as error:
                await error_response(error.code, error.message, error.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def check(scope: Scope) -> None:
    """Raises ``ForbiddenRequestError`` or ``UnsupportedMediaTypeError`` for a request to refuse."""
    headers = Headers(scope=scope)
    host = headers.get("host", "")
    if not is_loopback(_host_name(host)):
        raise ForbiddenRequestError(
            f"Refused: this development server (--dev) answers only requests to a loopback name "
            f"(localhost, 127.0.0.1 or [::1]), and this one is addressed to {host!r}. Use "
            "http://127.0.0.1:PORT/, or serve without --dev, with keys from `perdure keys create`."
        )
    if is_dashboard_path(scope["path"]):
        return
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site in ("cross-site", "same-site"):
        raise ForbiddenRequestError(
            f"Refused: the browser says another site sent this request (Sec-Fetch-Site: {fetch_site}), "
            "and a development server's open API answers only programs on this machine."
        )
    origin = headers.get("origin")
    if origin is not None and origin.lower() not in (f"http://{host}".lower(), f"https://{host}".lower()):
        raise ForbiddenRequestError(
            f"Refused: this request came from a page of {origin!r}, not of this server, and a development "
            "server's open API answers only programs on this machine."
        )
    has_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    json_only = not is_function_url_path(scope["path"])
    if json_only and has_body and media_type and media_type not in _JSON_TYPES and not media_type.startswith(_JSON_PREFIX):
        raise UnsupportedMediaTypeError(
            f"The request body is {media_type}, and the API takes JSON: send it as application/json "
            "(or with no Content-Type, as boto3 sends a payload)."
        )
