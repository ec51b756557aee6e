"""The dashboard shows the code version each execution runs, and each function's versions and aliases."""

from __future__ import annotations

from urllib.parse import quote

from browsing import Site, close_http_clients, http_client, site  # noqa: F401  (fixtures)


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
