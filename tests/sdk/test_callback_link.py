"""``ctx.callback_link``: a signed link for a callback, made where a server (or the test runner) can open it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import link_flows
import pytest

from perdure.testing import DurableTestRunner

HERE = Path(__file__).parent


@pytest.fixture
def runner(tmp_path: Path) -> DurableTestRunner:
    link_flows.SENT.clear()
    return DurableTestRunner(tmp_path, public_url="https://perdure.example.com")


@pytest.mark.parametrize(
    ("function", "seconds"), [(link_flows.approve_by_link, 2 * 86400), (link_flows.approve_by_link_async, 3600)], ids=["plain", "async"]
)
def test_a_submitter_sends_a_link_for_its_callback(runner: DurableTestRunner, function: object, seconds: int) -> None:
    run = runner.run(function, {"order": "A-1"})  # type: ignore[arg-type]
    assert run.status == "RUNNING"
    (url,) = link_flows.SENT
    assert url.startswith("https://perdure.example.com/approve/v1.")
    claims = runner.links.read(url.rsplit("/", 1)[1])
    assert (claims.callback_id, claims.summary) == (run.callbacks[0], "Refund A-1")
    assert claims.expires == round(runner.clock.now + seconds)
    runner.succeed_callback(run.callbacks[0], {"approved": True})
    assert runner.resume(run).result == {"decision": {"approved": True}}


def test_without_a_server_a_link_cannot_be_made_and_the_function_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "perdure", "run", f"{HERE / 'link_flows.py'}:approve_by_link", "--payload", '{"order": "A-1"}',
         "--db", f"sqlite:///{tmp_path / 'perdure.db'}"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert "ctx.callback_link() needs a server to open its link" in done.stdout + done.stderr
