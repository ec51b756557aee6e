"""Fixtures and helpers of the dashboard tests: a real `perdure serve` of approvals.py (with an API
key, no --dev), and a headless Chromium.

The browser is Debian's chromium driven by Playwright through ``executable_path``: no browser
is downloaded. Without /usr/bin/chromium the browser tests are skipped, except under CI
(.ci/run installs it), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from servers import HANDLERS, PERDURE, ROOT, Server, wait_for

from perdure.api.dashboard.sessions import COOKIE_NAME

APP = Path(__file__).resolve().parent / "approvals.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

def screenshot_path(name: str, tmp: Path) -> str:
    """Where a test saves a screenshot: docs/ when PERDURE_SCREENSHOTS=docs (the README's), else ``tmp``."""
    folder = ROOT / "docs" if os.environ.get("PERDURE_SCREENSHOTS") == "docs" else tmp
    return str(folder / name)

# Keep the AWS and Perdure settings of whoever runs the tests out of the server.
CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("PERDURE_TOKEN", "PERDURE_SECRET")
}


@dataclass
class Site:
    """The server, the bearer token of its key, and API calls the tests make around the browser."""

    server: Server
    token: str
    access_key_id: str
    side_effects: Path

    @property
    def url(self) -> str:
        return self.server.endpoint

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def start(self, name: str, item: str, function: str = "review", event: dict[str, Any] | None = None) -> str:
        """Starts an execution and returns its ARN."""
        reply = self.api(
            "POST",
            f"/2015-03-31/functions/{function}/invocations",
            headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": name},
            content=json.dumps(event if event is not None else {"item": item}),
        )
        assert reply.status_code == 202, reply.text
        return str(reply.headers["X-Amz-Durable-Execution-Arn"])

    def execution(self, arn: str) -> dict[str, Any]:
        reply = self.api("GET", f"/2025-12-01/durable-executions/{quote(arn, safe='')}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def events(self, arn: str) -> list[dict[str, Any]]:
        reply = self.api("GET", f"/2025-12-01/durable-executions/{quote(arn, safe='')}/history?MaxItems=1000")
        assert reply.status_code == 200, reply.text
        return list(reply.json()["Events"])

    def callback_id(self, arn: str) -> str:
        """Waits until the execution waits for its approval; returns the callback's ID."""

        def started() -> str | None:
            for event in self.events(arn):
                if event["EventType"] == "CallbackStarted":
                    return str(event["CallbackStartedDetails"]["CallbackId"])
            return None

        return str(wait_for(started, timeout=60))

    def status(self, arn: str) -> str:
        return str(self.execution(arn)["Status"])


def _create_key(workdir: Path, db_url: str) -> dict[str, Any]:
    done = subprocess.run(
        [*PERDURE, "keys", "create", "--name", "browser", "--db", db_url],
        cwd=workdir, env=CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("dashboard")
    side_effects = workdir / "side-effects.log"
    db_url = f"sqlite:///{workdir / 'perdure.db'}"
    key = _create_key(workdir, db_url)
    # Beside the seed-style app, an AWS-SDK handler: a step, a wait, a callback, a step.
    aws_flow = f"aws_flow={HANDLERS / 'journaled.py'}:step_wait_callback"
    server = Server([str(APP), aws_flow], workdir, {**CLEAN_ENV, "PERDURE_TEST_LOG": str(side_effects)}, dev=False)
    server.start()
    try:
        yield Site(server, key["Token"], key["AccessKeyId"], side_effects)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        message = "Debian's chromium is not installed (apt-get install chromium): the browser tests need it."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A signed-in page in a fresh browser context (its own cookies), on a laptop-sized screen."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    # Confirmations (restart, stop, ...) are accepted, as a person clicking OK would, unless
    # a test puts False in ``tab.confirm`` to answer Cancel.
    tab.confirm = [True]
    tab.on("dialog", lambda dialog: dialog.accept() if tab.confirm[-1] else dialog.dismiss())
    sign_in(tab, site)
    try:
        yield tab
    finally:
        context.close()


def sign_in(tab: Any, site: Site) -> None:
    tab.goto(site.url + "/")
    assert "/signin" in tab.url
    tab.fill("#token", site.token)
    tab.click("button[type=submit]")
    tab.wait_for_url(site.url + "/")


def settle(seconds: float = 0.3) -> None:
    time.sleep(seconds)


# The session's CSRF token, as a page gives it to htmx.
CSRF = re.compile(r'"X-Perdure-CSRF": "([^"]+)"')
_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def close_http_clients() -> Iterator[None]:
    """Closes the clients ``http_client`` made, after each test of a module that imports it."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def http_client(url: str, cookie: str | None = None) -> httpx.Client:
    """A client that keeps cookies (``cookie`` as the session's, if given) and does not follow redirects."""
    client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    if cookie is not None:
        client.cookies.set(COOKIE_NAME, cookie)
    _OPEN.append(client)
    return client
