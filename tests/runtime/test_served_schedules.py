"""Schedules in real servers: two `perdure serve` processes on one PostgreSQL database fire the tick
missed while none ran, once; `perdure schedules` pauses, resumes and triggers over the API."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from servers import HANDLERS, Server, wait_for

from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.schedules import ScheduleDefinition, execution_name
from perdure.service.executions import DurableService
from perdure.service.schedules import Schedules
from perdure.store.postgres import PostgresStore
from perdure.testing import SkippableClock

APP = str(HANDLERS / "scheduled.py")


def executions_of(service: DurableService, function: str) -> dict[str, str]:
    page = service.list_executions(ExecutionQuery(function_name=function, limit=100))
    return {e.name: e.status.value for e in page.executions}


def test_two_servers_on_one_postgresql_fire_the_latest_missed_tick_once_on_start(
    postgres_url: str, tmp_path: Path
) -> None:
    # The schedule was registered 50 min 10 s ago, by a server that has not run since: ten
    # ticks of rate(5 minutes) fell due meanwhile, the latest 10 s ago; the next is 4 min 50 s away.
    clock = SkippableClock()
    clock.now = time.time() - (50 * 60 + 10)
    earlier = DurableService(PostgresStore(postgres_url), clock=clock)
    try:
        (registered,) = Schedules(earlier).register("every_five", [ScheduleDefinition("schedule", "rate(5 minutes)")])
    finally:
        earlier.close()
    latest = registered.anchor + 10 * 300
    env = {**os.environ, "PERDURE_TEST_LOG": str(tmp_path / "side-effects.log")}
    servers = [Server([APP], tmp_path / name, env, db_url=postgres_url) for name in ("a", "b")]
    for server in servers:
        server.workdir.mkdir()
        server.start()
    try:
        service = DurableService(PostgresStore(postgres_url))
        try:
            name = execution_name("schedule", latest)
            wait_for(lambda: executions_of(service, "every_five").get(name) == "SUCCEEDED")
            # Both have fired by now (each fires on its first pass); give a straggler its chance.
            time.sleep(2)
            assert executions_of(service, "every_five") == {name: "SUCCEEDED"}
            (schedule,) = Schedules(service).every("every_five")
            assert schedule.last_tick == latest and schedule.next_tick == latest + 300
        finally:
            service.close()
    finally:
        for server in servers:
            server.stop()


def cli(server: Server, *args: str) -> Any:
    result: subprocess.CompletedProcess[str] = server.cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_schedules_commands_list_pause_resume_and_trigger(serve: Any) -> None:
    server = serve(APP)
    listed = {s["FunctionName"]: s for s in cli(server, "schedules", "list")}
    daily = listed["daily"]
    assert (daily["Name"], daily["ScheduleExpression"], daily["ScheduleExpressionTimezone"], daily["State"]) == (
        "schedule", "cron(0 9 * * ? *)", "Europe/Berlin", "ENABLED",
    )  # fmt: skip
    assert daily["NextFireTime"] > time.time() and json.loads(daily["Input"]) == {"report": "daily"}

    paused = cli(server, "schedules", "pause", "daily")
    assert (paused["State"], paused["NextFireTime"]) == ("PAUSED", None)
    assert cli(server, "schedules", "list", "--function", "daily")[0]["State"] == "PAUSED"
    # A pause outlasts a restart of the server, which registers the schedule again.
    server.stop()
    server.start()
    assert cli(server, "schedules", "list", "--function", "daily")[0]["State"] == "PAUSED"
    resumed = cli(server, "schedules", "resume", "daily")
    assert resumed["State"] == "ENABLED" and resumed["NextFireTime"] == daily["NextFireTime"]

    started = cli(server, "schedules", "trigger", "daily", "schedule")
    assert started["DurableExecutionName"].startswith("schedule-run-")
    arn = started["DurableExecutionArn"]
    done = wait_for(lambda: (e := cli(server, "executions", "get", arn))["Status"] == "SUCCEEDED" and e)
    assert done["Result"] == {"report": "daily"}  # type: ignore[index]

    missing = server.cli("schedules", "pause", "daily", "weekly")
    assert missing.returncode == 1
    assert "Function daily has no schedule named 'weekly' (its schedules: schedule)" in missing.stderr


def test_deploy_sends_the_schedules_the_code_declares_and_bad_ones_are_refused(serve: Any, tmp_path: Path) -> None:
    app = tmp_path / "hourly_app.py"
    app.write_text("import perdure as durable\n\n@durable.function(schedule='rate(1 hour)')\ndef hourly(ctx, event):\n    return 1\n")
    server = serve(str(app))
    assert [s["ScheduleExpression"] for s in cli(server, "schedules", "list")] == ["rate(1 hour)"]
    app.write_text(app.read_text().replace("rate(1 hour)", "rate(2 hours)"))
    deployed = server.cli("deploy", str(app))
    assert deployed.returncode == 0, deployed.stderr
    assert [s["ScheduleExpression"] for s in cli(server, "schedules", "list")] == ["rate(2 hours)"]

    bad = httpx.put(
        f"{server.endpoint}/perdure/v1/functions/hourly/schedules",
        json={"Schedules": [{"Name": "often", "ScheduleExpression": "cron(61 * * * ? *)"}]},
    )
    assert bad.status_code == 400
    assert bad.json()["message"] == "Schedules[0] (often): the minutes field has 61, which is out of its range 0-59."
    assert [s["ScheduleExpression"] for s in cli(server, "schedules", "list")] == ["rate(2 hours)"]
