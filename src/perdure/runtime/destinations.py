"""Served functions' destinations: checked when their code is loaded, recorded as their server starts.

A template's ``EventInvokeConfig`` or ``@durable.function(on_failure=...)`` names the function
that each ended execution starts (``perdure.service.destinations`` starts it). A name that no
served function has is refused before anything runs, with the setting that names it; a server
start then records each function's setting in the database, where every process that ends
an execution of it reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from perdure.errors import InvalidParameterError
from perdure.protocol.destinations import EventInvokeConfig, destination_name
from perdure.service import invoke_configs
from perdure.service.executions import DurableService

if TYPE_CHECKING:
    from perdure.runtime.registry import FunctionSpec


@dataclass(frozen=True)
class Destinations:
    """A function's destinations as its code or template sets them, and where each is set (for messages)."""

    config: EventInvokeConfig
    # The setting that names each, as its author wrote it: the template and its property, or
    # the file and the decorator's argument.
    on_success_setting: str
    on_failure_setting: str


def decorated(config: EventInvokeConfig, file: str, function_name: str) -> Destinations | None:
    """The destinations a ``@durable.function`` sets, if any."""
    if not config.destinations:
        return None
    where = f"{file}: @durable.function {function_name}"
    return Destinations(config, f"{where}, on_success", f"{where}, on_failure")


def check(specs: Iterable[FunctionSpec]) -> None:
    """Raises InvalidParameterError for a destination that names no function among ``specs``.

    A destination is started among the functions that are served together, so it must be one
    of them (a TARGET beside it, or a function of the same template).
    """
    served = list(specs)
    names = sorted(spec.name for spec in served)
    for spec in served:
        if spec.destinations is None:
            continue
        config = spec.destinations.config
        for setting, destination in (
            (spec.destinations.on_success_setting, config.on_success),
            (spec.destinations.on_failure_setting, config.on_failure),
        ):
            name = destination_name(destination) if destination else None
            if name is not None and name not in names:
                raise InvalidParameterError(
                    f"{setting} names the function {name!r}, which is not served here (the functions are "
                    f"{', '.join(names)}). Fix the name, or serve {name} too: as a TARGET beside it, or in the template."
                )


def record(service: DurableService, specs: Iterable[FunctionSpec]) -> None:
    """Records what each served function's code sets as its destinations (``invoke_configs.serve``)."""
    for spec in specs:
        invoke_configs.serve(service, spec.name, spec.destinations.config if spec.destinations else None)
