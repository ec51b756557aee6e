"""``perdure schedules``: list a server's schedules with their next fire times, pause, resume and trigger one.

Over the server's API (``perdure.client``), as ``perdure executions`` does rather than on the
database as ``perdure keys`` does: a schedule's state is shared by every server on the database
either way, but through the API the command needs no database credentials, is authenticated
like any client, and wakes the server's scheduler at once (a trigger starts its execution now).
"""

from __future__ import annotations

import click

from perdure.cli.options import endpoint_option, print_json, reports_errors
from perdure.client import Client
from perdure.protocol.schedules import DEFAULT_NAME

@click.group()
def schedules() -> None:
    """List, pause, resume and trigger the schedules of the functions a server runs."""


@schedules.command("list")
@click.option("--function", help="Only this function's schedules.")
@endpoint_option
@reports_errors
def list_schedules(function: str | None, endpoint: str) -> None:
    """List schedules: expression, time zone, State (ENABLED, DISABLED or PAUSED) and NextFireTime.

    NextFireTime and the ticks are epoch seconds; a template's Schedule and ScheduleV2 events
    are named as their events are, a decorated function's schedule is named schedule.
    """
    with Client(endpoint) as client:
        print_json(client.schedules(function))


@schedules.command("pause")
@click.argument("function")
@click.argument("name", default=DEFAULT_NAME)
@endpoint_option
@reports_errors
def pause(function: str, name: str, endpoint: str) -> None:
    """Pause FUNCTION's schedule NAME: no tick fires until it is resumed, on any server.

    The pause outlasts restarts. NAME defaults to schedule, the name of the schedule that
    @durable.function(schedule=...) declares; a template's events are named as in the template.
    """
    with Client(endpoint) as client:
        print_json(client.pause_schedule(function, name))


@schedules.command("resume")
@click.argument("function")
@click.argument("name", default=DEFAULT_NAME)
@endpoint_option
@reports_errors
def resume(function: str, name: str, endpoint: str) -> None:
    """Resume FUNCTION's paused schedule NAME from its next tick; ticks missed while paused do not fire."""
    with Client(endpoint) as client:
        print_json(client.resume_schedule(function, name))


@schedules.command("trigger")
@click.argument("function")
@click.argument("name", default=DEFAULT_NAME)
@endpoint_option
@reports_errors
def trigger(function: str, name: str, endpoint: str) -> None:
    """Start one execution of FUNCTION's schedule NAME now, with its input, whatever its state.

    Its ticks go on as before. Prints the execution's ARN and name (NAME-run-...).
    """
    with Client(endpoint) as client:
        print_json(client.trigger_schedule(function, name))
