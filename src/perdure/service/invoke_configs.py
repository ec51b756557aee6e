"""Sets, reads and deletes functions' event invoke configurations: where their ended executions go.

Lambda's ``PutFunctionEventInvokeConfig`` and its kin (``perdure.api.destination_routes``) and a
server start (``serve``, with what a template or decorator sets) come through here;
``perdure.service.destinations`` reads what is stored when an execution ends. A configuration
belongs to a function and qualifier, ``$LATEST`` when set without one, and that one applies to
every execution of the function that its own version or alias has none for.
"""

from __future__ import annotations

from perdure.errors import InvalidParameterError, NotFoundError
from perdure.protocol.destinations import ConfigSource, EventInvokeConfig, StoredInvokeConfig
from perdure.protocol.versions import LATEST
from perdure.service import versions
from perdure.service.executions import DurableService
from perdure.service.validation import check_qualifier
from perdure.store.base import Transaction


class InvokeConfigNotFoundError(NotFoundError):
    """The function and qualifier have no event invoke configuration."""

    def __init__(self, function_arn: str) -> None:
        super().__init__(
            f"The function {function_arn} has no EventInvokeConfig: set one with PutFunctionEventInvokeConfig "
            "(or EventInvokeConfig in its template, on_failure/on_success on its @durable.function)."
        )


def _check_function(service: DurableService, tx: Transaction, function_name: str, qualifier: str) -> None:
    """Raises unless the service runs the function and ``qualifier`` names one of its versions or aliases."""
    check_qualifier(qualifier)
    if service.functions(function_name) is None and versions.current(tx, function_name) is None:
        raise NotFoundError(
            f"Function not found: {function_name}. An event invoke configuration is set on a function this "
            "server runs: serve or deploy it first."
        )
    versions.resolve(tx, function_name, qualifier)


def _check_destinations(service: DurableService, tx: Transaction, config: EventInvokeConfig) -> None:
    """Raises unless each destination is a function the service runs (its qualifier one it has)."""
    for setting, destination in (("OnSuccess", config.on_success), ("OnFailure", config.on_failure)):
        if destination is None:
            continue
        name, _, qualifier = destination.partition(":")
        if service.functions(name) is None and versions.current(tx, name) is None:
            raise InvalidParameterError(
                f"DestinationConfig.{setting}.Destination names the function {name}, which this server does not "
                f"run. A destination is a function the server runs: serve or deploy {name} first, or fix the name."
            )
        if qualifier:
            versions.resolve(tx, name, qualifier)


def put(
    service: DurableService, function_name: str, qualifier: str, config: EventInvokeConfig, source: ConfigSource = ConfigSource.API
) -> StoredInvokeConfig:
    """Sets the configuration of the function and qualifier, replacing the one there was.

    The function, the qualifier and each destination must exist (NotFoundError,
    VersionNotFoundError, InvalidParameterError otherwise).
    """
    with service.store.transaction() as tx:
        _check_function(service, tx, function_name, qualifier)
        _check_destinations(service, tx, config)
        stored = StoredInvokeConfig(function_name, qualifier, config, source, service.clock())
        tx.put_invoke_config(stored)
    return stored


def get(service: DurableService, function_name: str, qualifier: str = LATEST) -> StoredInvokeConfig:
    """The configuration of the function and qualifier itself; InvokeConfigNotFoundError if it has none."""
    check_qualifier(qualifier)
    with service.store.snapshot() as tx:
        found = {stored.qualifier: stored for stored in tx.invoke_configs(function_name)}.get(qualifier)
    if found is None:
        raise InvokeConfigNotFoundError(service.function_arn(function_name, qualifier))
    return found


def list_configs(service: DurableService, function_name: str) -> list[StoredInvokeConfig]:
    """Every configuration of the function, by qualifier."""
    with service.store.snapshot() as tx:
        return tx.invoke_configs(function_name)


def delete(service: DurableService, function_name: str, qualifier: str = LATEST) -> None:
    """Deletes the configuration of the function and qualifier; InvokeConfigNotFoundError if it has none."""
    check_qualifier(qualifier)
    with service.store.transaction() as tx:
        if not tx.delete_invoke_config(function_name, qualifier):
            raise InvokeConfigNotFoundError(service.function_arn(function_name, qualifier))


def serve(service: DurableService, function_name: str, config: EventInvokeConfig | None) -> None:
    """Records what the code a server starts with sets for the function (``None``: nothing).

    As a deploy of a SAM stack writes its EventInvokeConfig: a configuration replaces the
    function's ``$LATEST`` one, whoever set that; none removes only one an earlier server start
    wrote, and leaves one set through the API. Destinations were checked when the code was loaded.
    """
    with service.store.transaction() as tx:
        if config is None:
            tx.delete_invoke_config(function_name, LATEST, ConfigSource.SERVED)
            return
        current = {stored.qualifier: stored for stored in tx.invoke_configs(function_name)}.get(LATEST)
        if current is None or current.config != config or current.source is not ConfigSource.SERVED:
            tx.put_invoke_config(StoredInvokeConfig(function_name, LATEST, config, ConfigSource.SERVED, service.clock()))

