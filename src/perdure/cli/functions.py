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
    caches and .perdure, and becomes a new version of the function (the same code and
    settings again are the same version). Executions already running finish on the version
    they started on. Prints each function's version.
    """
    from perdure.runtime.bundles import pack_folder

    deployed = []
    with Client(endpoint) as client:
        for spec in functions(targets, template, "deploy"):
            folder = spec.code_folder.resolve()
            module = spec.file.resolve().relative_to(folder).with_suffix("").as_posix().replace("/", ".")
            settings = {"Handler": f"{module}.{spec.attribute}", **spec.config(module).lambda_settings()}
            version = client.deploy(spec.name, pack_folder(folder).data, settings, spec.auto_publish_alias)
            deployed.append({"FunctionName": spec.name, "Version": version["Version"], "CodeSha256": version["CodeSha256"]})
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
