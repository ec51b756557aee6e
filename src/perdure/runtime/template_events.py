"""Reads a template function's ``Events``: its ``Schedule`` and ``ScheduleV2`` events as schedules.

Each is checked when the template is loaded, and a problem is an error that names the template
file, the line, the function and the property. Settings that only mean something on AWS
(``RoleArn``, ``KmsKeyArn``, ...) are accepted and have no effect; settings that would change
what happens but that Perdure does not apply, and events of other types, are reported as notes
(the CLI prints them beside the functions it skipped).
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from perdure.protocol.schedule_expressions import ScheduleExpressionError, parse_expression
from perdure.protocol.schedules import MAX_NAME_LENGTH, CatchUp, ScheduleDefinition
from perdure.service.validation import NAME

if TYPE_CHECKING:
    from perdure.runtime.template import _Template

# Properties that only AWS uses: its rule's name and description, permissions, encryption.
_AWS_ONLY = {"Name", "Description", "GroupName", "KmsKeyArn", "RoleArn", "PermissionsBoundary", "OmitName", "Target"}
# Properties that change what happens on AWS, which Perdure does not do: named in a note.
_NOT_APPLIED = {
    "DeadLetterConfig": "ticks whose execution cannot start are logged, not sent to a queue",
    "RetryPolicy": "a tick starts its execution once; the function's own retries and Perdure's invocation retries apply",
}
_PROPERTIES = {
    "Schedule": {"Schedule", "Input", "Enabled", "State", "CatchUp"},
    "ScheduleV2": {
        "ScheduleExpression", "ScheduleExpressionTimezone", "Input", "State", "StartDate", "EndDate",
        "FlexibleTimeWindow", "CatchUp",
    },
}  # fmt: skip
_EXPRESSION_KEY = {"Schedule": "Schedule", "ScheduleV2": "ScheduleExpression"}


class _Event:
    """One event of a function, for messages that name where it is."""

    def __init__(self, template: _Template, logical_id: str, name: str, events: dict[str, Any], properties: dict[str, Any]) -> None:
        self.template = template
        self.logical_id = logical_id
        self.name = name
        self.events = events
        self.properties = properties

    def where(self, key: str | None = None) -> str:
        line = self.template.line(self.properties, key) if key else None
        line = line or self.template.line(self.events, self.name)
        at = f", line {line}" if line else ""
        prop = f"Events.{self.name}.Properties.{key}" if key else f"Events.{self.name}"
        return f"{self.template.path}{at}: Resource {self.logical_id}: {prop}"

    def error(self, key: str | None, text: str) -> ScheduleExpressionError:
        return ScheduleExpressionError(f"{self.where(key)}: {text}")


def schedule_events(
    template: _Template, logical_id: str, properties: dict[str, Any], notes: list[str]
) -> tuple[ScheduleDefinition, ...]:
    """The function's schedules from its ``Events``; a note in ``notes`` for each event or setting not applied."""
    events = template.mapping(logical_id, "Events", properties.get("Events"))
    schedules = []
    for name, event in events.items():
        declared = template.mapping(logical_id, f"Events.{name}", event)
        kind = template.plain(logical_id, f"Events.{name}.Type", declared.get("Type"))
        props = template.mapping(logical_id, f"Events.{name}.Properties", declared.get("Properties"))
        where = _Event(template, logical_id, str(name), events, props)
        if kind not in _PROPERTIES:
            notes.append(
                f"{where.where()} (Type {kind}) is not applied: Perdure starts functions on Schedule and "
                "ScheduleV2 events; send other events through its API (`perdure invoke`, or boto3's invoke)."
            )
            continue
        schedules.append(_schedule(where, str(kind), notes))
    return tuple(schedules)


def _schedule(event: _Event, kind: str, notes: list[str]) -> ScheduleDefinition:
    template, props = event.template, event.properties
    unknown = sorted(set(props) - _PROPERTIES[kind] - _AWS_ONLY - set(_NOT_APPLIED))
    if unknown:
        if kind == "Schedule" and "ScheduleExpressionTimezone" in unknown:
            raise event.error(
                "ScheduleExpressionTimezone",
                "a Schedule event runs in UTC; for a time zone, make it Type: ScheduleV2 with ScheduleExpression.",
            )
        raise event.error(
            unknown[0],
            f"a {kind} event has no property {unknown[0]}; its properties are {', '.join(sorted(_PROPERTIES[kind]))}.",
        )
    for key in sorted(set(props) & set(_NOT_APPLIED)):
        notes.append(f"{event.where(key)} is not applied: {_NOT_APPLIED[key]}.")
    if not NAME.fullmatch(event.name) or len(event.name) > MAX_NAME_LENGTH:
        raise event.error(
            None,
            f"the event's name {event.name!r} names its executions, so it must be 1 to {MAX_NAME_LENGTH} "
            "letters, digits, '-' or '_'.",
        )
    key = _EXPRESSION_KEY[kind]
    expression = _required(event, key, props.get(key), "cron(0 9 * * ? *)")
    timezone = _text(event, "ScheduleExpressionTimezone", props.get("ScheduleExpressionTimezone"), "Europe/Berlin") or "UTC"
    try:
        parse_expression(expression, timezone)
    except ScheduleExpressionError as error:
        bad = "ScheduleExpressionTimezone" if "time zone" in error.message else key
        raise event.error(bad, f"{error.message}.") from None
    window = _window(event, template.mapping(event.logical_id, f"Events.{event.name}.Properties.FlexibleTimeWindow", props.get("FlexibleTimeWindow")))
    start, end = _date(event, "StartDate", props.get("StartDate")), _date(event, "EndDate", props.get("EndDate"))
    if start is not None and end is not None and end <= start:
        raise event.error("EndDate", "EndDate must be after StartDate.")
    return ScheduleDefinition(
        name=event.name,
        expression=expression,
        timezone=timezone,
        input_payload=_input(event, props.get("Input")),
        enabled=_enabled(event, kind, props),
        start_time=start,
        end_time=end,
        window_minutes=window,
        catch_up=_catch_up(event, props.get("CatchUp")),
    )


def _required(event: _Event, key: str, value: Any, example: str) -> str:
    text = _text(event, key, value, example)
    if text is None:
        raise event.error(None, f"{key} is missing. Add, for example, {key}: {example}.")
    return text


def _text(event: _Event, key: str, value: Any, example: str) -> str | None:
    value = event.template.plain(event.logical_id, f"Events.{event.name}.Properties.{key}", value)
    if value is not None and not isinstance(value, str):
        raise event.error(key, f"{key} must be text, not {value!r}. Write, for example, {key}: {example}.")
    return value.strip() if value is not None else None


def _input(event: _Event, value: Any) -> str | None:
    text = _text(event, "Input", value, "'{\"report\": \"daily\"}'")
    if text is None:
        return None
    try:
        json.loads(text)
    except ValueError as error:
        raise event.error("Input", f"Input must be a JSON text, as on AWS ('{{\"report\": \"daily\"}}'): {error}.") from None
    return text


def _enabled(event: _Event, kind: str, props: dict[str, Any]) -> bool:
    state = _text(event, "State", props.get("State"), "ENABLED")
    if state is not None and state.upper() not in ("ENABLED", "DISABLED"):
        raise event.error("State", f"State must be ENABLED or DISABLED, not {state!r}.")
    enabled = True
    if kind == "Schedule" and "Enabled" in props:
        enabled = event.template.boolean(event.logical_id, f"Events.{event.name}.Properties.Enabled", props["Enabled"])
    return enabled and (state is None or state.upper() == "ENABLED")


def _window(event: _Event, window: dict[str, Any]) -> int:
    """FlexibleTimeWindow: 0 minutes for Mode OFF, else MaximumWindowInMinutes (1 to 1440)."""
    key = "FlexibleTimeWindow"
    mode = event.template.plain(event.logical_id, f"Events.{event.name}.Properties.{key}.Mode", window.get("Mode", "OFF"))
    if mode not in ("OFF", "FLEXIBLE"):
        raise event.error(key, f"{key}.Mode must be OFF or FLEXIBLE, not {mode!r}.")
    if mode == "OFF":
        return 0
    minutes = event.template.plain(
        event.logical_id, f"Events.{event.name}.Properties.{key}.MaximumWindowInMinutes", window.get("MaximumWindowInMinutes")
    )
    if isinstance(minutes, str) and minutes.isascii() and minutes.isdigit():
        minutes = int(minutes)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise event.error(key, f"{key}.MaximumWindowInMinutes must be 1 to 1440 when Mode is FLEXIBLE, not {minutes!r}.")
    return minutes


def _date(event: _Event, key: str, value: Any) -> float | None:
    """StartDate or EndDate: an ISO 8601 date and time; one without an offset is in UTC."""
    if isinstance(value, datetime.datetime):
        # YAML reads an unquoted timestamp itself.
        moment = value
    else:
        text = _text(event, key, value, "2026-03-01T09:00:00Z")
        if text is None:
            return None
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise event.error(key, f"{key} must be an ISO 8601 date and time such as 2026-03-01T09:00:00Z, not {text!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _catch_up(event: _Event, value: Any) -> CatchUp:
    text = _text(event, "CatchUp", value, "latest")
    if text is None:
        return CatchUp.LATEST
    try:
        return CatchUp(text.lower())
    except ValueError:
        raise event.error(
            "CatchUp",
            f"CatchUp must be latest, all or none, not {text!r}: which ticks missed while no server ran fire.",
        ) from None
