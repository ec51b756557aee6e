"""``perdure deploy`` and ``perdure functions``: code sent to a running server, and what it serves."""

from __future__ import annotations

from pathlib import Path

import click

from perdure.cli.options import endpoint_option, functions, functions_arguments, print_json, reports_errors
from perdure.client import Client


@click.command()
@functions_arguments
@endpoint_option
@reports_errors
def deploy(targets: tuple[str, ...], template: Path | None, endpoint: str) -> None:
    """Send functions' code to a running server, which runs it from the next invocation on.

    Takes the same TARGETs and --template as `perdure serve`. Each function's folder (the
    handler file's, or the template's CodeUri) is packed, without .git, virtual environments,
    caches and .perdure (and, for a Python function, node_modules), and becomes a new version of the function (the same code and
    settings again are the same version). Executions already running finish on the version
    they started on. The function's schedules become those its code or template declares;
    destinations (a template's EventInvokeConfig, on_failure=...) are set with
    PutFunctionEventInvokeConfig. Prints each function's version.
    """
    from perdure.protocol.schedules import definition_to_wire
    from perdure.runtime.bundles import NOT_PYTHON_CODE, pack_folder

    deployed = []
    specs = list(functions(targets, template, "deploy"))
    with Client(endpoint) as client:
        for spec in specs:
            folder = spec.code_folder.resolve()
            module = spec.file.resolve().relative_to(folder).with_suffix("").as_posix()
            # Lambda names a Python handler's module with dots, a Node one's by its path.
            module = module if spec.runtime else module.replace("/", ".")
            settings = {"Handler": f"{module}.{spec.attribute}", **spec.config(module).lambda_settings()}
            code = pack_folder(folder, leave_out_names=() if spec.runtime else NOT_PYTHON_CODE)
            version = client.deploy(spec.name, code.data, settings, spec.auto_publish_alias)
            client.put_schedules(spec.name, [definition_to_wire(definition) for definition in spec.schedules])
            deployed.append({"FunctionName": spec.name, "Version": version["Version"], "CodeSha256": version["CodeSha256"]})
        # Once all are deployed, since a destination may be one of them; the server checks each.
        for spec in specs:
            if spec.destinations is not None:
                client.put_destinations(spec.name, spec.destinations.config.on_success, spec.destinations.config.on_failure)
    print_json(deployed)


@click.group("functions")
def functions_group() -> None:
    """List the functions a server serves, and their versions."""


@functions_group.command("list")
@endpoint_option
@reports_errors
def list_functions(endpoint: str) -> None:
    """List the functions the server serves, with their limits and waiting work.

    Besides Lambda's settings, each function has PerdureLimits (its concurrency and rate
    limits, as they hold on every server) and PerdureQueue: its executions running, ready but
    waiting for a worker or for its limits (and OldestReadySeconds, how long the oldest of
    those has waited), suspended and paused.
    """
    with Client(endpoint) as client:
        print_json(client.functions())


@functions_group.command("versions")
@click.argument("function")
@endpoint_option
@reports_errors
def list_versions(function: str, endpoint: str) -> None:
    """List FUNCTION's versions: $LATEST, then each by number."""
    with Client(endpoint) as client:
        print_json(client.versions(function))
