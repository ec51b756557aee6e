"""The dashboard's pages in-process (httpx over ASGI into PerdureApp, on a real SQLite store).

What a browser test would be slow to cover: bad filters and unknown executions answered with
a page that says what was wrong, functions' limits and waiting work, the security headers, static files with their validators, a
sign-in that never sends a person to another site, and how durations read.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browsing import APP

from perdure.api.app import PerdureApp
from perdure.api.dashboard.render import duration
from perdure.api.keys import KeyRing
from perdure.protocol.limits import FunctionLimits, Rate
from perdure.runtime.registry import Registry, seed_functions
from perdure.service import limits
from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore

ORIGIN = "http://testserver"


class Client:
    """A cookie-keeping client that sends each request straight into the ASGI app."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)
        self.cookies = httpx.Cookies()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url=ORIGIN, cookies=self.cookies, follow_redirects=False
            ) as client:
                reply = await client.request(method, url, **kwargs)
                self.cookies.update(client.cookies)
                return reply

        return asyncio.run(send())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@dataclass
class App:
    client: Client
    service: DurableService
    token: str


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    store = SQLiteStore(tmp_path / "perdure.db")
    service = DurableService(store)
    keys = KeyRing(store, b"a server secret for these tests")
    token = keys.create("pages").token
    # No runtime: nothing runs the executions, so each stays as it was started.
    client = Client(PerdureApp(service, Registry(seed_functions(APP)), None, keys))
    try:
        yield App(client, service, token)
    finally:
        store.close()


def _sign_in(app: App) -> None:
    reply = app.client.post("/signin", data={"token": app.token}, headers={"Origin": ORIGIN})
    assert reply.status_code == 303


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("status=DONE", "Unknown status 'DONE'"),
        ("range=2y", "Unknown time range '2y'"),
        ("from=yesterday", "The from time 'yesterday' is not a date and time"),
        ("marker=not-a-marker", "marker"),
    ],
)
def test_a_bad_filter_gets_a_page_saying_what_is_wrong(app: App, query: str, says: str) -> None:
    _sign_in(app)
    reply = app.client.get(f"/?{query}")
    assert reply.status_code == 400
    assert says in html.unescape(reply.text)


def test_filters_narrow_the_list_and_the_counts(app: App) -> None:
    _sign_in(app)
    for name in ("alpha-1", "alpha-2", "beta-1"):
        app.service.start_execution(StartRequest("review", json.dumps({"item": name}), name))
    app.service.start_execution(StartRequest("nightly", "{}", "alpha-nightly"))
    page = app.client.get("/?name=alpha&function=review").text
    assert "alpha-1" in page and "alpha-2" in page
    assert "beta-1" not in page and "alpha-nightly" not in page
    assert 'data-status="RUNNING"><span>RUNNING</span> <b>2</b>' in page
    assert "No execution matches" in app.client.get("/?status=FAILED").text


def test_the_functions_page_shows_limits_and_the_work_waiting(app: App) -> None:
    _sign_in(app)
    limits.declare(app.service, {"review": FunctionLimits(tenant_concurrency=2, rate=Rate(50, 60.0))})
    limits.reserve(app.service, "review", 3)
    for name in ("w-1", "w-2", "w-3"):
        app.service.start_execution(StartRequest("review", json.dumps({"item": name}), name))
    page = app.client.get("/functions").text
    review = page.split("<strong>review</strong>")[1].split("</tr>")[0]
    assert "Limits: 3 at once, 2 at once per tenant, 50/minute" in review
    assert '<td data-label="Waiting" class="waiting">3<br><small class="muted">oldest ' in review
    nightly = page.split("<strong>nightly</strong>")[1].split("</tr>")[0]
    assert "Limits:" not in nightly and '<td data-label="Waiting" class="waiting">0</td>' in nightly


def test_pages_are_paged_by_markers(app: App) -> None:
    _sign_in(app)
    for index in range(55):
        app.service.start_execution(StartRequest("nightly", "{}", f"run-{index:02d}"))
    first = app.client.get("/").text
    assert first.count('class="name"') == 50
    marker = first.split("marker=")[-1].split('"')[0]
    second = app.client.get(f"/?marker={marker}").text
    assert second.count('class="name"') == 5
    assert "run-00" in second and "run-54" not in second


def test_an_unknown_execution_gets_a_page_saying_so(app: App) -> None:
    _sign_in(app)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:review:$LATEST/durable-execution/nope/0"
    reply = app.client.get(f"/execution?arn={quote(arn, safe='')}")
    assert reply.status_code == 404
    assert "nope" in reply.text
    assert app.client.get("/execution").status_code == 400


def test_pages_carry_security_headers(app: App) -> None:
    _sign_in(app)
    reply = app.client.get("/")
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert reply.headers["cache-control"] == "no-store"
    assert '<a href="/" aria-current="page">Executions</a>' in reply.text


def test_static_files_are_served_with_validators(app: App) -> None:
    reply = app.client.get("/static/htmx-2.0.11.min.js")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/javascript")
    again = app.client.get("/static/htmx-2.0.11.min.js", headers={"If-None-Match": reply.headers["etag"]})
    assert again.status_code == 304
    assert app.client.get("/static/nothing.js").status_code == 404


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "evil", "/\\evil.example"])
def test_signing_in_never_sends_a_person_to_another_site(app: App, target: str) -> None:
    reply = app.client.post("/signin", data={"token": app.token, "next": target}, headers={"Origin": ORIGIN})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/"


def test_signing_in_returns_to_the_page_asked_for(app: App) -> None:
    first = app.client.get("/inbox?function=review")
    assert first.headers["location"] == "/signin?next=%2Finbox%3Ffunction%3Dreview"
    reply = app.client.post(
        "/signin", data={"token": app.token, "next": "/inbox?function=review"}, headers={"Origin": ORIGIN}
    )
    assert reply.headers["location"] == "/inbox?function=review"


@pytest.mark.parametrize(
    ("seconds", "reads"),
    [
        (None, "—"),
        (0.0042, "4 ms"),
        (4.25, "4.2 s"),
        (30.0, "30 s"),
        (184, "3 min 4 s"),
        (7200, "2 h"),
        (273600, "3 d 4 h"),
    ],
)
def test_durations_read_as_people_write_them(seconds: float | None, reads: str) -> None:
    assert duration(seconds) == reads


def test_a_failed_invocation_shows_its_error() -> None:
    from perdure.api.dashboard.data import _invocations
    from perdure.protocol.records import ErrorObject
    from perdure.service.history import invocation_completed

    error = ErrorObject(message="The invocation crashed: exit code 3.", type="Runtime.ExitError")
    (view,) = _invocations([invocation_completed(1.0, 2.5, "request", error)])
    assert (view.start, view.end, view.error) == (1.0, 2.5, error)


def test_the_functions_page_shows_each_schedule_and_its_next_fire_time(app: App) -> None:
    from perdure.protocol.schedules import ScheduleDefinition
    from perdure.service.schedules import Schedules

    _sign_in(app)
    schedules = Schedules(app.service)
    (nightly,) = schedules.register("nightly", [ScheduleDefinition("schedule", "cron(0 2 * * ? *)", timezone="Europe/Berlin")])
    schedules.register("review", [ScheduleDefinition("hourly", "rate(1 hour)")])
    schedules.pause("review", "hourly")
    page = html.unescape(app.client.get("/functions").text)
    next_time = datetime.datetime.fromtimestamp(nightly.next_due or 0, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert f"<code>cron(0 2 * * ? *)</code> schedule: next {next_time} UTC" in page
    assert "<code>rate(1 hour)</code> hourly: <mark>paused</mark>" in page
