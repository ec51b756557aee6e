"""The dashboard as an ASGI app: its route table, sign-in and sign-out, the guard, static files, approval links."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from perdure.api.dashboard.actions import Actions
from perdure.api.dashboard.approvals import ApprovalPage
from perdure.api.dashboard.data import DashboardData
from perdure.api.dashboard.guard import Guard, Refused, Viewer
from perdure.api.dashboard.pages import Pages
from perdure.api.dashboard.render import page
from perdure.api.dashboard.sessions import COOKIE_NAME, DEV_KEY_ID, SESSION_SECONDS, SessionSigner
from perdure.api.keys import KeyRing
from perdure.errors import PerdureError
from perdure.protocol.approval_links import PATH_PREFIX, ApprovalLinks
from perdure.protocol.records import Execution
from perdure.runtime.registry import Registry
from perdure.service.executions import DurableService
from perdure.service.validation import check_text

PageEndpoint = Callable[[Request, Viewer], Awaitable[Response]]
ActionEndpoint = Callable[[Request, Viewer, dict[str, str]], Awaitable[Response]]

# The first path segments that are the dashboard's; every other path is the API's.
SEGMENTS = frozenset(
    {"", "signin", "signout", "execution", "inbox", "functions", "actions", "static", "favicon.ico", "approve"}
)

# Scripts and styles come from this server only: no inline script can run, so markup that
# slipped through escaping could not act. htmx's own indicator styles are turned off (meta
# htmx-config) for the same reason.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".md": "text/plain", ".txt": "text/plain"}


def is_dashboard_path(path: str) -> bool:
    return path.lstrip("/").split("/", 1)[0] in SEGMENTS


@dataclass(frozen=True)
class _Static:
    body: bytes
    media_type: str
    etag: str


def _load_static() -> dict[str, _Static]:
    files: dict[str, _Static] = {}
    for entry in resources.files("perdure.api.dashboard").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _STATIC_TYPES:
            body = entry.read_bytes()
            files[entry.name] = _Static(body, _STATIC_TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])
    return files


class Dashboard:
    """Serves the dashboard's pages and actions; ``keys`` None means development mode (open).

    With ``links``, it also serves the pages of approval links (``/approve/TOKEN``), which need no
    sign-in. ``wake`` is told of each execution an action or a link's decision made ready.
    """

    def __init__(
        self,
        service: DurableService,
        registry: Registry,
        keys: KeyRing | None,
        secret: bytes | None = None,
        links: ApprovalLinks | None = None,
        wake: Callable[[Execution], None] = lambda execution: None,
    ) -> None:
        # Without the server secret (development mode) sessions last as long as the process.
        self.guard = Guard(SessionSigner(secret or secrets.token_bytes(32)), keys)
        data = DashboardData(service, registry)
        pages = Pages(data)
        actions = Actions(data, wake)
        self.pages: dict[str, PageEndpoint] = {
            "/": pages.executions,
            "/execution": pages.execution,
            "/inbox": pages.inbox,
            "/functions": pages.functions,
        }
        self.actions: dict[str, ActionEndpoint] = {
            "/actions/stop": actions.stop,
            "/actions/pause": actions.pause,
            "/actions/resume": actions.resume,
            "/actions/restart": actions.restart,
            "/actions/callback": actions.callback,
        }
        self.static = _load_static()
        self.approvals = ApprovalPage(service, links, wake) if links is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._respond(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        try:
            if path == "/favicon.ico":
                return Response(status_code=204)
            if path.startswith("/static/") and method == "GET":
                return self._static(request, path.removeprefix("/static/"))
            if path.startswith(PATH_PREFIX) and self.approvals is not None:
                return await self._approval(request, self.approvals, path.removeprefix(PATH_PREFIX))
            if path == "/signin":
                return await (self._sign_in(request) if method == "POST" else self._sign_in_page(request))
            if path == "/signout" and method == "POST":
                return await self._sign_out(request)
            if method == "GET" and path in self.pages:
                return await self._page(request, self.pages[path])
            if method == "POST" and path in self.actions:
                return await self._action(request, self.actions[path])
        except Refused as refusal:
            return _refusal(request, refusal)
        return page("message.html", status=404, title="Not found", message=f"There is no page at {path}.", viewer=None)

    async def _page(self, request: Request, endpoint: PageEndpoint) -> Response:
        viewer = await self.guard.viewer(request)
        if viewer is None and self.guard.dev:
            # Development mode is open: the first visit gets a session, for the CSRF token.
            session, cookie = self.guard.signer.issue(DEV_KEY_ID, 0)
            viewer = Viewer(session, self.guard.signer.csrf_token(session), None)
            response = await self._call_page(request, endpoint, viewer)
            _set_cookie(response, request, cookie)
            return response
        if viewer is None:
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": "/signin"})
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)
        return await self._call_page(request, endpoint, viewer)

    async def _call_page(self, request: Request, endpoint: PageEndpoint, viewer: Viewer) -> Response:
        try:
            for name, value in request.query_params.multi_items():
                check_text(f"query parameter {name}", name + value)
            return await endpoint(request, viewer)
        except PerdureError as error:
            return page(
                "message.html", status=error.status, title="Not available", message=error.message, viewer=viewer
            )

    async def _action(self, request: Request, endpoint: ActionEndpoint) -> Response:
        self.guard.check_origin(request)
        viewer = await self.guard.viewer(request)
        if viewer is None:
            raise Refused("Refused: sign in first (the session is missing, expired or its key was revoked).", 401)
        form = await _form(request)
        self.guard.check_csrf(viewer, request, form)
        return await endpoint(request, viewer, form)

    async def _approval(self, request: Request, approvals: ApprovalPage, token: str) -> Response:
        """An approval link's page (GET), or its decision (POST, from this server's page only)."""
        if request.method == "GET":
            return await approvals.show(token)
        if request.method == "POST":
            self.guard.check_origin(request)
            return await approvals.decide(token, await _form(request))
        return Response(status_code=405, headers={"Allow": "GET, POST"})

    async def _sign_in_page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        if self.guard.dev:
            return RedirectResponse("/", status_code=303)
        return page(
            "signin.html", status=status, viewer=None, error=error, next=_safe_next(request.query_params.get("next"))
        )

    async def _sign_in(self, request: Request) -> Response:
        self.guard.check_origin(request)
        form = await _form(request)
        issued = await self.guard.sign_in(form.get("token", ""))
        if issued is None:
            return await self._sign_in_page(
                request,
                "That token is not the bearer token of an active API key. `perdure keys create --name NAME` "
                "makes a key and prints its token once.",
                status=403,
            )
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        _set_cookie(response, request, issued[1])
        return response

    async def _sign_out(self, request: Request) -> Response:
        self.guard.check_origin(request)
        viewer = await self.guard.viewer(request)
        if viewer is not None:
            self.guard.check_csrf(viewer, request, await _form(request))
            await self.guard.sign_out(viewer)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/")
        return response

    def _static(self, request: Request, name: str) -> Response:
        found = self.static.get(name)
        if found is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        headers = {"ETag": f'"{found.etag}"', "Cache-Control": "public, max-age=3600"}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)


def _set_cookie(response: Response, request: Request, cookie: str) -> None:
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else (another site) becomes ``/``."""
    # Browsers read a backslash as a slash, so "/\\host" would be another site too.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or urlsplit(target).netloc:
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (what the dashboard's forms and htmx send)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    for name, value in form.items():
        try:
            check_text(f"form field {name}", name + value)
        except PerdureError as error:
            raise Refused(error.message, error.status) from None
    return form


def _refusal(request: Request, refusal: Refused) -> Response:
    if request.headers.get("hx-request"):
        return page("_notice.html", status=refusal.status, kind="bad", message=refusal.reason)
    return page("message.html", status=refusal.status, title="Refused", message=refusal.reason, viewer=None)
