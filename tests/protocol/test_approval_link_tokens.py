"""Approval link tokens: made and read with the server secret; changed, expired or foreign ones refused."""

from __future__ import annotations

import base64
import json

import pytest

from perdure.errors import InvalidParameterError
from perdure.protocol.approval_links import ApprovalLinks, LinkRefused, check_public_url

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_link_names_its_callback_summary_and_expiry() -> None:
    clock = Clock()
    links = ApprovalLinks(SECRET, "https://perdure.example.com/", clock)
    link = links.make("cb-1", "Ship order A-1 to Zoë", 3600)
    assert link.url.startswith("https://perdure.example.com/approve/v1.") and link.expires == clock.now + 3600
    claims = links.read(token_of(link.url))
    assert (claims.callback_id, claims.summary, claims.expires) == ("cb-1", "Ship order A-1 to Zoë", clock.now + 3600)

    clock.now += 3600
    with pytest.raises(LinkRefused) as caught:
        links.read(token_of(link.url))
    assert caught.value.expired and "expired" in caught.value.reason


def test_a_changed_or_foreign_link_is_refused() -> None:
    links = ApprovalLinks(SECRET, "http://127.0.0.1:8500")
    token = token_of(links.make("cb-1").url)
    version, payload, mac = token.split(".")
    other = base64.urlsafe_b64encode(json.dumps({"c": "cb-2", "e": 4_000_000_000, "s": ""}).encode()).decode().rstrip("=")
    foreign = token_of(ApprovalLinks(b"t" * 32, "http://127.0.0.1:8500").make("cb-1").url)
    for bad in (f"{version}.{other}.{mac}", token[:-2], f"v2.{payload}.{mac}", "", "v1..", foreign):
        with pytest.raises(LinkRefused) as caught:
            links.read(bad)
        assert not caught.value.expired and "not valid" in caught.value.reason


def test_a_forms_token_belongs_to_one_link() -> None:
    links = ApprovalLinks(SECRET, "http://127.0.0.1:8500")
    first, second = token_of(links.make("cb-1").url), token_of(links.make("cb-2").url)
    assert links.check_csrf(first, links.csrf_token(first))
    assert not links.check_csrf(second, links.csrf_token(first))
    assert not links.check_csrf(first, None) and not links.check_csrf(first, "")


@pytest.mark.parametrize(
    ("summary", "seconds", "message"),
    [
        ("x" * 1001, 60, "keep it to 1000"),
        ("", 0.5, "1 second to 366 days"),
        ("", 367 * 86400, "1 second to 366 days"),
        ("", float("nan"), "1 second to 366 days"),
    ],
)
def test_a_summary_or_expiry_out_of_bounds_is_refused(summary: str, seconds: float, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        ApprovalLinks(SECRET, "http://127.0.0.1:8500").make("cb-1", summary, seconds)
    assert message in caught.value.message


@pytest.mark.parametrize("url", ["perdure.example.com", "ftp://host", "http://", "http://host/?q=1", "http://host/#x"])
def test_a_public_url_that_cannot_prefix_a_link_is_refused(url: str) -> None:
    with pytest.raises(InvalidParameterError, match="must be http:// or https:// with a host"):
        check_public_url(url)
