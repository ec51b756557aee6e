"""The dashboard shows the code version each execution runs, each function's versions and aliases,
and restarts an execution on the version a person picks."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from browsing import APP, CLEAN_ENV, PERDURE, Site, browser, close_http_clients, http_client, page, site  # noqa: F401  (fixtures)
from playwright.sync_api import expect


def test_the_functions_page_lists_versions_with_aliases_and_what_runs_them(site: Site) -> None:
    arn = site.start("versions-page", "chair")
    site.callback_id(arn)
    made = site.api("POST", "/2015-03-31/functions/review/aliases", json={"Name": "stable", "FunctionVersion": "1"})
    assert made.status_code == 201, made.text
    client = http_client(site.url)
    assert client.post("/signin", data={"token": site.token, "next": "/"}, headers={"Origin": site.url}).status_code == 303

    functions = client.get("/functions").text
    execution = client.get(f"/execution?arn={quote(arn, safe='')}").text

    assert "Version 1 <mark>$LATEST</mark> <mark>stable</mark>: 1 unfinished" in functions
    assert "Runs version 1 of review's code." in execution


def test_restart_from_here_runs_the_version_picked(page: Any, site: Site, tmp_path: Path) -> None:
    # Runs after the test above, which counts version 1 as $LATEST: this one deploys version 2.
    item = f"lamp-{uuid.uuid4().hex[:8]}"
    arn = site.start(f"picked-{item}", item)
    site.api("POST", f"/2025-12-01/durable-execution-callbacks/{site.callback_id(arn)}/succeed", content=b'"ok"')
    (tmp_path / "approvals.py").write_text(APP.read_text().replace('note(f"decided {item}")', 'note(f"decided on v2 {item}")'))
    deployed = subprocess.run(
        [*PERDURE, "deploy", f"review={tmp_path / 'approvals.py'}:review", "--endpoint", site.url],
        env={**CLEAN_ENV, "PERDURE_TOKEN": site.token}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr

    page.goto(f"{site.url}/execution?arn={quote(arn, safe='')}")
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    picker = page.locator("#checkpoint-2 select[name=version]")
    expect(picker).to_have_value("1")  # its own version, unless another is picked
    picker.select_option("2")
    page.locator("#checkpoint-2 button.restart-button").click()
    page.wait_for_url(lambda url: arn.rsplit("/", 1)[-1] not in url and "/execution?arn=" in url)
    expect(page.locator("p.version")).to_have_text("Runs version 2 of review's code.")
    expect(page.locator("section.waiting")).to_be_visible(timeout=60_000)
    page.locator("section.waiting button.approve-button").click()
    expect(page.locator("#execution-status")).to_have_text("SUCCEEDED", timeout=60_000)
    lines = site.side_effects.read_text().splitlines()
    assert (lines.count(f"decided {item}"), lines.count(f"decided on v2 {item}")) == (1, 1)
