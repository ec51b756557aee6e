"""Approval links in headless Chromium against a real `perdure serve` with an API key.

A seed-style function asks for its approval with ``ctx.callback_link`` in its submitter (run in
a worker process); a person who is not signed in opens the link and approves in one click. A
second click, an expired link, a tampered link and a link's form sent to another callback's
link are refused and change nothing: the other execution still waits, and its own link then
approves it.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browsing import CLEAN_ENV, Site, _create_key, browser, screenshot_path  # noqa: F401  (fixtures)
from playwright.sync_api import expect
from servers import PERDURE, Server, wait_for

from perdure.protocol.approval_links import ApprovalLinks

APP = Path(__file__).resolve().parent / "linked.py"
SECRET = "approval-link-tests-" + "s" * 40


@dataclass
class Linked:
    site: Site
    log: Path

    def start(self, item: str, price: float) -> tuple[str, str]:
        """Starts a purchase; returns its ARN and the approval link its submitter wrote."""
        arn = self.site.start(f"{item}-{uuid.uuid4().hex[:8]}", item, "purchase", {"item": item, "price": price, "buyer": "Ada"})

        def link() -> str | None:
            found = re.search(rf"^{item} (\S+)$", self.log.read_text() if self.log.exists() else "", re.M)
            return found[1] if found else None

        return arn, str(wait_for(link, timeout=60))


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    workdir = tmp_path_factory.mktemp("linked")
    log = workdir / "side-effects.log"
    db_url = f"sqlite:///{workdir / 'perdure.db'}"
    env = {**CLEAN_ENV, "PERDURE_TEST_LOG": str(log), "PERDURE_SECRET": SECRET}
    key = _create_key(workdir, db_url)
    server = Server([str(APP)], workdir, env, dev=False)
    server.start()
    try:
        yield Linked(Site(server, key["Token"], key["AccessKeyId"], log), log)
    finally:
        server.stop()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context: nobody is signed in."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _claims(url: str) -> dict[str, Any]:
    payload = url.rsplit("/", 1)[1].split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _with_payload(url: str, claims: dict[str, Any]) -> str:
    """The link with its payload replaced and its signature kept: what a tamperer can make."""
    base, token = url.rsplit("/", 1)
    version, _, mac = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{base}/{version}.{payload}.{mac}"


def _post(url: str, origin: str, csrf: str, outcome: str = "approve") -> httpx.Response:
    return httpx.post(url, data={"csrf": csrf, "outcome": outcome}, headers={"Origin": origin}, timeout=30)


def _status(linked: Linked, arn: str) -> str:
    return linked.site.status(arn)


def test_an_approval_link_approves_once_in_the_browser_and_nothing_else_opens(
    tab: Any, linked: Linked, browser: Any, tmp_path: Path
) -> None:
    site = linked.site
    lamp_arn, lamp_link = linked.start("lamp", 52.5)
    desk_arn, desk_link = linked.start("desk", 129)
    assert lamp_link.startswith(site.url + "/approve/v1.")

    # The page says what is asked, and nothing that is not the approver's to see.
    tab.goto(lamp_link)
    expect(tab.locator("article.approval h2")).to_have_text("Approval requested")
    expect(tab.locator(".approval-name")).to_have_text("purchase approval")
    expect(tab.locator(".approval-summary")).to_have_text("Buy a lamp for 52.5 EUR, for Ada.")
    html = tab.content()
    assert lamp_arn not in html and "arn:aws" not in html and _claims(lamp_link)["c"] not in html
    tab.screenshot(path=screenshot_path("approval-link.png", tmp_path))
    # A second tab holds the same page, to click again once it is decided.
    again = browser.new_page()
    again.goto(lamp_link)

    tab.click("button[value=approve]")
    expect(tab.locator(".notice.ok")).to_contain_text("Approved")
    wait_for(lambda: _status(linked, lamp_arn) == "SUCCEEDED", timeout=30)
    result = json.loads(site.execution(lamp_arn)["Result"])
    assert result == {"item": "lamp", "decision": {"approved": True}}

    # A second click (Reject, from the tab opened before) is refused and changes nothing.
    again.click("button[value=reject]")
    expect(again.locator(".notice.bad")).to_contain_text("already been approved")
    again.close()
    tab.goto(lamp_link)
    expect(tab.locator(".notice.bad")).to_contain_text("no longer open")
    assert json.loads(site.execution(lamp_arn)["Result"]) == result

    # The link opened a page and no session: the dashboard still asks to sign in.
    tab.goto(site.url + "/inbox")
    assert "/signin" in tab.url

    desk = _claims(desk_link)
    # A link past its expiry (made with the server's secret, two days ago, for one day).
    made_before = ApprovalLinks(SECRET.encode(), site.url, clock=lambda: time.time() - 2 * 86400)
    expired = made_before.make(desk["c"], "Buy a desk", 86400).url
    tab.goto(expired)
    expect(tab.locator("article.approval")).to_contain_text("expired")
    expect(tab.locator("button[value=approve]")).to_have_count(0)
    assert _post(expired, site.url, made_before.csrf_token(expired.rsplit("/", 1)[1])).status_code == 410

    # A tampered link: the summary rewritten, or the callback swapped for the lamp's, under the desk link's signature.
    for tampered in (_with_payload(desk_link, {**desk, "s": "Buy a desk for 1 EUR"}), _with_payload(desk_link, {**desk, "c": _claims(lamp_link)["c"]})):
        tab.goto(tampered)
        expect(tab.locator("article.approval")).to_contain_text("not valid")
        expect(tab.locator("button")).to_have_count(0)
    flipped = desk_link[:-1] + ("A" if desk_link[-1] != "A" else "B")
    tab.goto(flipped)
    expect(tab.locator("article.approval")).to_contain_text("not valid")

    # A link for another callback: the lamp link's page sends its form to the desk's link.
    tab.goto(desk_link)
    desk_csrf = tab.locator("input[name=csrf]").get_attribute("value")
    lamp_csrf = ApprovalLinks(SECRET.encode(), site.url).csrf_token(lamp_link.rsplit("/", 1)[1])
    tab.evaluate("csrf => { document.querySelector('input[name=csrf]').value = csrf; }", lamp_csrf)
    tab.click("button[value=approve]")
    expect(tab.locator("article.approval")).to_contain_text("belongs to another link")
    # And without the page's Origin, the desk's own form is refused as well.
    assert _post(desk_link, "https://elsewhere.example", desk_csrf or "").status_code == 403
    assert _status(linked, desk_arn) == "RUNNING"
    assert "decided desk" not in linked.log.read_text()

    # Nothing of that touched the desk's callback: its own link still decides it.
    tab.goto(desk_link)
    tab.click("button[value=reject]")
    expect(tab.locator(".notice.ok")).to_contain_text("Rejected")
    wait_for(lambda: _status(linked, desk_arn) == "FAILED", timeout=30)
    assert site.execution(desk_arn)["Error"]["ErrorType"] == "Rejected"


def _cli(linked: Linked, *args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**linked.site.server.env, **({"PERDURE_TOKEN": linked.site.token} if token else {})}
    return subprocess.run(
        [*PERDURE, "callback", "link", *args, "--endpoint", linked.site.url],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_perdure_callback_link_makes_a_link_for_an_open_callback_only(linked: Linked) -> None:
    site = linked.site
    arn, written = linked.start("chair", 80)
    callback_id = _claims(written)["c"]

    made = _cli(linked, callback_id, "--summary", "Buy a chair for 80 EUR.", "--expires", "2h")
    assert made.returncode == 0, made.stderr
    link = json.loads(made.stdout)
    assert link["CallbackId"] == callback_id and link["Url"].startswith(site.url + "/approve/v1.")
    assert abs(link["ExpiresTimestamp"] - (time.time() + 7200)) < 60
    page = httpx.get(link["Url"], timeout=30)
    assert page.status_code == 200 and "Buy a chair for 80 EUR." in page.text

    refused = _cli(linked, callback_id, token=False)
    assert refused.returncode == 1 and "Missing Authentication Token" in refused.stderr
    too_long = _cli(linked, callback_id, "--expires", "400d")
    assert too_long.returncode == 1 and "366 days" in too_long.stderr
    unknown = _cli(linked, "no-such-callback")
    assert unknown.returncode == 1 and "Callback not found" in unknown.stderr
    assert _cli(linked, callback_id, "--expires", "soon").returncode == 2

    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    assert _post(link["Url"], site.url, csrf[1]).status_code == 200
    wait_for(lambda: _status(linked, arn) == "SUCCEEDED", timeout=30)
    closed = _cli(linked, callback_id)
    assert closed.returncode == 1 and "already SUCCEEDED" in closed.stderr
