"""A function's concurrency and rate limits (issue 16), as code declares them and the store keeps them.

``concurrency`` is Lambda's reserved concurrency: how many invocations of the function run at
once across every server and worker on one database. It is not a worker's ``max_concurrency``,
which bounds how many invocations one worker process runs in its threads. ``tenant_concurrency``
bounds each tenant's share of those (the invoke's ``TenantId``; invocations without one share
one allowance, as one tenant). A ``Rate`` bounds how often an invocation starts, function-wide
(``rate``) or per tenant (``tenant_rate``). An invocation a limit holds back waits, ready and
in order; none fails for it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

# The time units a rate may be written in, in seconds.
RATE_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"\s*(?P<count>[0-9]+)\s*/\s*(?P<unit>[a-z]+?)s?\s*")
RATE_RULE = 'a whole number of starts per second, minute, hour or day, such as "50/minute" or "10/second"'
# The most a limit may be: far above any real one, and well inside the databases' integers.
MAX_LIMIT = 1_000_000
# The tenant of executions invoked without a TenantId, in counts and rate state (no TenantId is empty).
NO_TENANT = ""


@dataclass(frozen=True)
class Rate:
    """At most ``count`` invocation starts in any ``seconds``: spread evenly, one every ``interval``."""

    count: int
    seconds: float

    @property
    def interval(self) -> float:
        return self.seconds / self.count

    def __str__(self) -> str:
        unit = next((name for name, length in RATE_UNITS.items() if length == self.seconds), None)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.seconds:g} seconds"


def parse_rate(text: object) -> Rate:
    """Reads a rate such as ``"50/minute"``; raises ValueError, saying what a rate looks like, for anything else."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or match["unit"] not in RATE_UNITS or not 1 <= int(match["count"]) <= MAX_LIMIT:
        raise ValueError(f"must be {RATE_RULE}, not {text!r}")
    return Rate(int(match["count"]), RATE_UNITS[match["unit"]])


def check_count(value: object, minimum: int) -> int:
    """A whole number from ``minimum`` to ``MAX_LIMIT``; raises ValueError, saying so, for anything else."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_LIMIT:
        raise ValueError(f"must be a whole number from {minimum} to {MAX_LIMIT}, not {value!r}")
    return value


@dataclass(frozen=True)
class FunctionLimits:
    """How many invocations of a function may run at once, and how often one may start (None: no limit)."""

    concurrency: int | None = None
    tenant_concurrency: int | None = None
    rate: Rate | None = None
    tenant_rate: Rate | None = None

    @property
    def limited(self) -> bool:
        return any(value is not None for value in dataclasses.astuple(self))

    def describe(self) -> str:
        """The limits for people: ``3 at once, 2 per tenant, 50/minute``; empty when there is none."""
        parts = []
        if self.concurrency is not None:
            parts.append(f"{self.concurrency} at once")
        if self.tenant_concurrency is not None:
            parts.append(f"{self.tenant_concurrency} at once per tenant")
        if self.rate is not None:
            parts.append(str(self.rate))
        if self.tenant_rate is not None:
            parts.append(f"{self.tenant_rate} per tenant")
        return ", ".join(parts)


@dataclass(frozen=True)
class StoredLimits:
    """A function's limits as the store keeps them, with the state of its rate."""

    function_name: str
    # What the code served declares (``@durable.function(concurrency=...)``, a template).
    declared: FunctionLimits
    # PutFunctionConcurrency's ReservedConcurrentExecutions, which wins over the declared concurrency.
    reserved_concurrency: int | None = None
    # When ``rate`` next lets an invocation start (epoch seconds); None: at once.
    next_start: float | None = None

    @property
    def effective(self) -> FunctionLimits:
        """The limits that hold: the declared ones, with the reserved concurrency if one is set."""
        if self.reserved_concurrency is None:
            return self.declared
        return dataclasses.replace(self.declared, concurrency=self.reserved_concurrency)
