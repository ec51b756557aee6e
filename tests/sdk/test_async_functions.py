"""``async def`` durable functions, and ``map`` branches run at once: awaited operations, checkpoints, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import async_flows
import map_flows
import pytest

from perdure.sdk.resumable import DecorationError, make_resumable
from perdure.testing import DurableTestRunner

HERE = Path(__file__).parent


@pytest.fixture
def runner(tmp_path: Path) -> DurableTestRunner:
    async_flows.CALLS.clear()
    return DurableTestRunner(tmp_path)


def test_an_async_function_awaits_steps_waits_and_a_callback(runner: DurableTestRunner) -> None:
    run = runner.run(async_flows.agent, {"items": ["tea", "jam"]})
    assert run.status == "RUNNING" and len(run.callbacks) == 1
    runner.succeed_callback(run.callbacks[0], {"approved": True})
    done = runner.resume(run)
    assert (done.status, done.result) == ("SUCCEEDED", {"answers": ["TEA", "JAM"], "cost": 2.5})
    # Each step ran once, across the wait and the callback.
    assert async_flows.CALLS.count("fetched tea") == 1 and async_flows.CALLS.count("priced total") == 1


def test_an_async_function_killed_mid_await_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / "side-effects.log"
    env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
    command = [sys.executable, str(HERE / "crash_runner.py"), str(HERE / "async_crash_flow.py"), str(tmp_path / "db")]
    died = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert died.returncode == 86, died.stderr
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"status": "SUCCEEDED", "result": ["FIRST", "SECOND"]}
    # The first run got past the checkpoint and died awaiting the second step; the second run
    # resumed right after the checkpoint: the first step did not run again.
    assert log.read_text().splitlines() == [
        "fetch first", "after the checkpoint", "fetch second", "after the checkpoint", "fetch second",
    ]  # fmt: skip


def test_map_and_parallel_take_async_callables(runner: DurableTestRunner) -> None:
    run = runner.run(async_flows.fan_out, {"items": ["a", "b", "c"]})
    assert run.result == {"results": ["A-0", "B-1", "C-2"], "both": [2.5, 2.5]}


def test_an_async_steps_error_reaches_the_function(runner: DurableTestRunner) -> None:
    assert runner.run(async_flows.failing, {}).result == {"caught": "no pears"}


def test_a_checkpoint_in_an_async_for_loop_is_refused_with_the_fix() -> None:
    source = Path(async_flows.__file__).parent / "async_refused.py"
    source.write_text(
        "async def looped(ctx, event):\n"
        "    async for item in event:\n"
        "        ctx.checkpoint()\n"
    )
    try:
        namespace: dict[str, object] = {"__file__": str(source)}
        exec(compile(source.read_text(), str(source), "exec"), namespace)
        with pytest.raises(DecorationError, match="inside an `async for` loop"):
            make_resumable(namespace["looped"])  # type: ignore[arg-type]
    finally:
        source.unlink()


@pytest.mark.parametrize("threads", [None, 1])
def test_map_branches_run_at_once_and_suspend_and_fail_as_one(tmp_path: Path, threads: int | None) -> None:
    map_flows.RAN.clear()
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(map_flows.mapped, {"items": [1, 2, 3], "threads": threads})
        assert run.result == [10, 20, 30]
        # The waiting branch suspended the map once the others were recorded: each step ran once.
        assert sorted(map_flows.RAN) == ["work 1", "work 2", "work 3"]
        failed = runner.run(map_flows.mapped, {"items": [1, 4], "threads": threads})
    assert failed.result == {"failed": "four is refused"}
