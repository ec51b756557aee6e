"""The dashboard refuses what it must, over plain HTTP against a real `perdure serve` with a key.

A page without a valid sign-in (none, a tampered, foreign or expired cookie, a revoked key's)
is not shown, and an action without one, or sent cross-site (another Origin, a cross-site
Sec-Fetch-Site, no Origin, a missing or another session's CSRF token), is refused. After
each refused action the test checks that the execution still waits for its callback, with
nothing new in its history; then the same action, sent properly, goes through, so the checks
can tell the difference.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from browsing import APP, CSRF, CLEAN_ENV, Site, close_http_clients, http_client, site  # noqa: F401  (fixtures)
from servers import PERDURE, Server, wait_for

from perdure.api.dashboard.sessions import COOKIE_NAME, SECRET_LABEL, SessionSigner
from perdure.api.keys import KeyRing, api_secret
from perdure.store.sqlite import SQLiteStore


def _signed_in(site: Site, token: str | None = None) -> tuple[httpx.Client, str]:
    """A client with a session cookie, and the session's CSRF token read from a page."""
    client = http_client(site.url)
    reply = client.post("/signin", data={"token": token or site.token, "next": "/"}, headers={"Origin": site.url})
    assert reply.status_code == 303, reply.text
    page = client.get("/")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found is not None
    return client, found[1]


@pytest.fixture
def waiting(site: Site) -> Iterator[tuple[str, str]]:
    """An execution waiting for its approval: (ARN, callback ID)."""
    arn = site.start(f"guarded-{uuid.uuid4().hex[:8]}", "bulb")
    yield arn, site.callback_id(arn)


def _unchanged(site: Site, arn: str, events_before: int) -> None:
    events = site.events(arn)
    assert site.status(arn) == "RUNNING"
    assert len(events) == events_before, [e["EventType"] for e in events[events_before:]]
    assert not any(e["EventType"].startswith("Callback") and e["EventType"] != "CallbackStarted" for e in events)


def _approve(client: httpx.Client, callback_id: str, headers: dict[str, str], csrf: str | None) -> httpx.Response:
    form = {"callback_id": callback_id, "outcome": "approve", "result": '{"approved": true}'}
    if csrf is not None:
        form["csrf"] = csrf
    return client.post("/actions/callback", data=form, headers={"HX-Request": "true", **headers})


def test_pages_without_a_sign_in_redirect_to_it_and_show_nothing(site: Site, waiting: tuple[str, str]) -> None:
    arn, _ = waiting
    client = http_client(site.url)
    for path in ("/", f"/execution?arn={quote(arn, safe='')}", "/inbox", "/functions", "/?part=results"):
        reply = client.get(path)
        assert reply.status_code == 303, path
        assert reply.headers["location"].startswith("/signin?next=")
        assert "guarded-" not in reply.text
    live = client.get(f"/execution?arn={quote(arn, safe='')}&part=live", headers={"HX-Request": "true"})
    assert live.status_code == 401
    assert live.headers["HX-Redirect"] == "/signin"
    assert client.get("/signin").status_code == 200


def test_a_wrong_token_does_not_sign_in(site: Site) -> None:
    client = http_client(site.url)
    reply = client.post("/signin", data={"token": "pdt_not-a-key"}, headers={"Origin": site.url})
    assert reply.status_code == 403
    assert "not the bearer token of an active API key" in reply.text
    assert COOKIE_NAME not in reply.headers.get("set-cookie", "")
    assert client.get("/").status_code == 303


def test_the_session_cookie_is_http_only_strict_and_expiring(site: Site) -> None:
    reply = http_client(site.url).post("/signin", data={"token": site.token}, headers={"Origin": site.url})
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=43200" in cookie


def test_a_sign_in_from_another_site_is_refused(site: Site) -> None:
    reply = http_client(site.url).post("/signin", data={"token": site.token}, headers={"Origin": "http://evil.example"})
    assert reply.status_code == 403
    assert "set-cookie" not in reply.headers


def _server_signer(site: Site, clock: Any = time.time) -> SessionSigner:
    """A signer with the server's own session key, read from its data folder like the server does."""
    workdir = site.server.workdir
    store = SQLiteStore(workdir / "perdure.db")
    try:
        secret = KeyRing(store, api_secret(workdir)).derived_secret(SECRET_LABEL)
    finally:
        store.close()
    return SessionSigner(secret, clock)


def _session_generation(site: Site) -> int:
    """The key's session generation now, so that a forged cookie is refused for what the test says."""
    store = SQLiteStore(site.server.workdir / "perdure.db")
    try:
        key = store.get_api_key(site.access_key_id)
    finally:
        store.close()
    assert key is not None
    return key.session_generation


def test_bad_and_expired_cookies_are_refused_and_change_nothing(site: Site, waiting: tuple[str, str]) -> None:
    arn, callback_id = waiting
    _, csrf = _signed_in(site)
    good = http_client(site.url)
    good.post("/signin", data={"token": site.token}, headers={"Origin": site.url})
    valid = good.cookies[COOKIE_NAME]
    version, payload, mac = valid.split(".")
    hour_ago = time.time() - 13 * 3600
    generation = _session_generation(site)
    expired_session, expired = _server_signer(site, clock=lambda: hour_ago).issue(site.access_key_id, generation)
    foreign_session, foreign = SessionSigner(b"another server's secret").issue(site.access_key_id, generation)
    cookies = {
        "tampered MAC": f"{version}.{payload}.{mac[:-2]}xx",
        "tampered payload": f"{version}.{payload[:-2]}AA.{mac}",
        "garbage": "not-a-session",
        "another server's": foreign,
        "expired": expired,
    }
    events_before = len(site.events(arn))
    for what, cookie in cookies.items():
        client = http_client(site.url, cookie)
        assert client.get("/").status_code == 303, what
        tokens = (
            csrf,
            _server_signer(site).csrf_token(expired_session),
            SessionSigner(b"another server's secret").csrf_token(foreign_session),
        )
        for token in tokens:
            reply = _approve(client, callback_id, {"Origin": site.url}, token)
            assert reply.status_code == 401, (what, reply.text)
            assert "sign in first" in reply.text
    _unchanged(site, arn, events_before)


def test_cross_site_actions_are_refused_and_change_nothing(site: Site, waiting: tuple[str, str]) -> None:
    arn, callback_id = waiting
    client, csrf = _signed_in(site)
    _, other_csrf = _signed_in(site)
    events_before = len(site.events(arn))
    refused = {
        "another Origin": ({"Origin": "http://evil.example"}, csrf),
        "a lookalike Origin": ({"Origin": site.url + ".evil.example"}, csrf),
        "no Origin": ({}, csrf),
        "Origin null": ({"Origin": "null"}, csrf),
        "cross-site fetch": ({"Origin": site.url, "Sec-Fetch-Site": "cross-site"}, csrf),
        "same-site fetch": ({"Origin": site.url, "Sec-Fetch-Site": "same-site"}, csrf),
        "no CSRF token": ({"Origin": site.url}, None),
        "an empty CSRF token": ({"Origin": site.url}, ""),
        "another session's CSRF token": ({"Origin": site.url}, other_csrf),
    }
    for what, (headers, token) in refused.items():
        reply = _approve(client, callback_id, headers, token)
        assert reply.status_code == 403, (what, reply.text)
        assert "Refused" in reply.text, what
        stop = client.post("/actions/stop", data={"arn": arn, **({"csrf": token} if token else {})}, headers=headers)
        assert stop.status_code == 403, what
        restart = client.post(
            "/actions/restart",
            data={"arn": arn, "checkpoint": "2", **({"csrf": token} if token else {})},
            headers=headers,
        )
        assert restart.status_code == 403, what
    _unchanged(site, arn, events_before)
    assert site.api("GET", "/2025-12-01/functions/review/durable-executions").json()["DurableExecutions"][0]["Status"]

    # The CSRF token also works as a header (htmx sends it so); sent properly, the approval goes through.
    reply = client.post(
        "/actions/callback",
        data={"callback_id": callback_id, "outcome": "approve", "result": '{"approved": true}'},
        headers={"HX-Request": "true", "Origin": site.url, "Sec-Fetch-Site": "same-origin", "X-Perdure-CSRF": csrf},
    )
    assert reply.status_code == 200, reply.text
    wait_for(lambda: site.status(arn) == "SUCCEEDED", timeout=60)


def test_a_bad_json_result_is_refused_and_changes_nothing(site: Site, waiting: tuple[str, str]) -> None:
    arn, callback_id = waiting
    client, csrf = _signed_in(site)
    events_before = len(site.events(arn))
    reply = client.post(
        "/actions/callback",
        data={"callback_id": callback_id, "outcome": "approve", "result": "{approved: yes}", "csrf": csrf},
        headers={"HX-Request": "true", "Origin": site.url},
    )
    assert reply.status_code == 400
    assert "not valid JSON" in reply.text
    _unchanged(site, arn, events_before)


def test_revoking_the_key_ends_its_sessions(site: Site) -> None:
    workdir, db_url = site.server.workdir, site.server.db_url
    made = subprocess.run(
        [*PERDURE, "keys", "create", "--name", f"brief-{uuid.uuid4().hex[:6]}", "--db", db_url],
        cwd=workdir, env=CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )
    key = json.loads(made.stdout)
    client, _ = _signed_in(site, key["Token"])
    assert client.get("/inbox").status_code == 200
    revoked = subprocess.run(
        [*PERDURE, "keys", "revoke", key["AccessKeyId"], "--db", db_url],
        cwd=workdir, env=CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/inbox").status_code == 303


def test_the_api_still_needs_its_own_credentials(site: Site) -> None:
    """A dashboard session is not an API credential: the API refuses a request carrying only the cookie."""
    client, _ = _signed_in(site)
    reply = client.get("/2025-12-01/functions/review/durable-executions")
    assert reply.status_code == 403
    assert reply.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_development_mode_is_open_and_says_so_but_still_checks_actions(tmp_path: Path) -> None:
    server = Server([str(APP)], tmp_path, {**CLEAN_ENV, "PERDURE_TEST_LOG": str(tmp_path / "log")})
    server.start()
    try:
        client = http_client(server.endpoint)
        page = client.get("/")
        assert page.status_code == 200
        assert "Development mode" in page.text
        csrf = CSRF.search(page.text)
        assert csrf is not None
        refused = client.post(
            "/actions/stop", data={"arn": "x", "csrf": csrf[1]}, headers={"Origin": "http://evil.example"}
        )
        assert refused.status_code == 403
        no_token = client.post("/actions/stop", data={"arn": "x"}, headers={"Origin": server.endpoint})
        assert no_token.status_code == 403
        assert client.get("/signin").headers["location"] == "/"
    finally:
        server.stop()


def test_signing_out_forgets_the_session_and_only_the_dashboards_pages_can_ask_it(site: Site) -> None:
    client, csrf = _signed_in(site)
    refused = client.post("/signout", data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403
    assert client.get("/").status_code == 200
    reply = client.post("/signout", data={"csrf": csrf}, headers={"Origin": site.url})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/signin"
    assert client.get("/").status_code == 303
