"""The dashboard in headless Chromium against a real `perdure serve` with an API key.

A person signs in with the key's token, finds an execution by name, reads its operations and
a checkpoint's saved variables, approves and rejects callbacks from the inbox and watches the
executions end without reloading, and restarts an execution from its second checkpoint; and
every page fits a phone's screen. The tests also take the screenshots the README shows (into
docs/ when PERDURE_SCREENSHOTS=docs).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from browsing import Site, browser, page, screenshot_path, sign_in, site  # noqa: F401  (fixtures)
from playwright.sync_api import expect

# A page that reloads loses this; the tests check it is still there after a change shows.
_MARK = "window.__perdureNoReload = 'kept'"
_MARKED = "window.__perdureNoReload"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_find_an_execution_by_name_and_read_its_operations_and_checkpoints(
    page: Any, site: Site, tmp_path: Path
) -> None:
    wanted = _unique("find-me")
    # Others around it, ended in different ways, so the list has something to tell apart.
    others = [site.start(_unique(f"order-{index}"), f"gear-{index}") for index in range(4)]
    callbacks = "/2025-12-01/durable-execution-callbacks"
    site.api("POST", f"{callbacks}/{site.callback_id(others[0])}/succeed", content=b'"ok"')
    site.api("POST", f"{callbacks}/{site.callback_id(others[1])}/fail", json={"ErrorMessage": "Out of stock"})
    site.api("POST", f"/2025-12-01/durable-executions/{quote(others[2], safe='')}/stop", json={})
    site.start(_unique("nightly"), "", function="nightly", event={})
    arn = site.start(wanted, "lamp")
    site.callback_id(arn)
    page.goto(site.url + "/")
    expect(page.locator("table.executions")).to_contain_text(wanted)
    expect(page.locator("ul.counts")).to_contain_text("FAILED", timeout=30_000)
    expect(page.locator("ul.counts [data-status=SUCCEEDED] b")).to_have_text("2", timeout=30_000)
    page.screenshot(path=screenshot_path("dashboard-executions.png", tmp_path), full_page=True)

    # The list follows new executions by itself.
    page.evaluate(_MARK)
    late = _unique("late")
    site.start(late, "rug")
    expect(page.locator("table.executions")).to_contain_text(late, timeout=15_000)
    assert page.evaluate(_MARKED) == "kept"

    page.fill("input[name=name]", wanted[:12])
    page.click("form.filters button[type=submit]")
    rows = page.locator("table.executions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(wanted)
    expect(page.locator("ul.counts")).to_contain_text("RUNNING")

    page.click(f"a.name:text-is('{wanted}')")
    expect(page.locator("h2.execution-name")).to_have_text(wanted)
    tree = page.locator("#operations ul.tree")
    expect(tree).to_contain_text("price")
    expect(tree).to_contain_text("approval")
    expect(tree.locator("ul li.op", has_text="CALLBACK")).to_contain_text("STARTED")
    # The map's items are nested under it, each with its step; the stock check took two attempts.
    checks = tree.locator("li.op", has_text="Map").first
    expect(checks.locator("li.op", has_text="MapIteration")).to_have_count(2)
    expect(checks.locator("li.op", has_text="check stock").last).to_contain_text("2 attempts")
    second = page.locator("#checkpoint-2")
    expect(second.locator("table.variables")).to_contain_text("quote")
    expect(second.locator("table.variables")).to_contain_text("'total': 37.5")
    # The 60 revisions are cut in the preview; "show all" has the last one.
    history_row = second.locator("tr", has_text="history")
    expect(history_row.locator("pre.payload").first).not_to_contain_text("revision 59")
    history_row.locator("details.show-all summary").click()
    expect(history_row.locator("details.show-all pre")).to_contain_text("revision 59: lamp reworded")
    page.screenshot(path=screenshot_path("dashboard-execution.png", tmp_path), full_page=True)


# Each row of the timeline: its depth, kind and label, and its bars' classes, x and width.
_ROWS = """[...document.querySelectorAll('#timeline svg.timeline g.row')].map(row => ({
    depth: Number(row.dataset.depth), kind: row.dataset.kind, label: row.querySelector('text.label').firstChild.textContent,
    bars: [...row.querySelectorAll('rect.bar')].map(bar => ({
        cls: bar.getAttribute('class'), x: Number(bar.getAttribute('x')), width: Number(bar.getAttribute('width')),
    })),
}))"""


def test_the_timeline_draws_attempts_waits_and_branches_on_one_axis(page: Any, site: Site, tmp_path: Path) -> None:
    arn = site.start(_unique("shipping"), _unique("crate"), function="shipping")
    callback_id = site.callback_id(arn)
    page.goto(f"{site.url}/execution?arn={quote(arn, safe='')}")
    # While the approval is awaited its bar runs on to now, hatched; once it comes, the page
    # (following the execution) redraws it closed.
    waiting = page.locator('#timeline g.row[data-kind="CALLBACK · Callback"] rect.bar')
    expect(waiting).to_have_class("bar span live open")
    page.wait_for_timeout(1_000)
    site.api("POST", f"/2025-12-01/durable-execution-callbacks/{callback_id}/succeed", content=b'{"ok": true}')
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    expect(waiting).to_have_class("bar span ok")
    chart = page.locator("#timeline svg.timeline")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 900

    rows = [row for row in page.evaluate(_ROWS) if row["kind"] != "CONTEXT · Checkpoint"]
    assert [(row["depth"], row["label"]) for row in rows] == [
        (0, "Invocations"),
        (0, "fetch rates"),
        (0, "cool down"),
        (0, "pack"),
        (1, "pack-0"),
        (2, "pack S"),
        (1, "pack-1"),
        (2, "pack M"),
        (1, "pack-2"),
        (2, "pack L"),
        (0, "sign-off"),
        (1, "sign-off"),
        (1, "sign-off submitter"),
    ]
    by_label = {row["label"]: row["bars"] for row in rows}
    # Invoked at the start, after the retry's delay, after the wait and after the approval.
    assert len(by_label["Invocations"]) == 4
    fetch = by_label["fetch rates"]
    assert [bar["cls"] for bar in fetch] == ["bar attempt bad", "bar delay held", "bar attempt ok"]
    # The 2 s wait is long beside the steps, and beside the retry's 1 s delay.
    wait = by_label["cool down"][0]
    assert wait["width"] > 10 * max(bar["width"] for bar in by_label["pack S"] + [fetch[0], fetch[2]])
    assert wait["width"] > 1.5 * fetch[1]["width"]
    assert wait["x"] >= fetch[2]["x"]
    # The approval came a second or more after the callback started.
    assert by_label["sign-off"][0]["width"] > wait["width"] / 3
    # The three branches ran at once: side by side over the same stretch of time.
    branches = [row["bars"][0] for row in rows if row["kind"] == "CONTEXT · MapIteration"]
    assert max(bar["x"] for bar in branches) < min(bar["x"] + bar["width"] for bar in branches)
    assert min(bar["width"] for bar in branches) > 5
    title = page.locator("#timeline rect.bar.attempt.bad title")
    expect(title).to_have_text(re.compile(r"fetch rates · STEP · Step\nattempt 1: FAILED \(ConnectionError: The rates"))
    page.locator("#timeline").screenshot(path=screenshot_path("dashboard-timeline.png", tmp_path))


def test_approve_from_the_inbox_and_watch_the_execution_finish(page: Any, site: Site, tmp_path: Path) -> None:
    name = _unique("approve")
    arn = site.start(name, "desk")
    site.callback_id(arn)
    page.goto(site.url + "/inbox")
    card = page.locator("article.callback", has_text=name)
    expect(card).to_contain_text("Resumes review after callback 'approval'")
    page.screenshot(path=screenshot_path("dashboard-inbox.png", tmp_path), full_page=True)
    page.evaluate(_MARK)

    card.locator("textarea[name=result]").fill('{"approved": true, "by": "browser"}')
    card.locator("button.approve-button").click()
    outcome = page.locator("article.callback.done", has_text=name)
    expect(outcome.locator(".outcome-status")).to_have_text("SUCCEEDED", timeout=60_000)
    assert page.evaluate(_MARKED) == "kept"
    execution = site.execution(arn)
    assert execution["Status"] == "SUCCEEDED"
    assert json.loads(execution["Result"])["decision"] == {"approved": True, "by": "browser"}


def test_reject_from_the_inbox_and_see_the_execution_fail_with_the_message(page: Any, site: Site) -> None:
    name = _unique("reject")
    arn = site.start(name, "chair")
    site.callback_id(arn)
    page.goto(site.url + "/inbox")
    page.evaluate(_MARK)
    card = page.locator("article.callback", has_text=name)
    card.locator("input[name=error]").fill("Over budget for this quarter")
    card.locator("button.reject-button").click()
    outcome = page.locator("article.callback.done", has_text=name)
    expect(outcome.locator(".outcome-status")).to_have_text("FAILED", timeout=60_000)
    expect(outcome.locator(".error-box")).to_contain_text("Over budget for this quarter")
    assert page.evaluate(_MARKED) == "kept"
    execution = site.execution(arn)
    assert execution["Status"] == "FAILED"
    assert "Over budget for this quarter" in execution["Error"]["ErrorMessage"]


def test_restart_from_the_second_checkpoint_and_see_the_new_execution_succeed(page: Any, site: Site) -> None:
    item = _unique("shelf")
    arn = site.start(_unique("original"), item)
    site.api("POST", f"/2025-12-01/durable-execution-callbacks/{site.callback_id(arn)}/succeed", content=b'"ok"')
    page.goto(f"{site.url}/execution?arn={quote(arn, safe='')}")
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)

    page.locator("#checkpoint-2 button.restart-button").click()
    page.wait_for_url(lambda url: arn.rsplit("/", 1)[-1] not in url and "/execution?arn=" in url)
    expect(page.locator("h2.execution-name")).to_contain_text("-restart-")
    expect(page.locator("section.waiting")).to_be_visible(timeout=60_000)
    page.evaluate(_MARK)
    page.locator("section.waiting textarea[name=result]").fill('{"approved": true}')
    page.locator("section.waiting button.approve-button").click()
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    assert page.evaluate(_MARKED) == "kept"
    # The restart resumed after checkpoint 2: the function's start and the priced step did not run again.
    lines = site.side_effects.read_text().splitlines()
    assert lines.count(f"started {item}") == 1
    assert lines.count(f"priced {item}") == 1
    assert lines.count(f"decided {item}") == 2


def test_pause_resume_and_stop_each_ask_first(page: Any, site: Site) -> None:
    arn = site.start(_unique("controls"), "bulb")
    site.callback_id(arn)
    page.goto(f"{site.url}/execution?arn={quote(arn, safe='')}")
    status = page.locator("#execution-status")
    expect(status).to_have_text("RUNNING")
    page.confirm.append(False)
    page.click("button:text-is('Stop')")
    page.wait_for_timeout(500)
    assert site.status(arn) == "RUNNING"
    page.confirm.append(True)
    page.click("button:text-is('Pause')")
    expect(status).to_have_text("PAUSED")
    assert site.status(arn) == "PAUSED"
    page.click("button:text-is('Resume')")
    expect(status).to_have_text("RUNNING")
    page.click("button:text-is('Stop')")
    expect(status).to_have_text("STOPPED")
    expect(page.locator(".error-box")).to_contain_text("Execution stopped from the dashboard (key browser)")
    assert site.status(arn) == "STOPPED"


def test_every_page_fits_a_phone_screen(browser: Any, site: Site) -> None:
    arn = site.start(_unique("phone"), "a-rather-long-item-name-that-should-wrap-on-a-small-screen")
    site.callback_id(arn)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        tab = context.new_page()
        sign_in(tab, site)
        for path in ("/", f"/execution?arn={quote(arn, safe='')}", "/inbox", "/functions"):
            tab.goto(site.url + path)
            width = tab.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide on a 390 px screen"
    finally:
        context.close()


def test_restart_an_aws_sdk_execution_after_an_operation(page: Any, site: Site) -> None:
    arn = site.start(_unique("aws"), "", function="aws_flow", event={"wait": 1})
    site.api("POST", f"/2025-12-01/durable-execution-callbacks/{site.callback_id(arn)}/succeed", content=b'"yes"')
    page.goto(f"{site.url}/execution?arn={quote(arn, safe='')}")
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    before = site.side_effects.read_text().splitlines()

    first = page.locator("#operations li.op", has_text="first").first
    first.locator("summary").first.click()
    first.locator("button.restart-after-button").click()
    page.wait_for_url(lambda url: arn.rsplit("/", 1)[-1] not in url and "/execution?arn=" in url)
    expect(page.locator("h2.execution-name")).to_contain_text("-restart-")
    new_arn = page.locator("p.arn code").inner_text()
    site.api("POST", f"/2025-12-01/durable-execution-callbacks/{site.callback_id(new_arn)}/succeed", content=b'"yes"')
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    # Resumed after "first": it did not run again; the steps after it did.
    after = site.side_effects.read_text().splitlines()
    assert after.count("first") == before.count("first")
    assert after.count("last") == before.count("last") + 1


def test_an_ended_executions_page_stops_polling_and_keeps_what_is_open(page: Any, site: Site) -> None:
    arn = site.start(_unique("settled"), "vase")
    site.api("POST", f"/2025-12-01/durable-execution-callbacks/{site.callback_id(arn)}/succeed", content=b'"ok"')
    page.goto(f"{site.url}/execution?arn={quote(arn, safe='')}")
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    opened = page.locator("#checkpoint-1 details.show-all").first
    opened.locator("summary").click()
    with page.expect_response(lambda reply: "part=live" in reply.url and reply.status == 286, timeout=30_000):
        pass
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "part=live" in request.url else None)
    page.wait_for_timeout(4_000)
    assert polls == [], "the page kept polling after the execution had ended and settled"
    assert opened.get_attribute("open") is not None, "a refresh closed the 'show all' that was open"
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED")
