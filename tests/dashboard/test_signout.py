"""Signing out ends the session for good: its cookie, kept by someone, opens nothing afterwards.

Against a real `perdure serve` with a key (the dashboard tests' ``site``): a session's cookie
is copied before sign-out, then replayed after it, on the same server, on another server on
the same database, and on the first one after a restart. Sign-out ends every session of the
key it signed in with (a generation the store keeps per key); signing in again works.
"""

from __future__ import annotations

import httpx
from browsing import CLEAN_ENV, APP, CSRF, Site, close_http_clients, http_client, site  # noqa: F401  (fixtures)
from servers import Server

from perdure.api.dashboard.sessions import COOKIE_NAME


def _sign_in(site: Site) -> tuple[httpx.Client, str, str]:
    """A signed-in client, its session cookie and the session's CSRF token."""
    client = http_client(site.url)
    reply = client.post("/signin", data={"token": site.token, "next": "/"}, headers={"Origin": site.url})
    assert reply.status_code == 303, reply.text
    page = client.get("/inbox")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found is not None
    return client, client.cookies[COOKIE_NAME], found[1]


def _sign_out(site: Site, client: httpx.Client, csrf: str) -> None:
    reply = client.post("/signout", data={"csrf": csrf}, headers={"Origin": site.url})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/signin"


def _opens(url: str, cookie: str) -> bool:
    """Whether the cookie still shows the inbox (a refused one is sent to sign in)."""
    reply = http_client(url, cookie).get("/inbox")
    assert reply.status_code in (200, 303), reply.text
    return reply.status_code == 200


def test_a_cookie_kept_from_before_sign_out_opens_nothing(site: Site) -> None:
    client, cookie, csrf = _sign_in(site)
    assert _opens(site.url, cookie)

    _sign_out(site, client, csrf)

    assert not _opens(site.url, cookie)
    refused = http_client(site.url, cookie).post(
        "/actions/callback",
        data={"callback_id": "none", "outcome": "approve", "result": "{}", "csrf": csrf},
        headers={"Origin": site.url, "HX-Request": "true"},
    )
    assert refused.status_code == 401


def test_sign_out_ends_every_session_of_the_key_and_signing_in_again_works(site: Site) -> None:
    first, first_cookie, csrf = _sign_in(site)
    _, second_cookie, _ = _sign_in(site)

    _sign_out(site, first, csrf)

    assert not _opens(site.url, first_cookie)
    assert not _opens(site.url, second_cookie)
    _, fresh_cookie, _ = _sign_in(site)
    assert _opens(site.url, fresh_cookie)


def test_sign_out_holds_on_another_server_of_the_database_and_after_a_restart(site: Site) -> None:
    other = Server([str(APP)], site.server.workdir, CLEAN_ENV, db_url=site.server.db_url, dev=False)
    other.start()
    try:
        client, cookie, csrf = _sign_in(site)
        assert _opens(other.endpoint, cookie)

        _sign_out(site, client, csrf)

        assert not _opens(other.endpoint, cookie)
    finally:
        other.stop()
    site.server.stop()
    site.server.start()
    assert not _opens(site.url, cookie)
