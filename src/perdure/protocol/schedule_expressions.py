"""AWS schedule expressions: ``rate(...)``, ``cron(...)`` and ``at(...)``, read and stepped through in a time zone.

The syntax is EventBridge's (and EventBridge Scheduler's), which differs from Unix cron: six
fields (minutes, hours, day-of-month, month, day-of-week, year), day-of-week 1-7 for SUN-SAT,
``?`` in exactly one of the two day fields, ``L``, ``W`` and ``#``, and a year field of
1970-2199. No well-kept library reads that dialect: ``croniter`` and ``cronsim`` read Unix cron,
where day-of-week 0 is Sunday, ``a/n`` means something else and there is no year field. So the
AWS text is parsed and checked here, with errors in AWS's terms, and each field is written out
as the explicit list of values it allows; ``croniter`` then does the calendar arithmetic on the
five Unix fields, including ``L``, ``W`` and ``#`` (``cronsim``, the other candidate, has no
``nW``). The year field is applied here.

Cron and ``at`` times are wall-clock times in the schedule's zone (``zoneinfo``). As
EventBridge Scheduler does across daylight saving changes: a time that does not exist (02:30
on a spring-forward day in Europe/Berlin) is skipped, and a time that occurs twice (on a
fall-back day) fires once, at its first occurrence. ``rate`` ticks are a fixed period apart
in real time, counted from an anchor, whatever the zone.
"""

from __future__ import annotations

import abc
import datetime
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from perdure.errors import InvalidParameterError

UTC = datetime.UTC
# AWS's year range; ticks past its end do not exist.
FIRST_YEAR, LAST_YEAR = 1970, 2199
# A cron expression that matches nothing that exists (30 2 on the one day of the year whose
# 02:30 a zone skips) would step forever: this many skipped candidates end the search.
_MAX_SKIPS = 10_000
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleExpressionError(InvalidParameterError):
    """A schedule expression or time zone that cannot be used; the message says why, in AWS's terms."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def number(self, text: str) -> int:
        """One value of the field, by number or (month, day-of-week) by its three-letter name."""
        upper = text.upper()
        if upper in self.names:
            return self.names.index(upper) + self.low
        if not text.isascii() or not text.isdigit():
            named = f" or a name ({self.names[0]}-{self.names[-1]})" if self.names else ""
            raise ScheduleExpressionError(f"the {self.name} field has {text!r}, which is not a number{named}")
        value = int(text)
        if not self.low <= value <= self.high:
            raise ScheduleExpressionError(
                f"the {self.name} field has {value}, which is out of its range {self.low}-{self.high}"
            )
        return value

    def values(self, item: str) -> list[int]:
        """The values one comma-separated item allows: ``*``, ``a``, ``a-b``, with ``/n`` after any."""
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleExpressionError(
                    f"the {self.name} field has the step {item!r}: write a whole number of at least 1 after '/'"
                )
            step = int(step_text)
        if span == "*":
            first, last = self.low, self.high
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = self.number(start), self.number(end)
            if first > last:
                raise ScheduleExpressionError(
                    f"the {self.name} field has the range {span!r}, whose start is after its end"
                )
        else:
            # AWS reads "a/n" as from a to the field's end, every n (as Quartz does).
            first = self.number(span)
            last = self.high if slash else first
        return list(range(first, last + 1, step))


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, tuple(_MONTHS))
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, tuple(_DAYS))
_YEAR = _Field("year", FIRST_YEAR, LAST_YEAR)


def _plain(field: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if item in ("?", "L", "W") or "#" in item or item.endswith(("L", "W")):
            raise ScheduleExpressionError(
                f"the {field.name} field has {item!r}; ?, L, W and # are for the day-of-month and day-of-week fields"
            )
        values.update(field.values(item))
    return values


def _unix_list(field: _Field, values: set[int], shift: int = 0) -> str:
    """Values as Unix cron lists them; ``*`` for the whole range, which croniter steps through fastest."""
    if len(values) == field.high - field.low + 1:
        return "*"
    return ",".join(str(value + shift) for value in sorted(values))


def _day_of_month(text: str) -> str:
    """The day-of-month field in Unix cron: explicit days, ``L`` or ``nW``."""
    if text == "?":
        return "*"
    items = text.split(",")
    special = [item for item in items if item.endswith(("L", "W"))]
    if special and len(items) > 1:
        raise ScheduleExpressionError(f"the day-of-month field has {text!r}: L and W stand alone, not in a list")
    if text == "L":
        return "L"
    if text == "LW":
        raise ScheduleExpressionError(
            "the day-of-month field has 'LW', which AWS's syntax does not have: write L for the last day, "
            "or nW (15W) for the weekday nearest a day"
        )
    if text.endswith("W"):
        return f"{_DAY_OF_MONTH.number(text[:-1])}W"
    if text.endswith("L"):
        raise ScheduleExpressionError(f"the day-of-month field has {text!r}: write L alone for the month's last day")
    return _unix_list(_DAY_OF_MONTH, _plain(_DAY_OF_MONTH, text))


def _day_of_week(text: str) -> str:
    """The day-of-week field in Unix cron, where Sunday is 0 (AWS's 1)."""
    if text == "?":
        return "*"
    items = text.split(",")
    special = [item for item in items if item != "L" and (item.endswith("L") or "#" in item)]
    if (special or "L" in items) and len(items) > 1:
        raise ScheduleExpressionError(f"the day-of-week field has {text!r}: L and # stand alone, not in a list")
    if text == "L":
        return "6"  # the week's last day, Saturday
    if text.endswith("L"):
        return f"L{_DAY_OF_WEEK.number(text[:-1]) - 1}"
    if "#" in text:
        day, _, nth = text.partition("#")
        if nth not in ("1", "2", "3", "4", "5"):
            raise ScheduleExpressionError(
                f"the day-of-week field has {text!r}: after # write which week of the month, 1 to 5 (2#1 is the first Monday)"
            )
        return f"{_DAY_OF_WEEK.number(day) - 1}#{nth}"
    return _unix_list(_DAY_OF_WEEK, _plain(_DAY_OF_WEEK, text), shift=-1)


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Berlin``); raises ScheduleExpressionError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleExpressionError(
            f"the time zone {name!r} is not one of the IANA time zones: write one such as UTC, "
            "Europe/Berlin or America/New_York"
        ) from None


class ScheduleExpression(abc.ABC):
    """A parsed expression: its ticks (epoch seconds), found one after another."""

    text: str

    @abc.abstractmethod
    def next_after(self, moment: float, anchor: float) -> float | None:
        """The first tick strictly after ``moment``, or None if there is none.

        ``anchor`` is when a ``rate`` schedule's ticks are counted from (they fall on
        ``anchor + k * period``); the other kinds ignore it.
        """

    @abc.abstractmethod
    def latest_at_or_before(self, moment: float, anchor: float) -> float | None:
        """The last tick at or before ``moment`` (and at or after ``anchor`` for a ``rate``), if any."""


@dataclass(frozen=True)
class RateExpression(ScheduleExpression):
    text: str
    period: int

    def next_after(self, moment: float, anchor: float) -> float | None:
        if moment < anchor:
            return anchor
        return anchor + (int((moment - anchor) // self.period) + 1) * self.period

    def latest_at_or_before(self, moment: float, anchor: float) -> float | None:
        if moment < anchor:
            return None
        return anchor + int((moment - anchor) // self.period) * self.period


@dataclass(frozen=True)
class AtExpression(ScheduleExpression):
    """A one-time schedule: ``at(2026-03-01T09:00:00)``, a wall-clock time in the zone."""

    text: str
    instant: float | None

    def next_after(self, moment: float, anchor: float) -> float | None:
        return self.instant if self.instant is not None and self.instant > moment else None

    def latest_at_or_before(self, moment: float, anchor: float) -> float | None:
        return self.instant if self.instant is not None and self.instant <= moment else None


def _instant(wall: datetime.datetime, zone: ZoneInfo) -> float | None:
    """The instant of a wall-clock time in ``zone``: its first, if it occurs twice; None if it never does."""
    aware = wall.replace(tzinfo=zone, fold=0)
    instant = aware.timestamp()
    # A time in a spring-forward gap comes back as another wall time.
    if datetime.datetime.fromtimestamp(instant, zone).replace(tzinfo=None) != wall:
        return None
    return instant


@dataclass(frozen=True)
class CronExpression(ScheduleExpression):
    text: str
    # The five Unix fields croniter reads (minutes hours day-of-month month day-of-week).
    unix: str
    years: frozenset[int]
    zone: ZoneInfo

    def next_after(self, moment: float, anchor: float) -> float | None:
        local = datetime.datetime.fromtimestamp(moment, self.zone).replace(tzinfo=None)
        return self._search(local, moment, forward=True)

    def latest_at_or_before(self, moment: float, anchor: float) -> float | None:
        here = datetime.datetime.fromtimestamp(moment, self.zone)
        # In the second pass of a repeated hour, the whole hour's first pass is already behind:
        # the search starts from the hour's end, and the instants after ``moment`` are passed over.
        repeat = here.replace(fold=0).utcoffset() - here.utcoffset() if here.fold else datetime.timedelta(0)  # type: ignore[operator]
        # croniter steps back strictly before its start: a minute on, the current minute counts.
        start = here.replace(tzinfo=None, second=0, microsecond=0) + datetime.timedelta(minutes=1) + repeat
        return self._search(start, moment, forward=False)

    def _search(self, start: datetime.datetime, moment: float, forward: bool) -> float | None:
        steps = croniter(self.unix, start)
        skips = 0
        while skips < _MAX_SKIPS:
            wall: datetime.datetime = steps.get_next(datetime.datetime) if forward else steps.get_prev(datetime.datetime)
            if wall.year not in self.years:
                later = [y for y in self.years if (y > wall.year if forward else y < wall.year)]
                if not later:
                    return None
                year = min(later) if forward else max(later)
                start = datetime.datetime(year, 1, 1) - datetime.timedelta(minutes=1) if forward else datetime.datetime(year + 1, 1, 1)
                steps = croniter(self.unix, start)
                skips += 1
                continue
            instant = _instant(wall, self.zone)
            if instant is not None and (instant > moment if forward else instant <= moment):
                return instant
            skips += 1
        return None


def parse_expression(text: str, timezone: str = "UTC") -> ScheduleExpression:
    """Parses ``rate(5 minutes)``, ``cron(0 9 * * ? *)`` or ``at(2026-03-01T09:00:00)`` for ``timezone``.

    Raises ScheduleExpressionError with a sentence that names the part that is wrong.
    """
    zone = zone_of(timezone)
    stripped = text.strip()
    if stripped.startswith("rate("):
        return _rate(stripped)
    if stripped.startswith("cron(") and stripped.endswith(")"):
        return _cron(stripped, zone)
    if stripped.startswith("at("):
        match = _AT.fullmatch(stripped)
        if match is None:
            raise ScheduleExpressionError("a one-time schedule is written at(yyyy-mm-ddThh:mm:ss), as at(2026-03-01T09:00:00)")
        try:
            wall = datetime.datetime.fromisoformat(match[1])
        except ValueError as error:
            raise ScheduleExpressionError(f"at({match[1]}) is not a date and time that exists: {error}") from None
        return AtExpression(stripped, _instant(wall, zone))
    raise ScheduleExpressionError(
        "a schedule is rate(value unit), as rate(5 minutes), or cron(minutes hours day-of-month month "
        "day-of-week year), as cron(0 9 * * ? *), or at(yyyy-mm-ddThh:mm:ss)"
    )


def _rate(text: str) -> RateExpression:
    match = _RATE.fullmatch(text)
    if match is None:
        raise ScheduleExpressionError("a rate is written rate(value unit), as rate(1 minute) or rate(5 minutes)")
    value, unit = int(match[1]), match[2]
    if value < 1:
        raise ScheduleExpressionError(f"the rate's value is {value}; it must be at least 1, as in rate(1 minute)")
    singular = unit.removesuffix("s")
    if singular not in _UNIT_SECONDS:
        raise ScheduleExpressionError(f"the rate's unit is {unit!r}; write minute(s), hour(s) or day(s)")
    if (value == 1) != (unit == singular):
        right = singular if value == 1 else f"{singular}s"
        raise ScheduleExpressionError(
            f"the rate's unit must be {right!r} for the value {value} (AWS writes rate(1 {singular}) and rate(5 {singular}s))"
        )
    return RateExpression(text, value * _UNIT_SECONDS[singular])


def _cron(text: str, zone: ZoneInfo) -> CronExpression:
    fields = text[len("cron(") : -1].split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), not {len(fields)}; "
            "for example cron(0 9 * * ? *)"
        )
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleExpressionError(
            "exactly one of the day-of-month and day-of-week fields must be ?, as in cron(0 9 * * ? *) "
            "or cron(0 9 ? * MON-FRI *)"
        )
    unix = " ".join(
        (
            _unix_list(_MINUTES, _plain(_MINUTES, minutes)),
            _unix_list(_HOURS, _plain(_HOURS, hours)),
            _day_of_month(day_of_month),
            _unix_list(_MONTH, _plain(_MONTH, month)),
            _day_of_week(day_of_week),
        )
    )
    return CronExpression(text, unix, frozenset(_plain(_YEAR, year)), zone)
