"""What the ``perdure`` commands share: their options, how they read JSON and print it, and errors."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from perdure.errors import PerdureError
from perdure.protocol.records import json_default
from perdure.store import DEFAULT_DB_URL

if TYPE_CHECKING:
    from perdure.runtime.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=json_default))


def notify(message: str) -> None:
    """Prints a message for the operator on stderr, so that stdout carries only results."""
    click.echo(message, err=True)


def reports_errors(function: F) -> F:
    """Turns a PerdureError into a message on stderr and exit status 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except PerdureError as error:
            click.echo(f"Error: {error.message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def endpoint_option(function: F) -> F:
    return click.option(
        "--endpoint",
        envvar="PERDURE_ENDPOINT",
        default="http://127.0.0.1:8500",
        show_default=True,
        help="The Perdure server to talk to (or set PERDURE_ENDPOINT).",
    )(function)


def blob_options(function: F) -> F:
    """--blobs and --s3-endpoint: where the store keeps payloads over the inline limit."""
    function = click.option(
        "--s3-endpoint",
        metavar="URL",
        help="The S3-compatible server (MinIO, moto, ...) of an s3:// --blobs; default AWS S3. "
        "Credentials come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...).",
    )(function)
    return click.option(
        "--blobs",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="Where payloads over 64 KiB go, the same for every process on this database: a folder, "
        "or an S3 bucket and prefix. Default: the template's checkpoint bucket if it names one, "
        "else the folder blobs beside a SQLite database (.perdure/blobs for PostgreSQL).",
    )(function)


def worker_options(function: F) -> F:
    """--workers and --concurrency: how many processes run handlers, and how many invocations each runs at once."""
    from perdure.runtime.workers import DEFAULT_SLOTS

    function = click.option(
        "--concurrency",
        default=DEFAULT_SLOTS,
        show_default=True,
        type=click.IntRange(1, 100_000),
        help="Invocations each worker process runs at once, in threads, for a function that sets no max_concurrency.",
    )(function)
    return click.option(
        "--workers", default=2, show_default=True, type=click.IntRange(1, 256),
        help="Worker processes that run handlers (per code version: CPU-bound steps use this many cores).",
    )(function)  # fmt: skip


def node_option(function: F) -> F:
    """--node: the Node.js binary that runs Node functions."""
    return click.option(
        "--node", envvar="PERDURE_NODE", metavar="PATH",
        help="The Node.js (22 or newer) that runs Node functions (or set PERDURE_NODE). Default: node on PATH.",
    )(function)  # fmt: skip


def metrics_options(function: F) -> F:
    """--metrics-host and --metrics-port: /metrics on a port of its own, unauthenticated."""
    function = click.option(
        "--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
        help="Also serve /metrics on this port, with no authentication (for a scraper on a private network); 0 picks a free port.",
    )(function)  # fmt: skip
    return click.option(
        "--metrics-host", default="127.0.0.1", show_default=True, help="The address --metrics-port listens on."
    )(function)


def retention_option(function: F) -> F:
    """--retention-days: how long finished executions are kept when their function sets no retention."""
    from perdure.service.retention import DEFAULT_RETENTION_DAYS

    return click.option(
        "--retention-days",
        type=click.IntRange(min=1),
        default=DEFAULT_RETENTION_DAYS,
        show_default=True,
        help="Days a finished execution is kept when its function sets no retention "
        "(retention_days, RetentionPeriodInDays or its bucket's ExpirationInDays).",
    )(function)


def db_options(help: str, default: str | None = DEFAULT_DB_URL) -> Callable[[F], F]:
    """--db URL, or --db-env NAME: the URL from an environment variable, so no password shows in `ps`."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, db: str | None, db_env: str | None, **kwargs: Any) -> Any:
            return function(*args, db=_database_url(db, db_env), **kwargs)

        with_env = click.option(
            "--db-env",
            metavar="NAME",
            help="Read the database URL from the environment variable NAME instead of --db, so that a "
            "password in it is not on the command line (or give the URL without it and set PGPASSWORD).",
        )(wrapper)
        option = click.option("--db", metavar="URL", default=default, show_default=default is not None, help=help)
        return cast(F, option(with_env))

    return decorate


def _database_url(db: str | None, db_env: str | None) -> str | None:
    if db_env is None:
        return db
    if click.get_current_context().get_parameter_source("db") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("Give the database as --db or as --db-env, not both.")
    url = os.environ.get(db_env)
    if not url:
        raise click.UsageError(
            f"--db-env names the environment variable {db_env}, which is not set or empty. Export it with "
            "the database URL, for example postgresql://perdure:PASSWORD@db.internal/perdure."
        )
    return url


def functions_arguments(function: F) -> F:
    """The TARGET arguments and --template option of the commands that run functions."""
    function = click.option(
        "--template",
        "template",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A SAM/CloudFormation template whose durable functions to run.",
    )(function)
    return click.argument("targets", nargs=-1)(function)


def functions(targets: tuple[str, ...], template: Path | None, verb: str, say: Callable[[str], None] = notify) -> Registry:
    """The registry of the functions named by TARGETs and --template; at least one."""
    found = registry_of(targets, template, say)
    if not len(found):
        raise click.UsageError(f"Nothing to {verb}: name at least one TARGET or a --template.")
    return found


def registry_of(targets: tuple[str, ...], template: Path | None, say: Callable[[str], None] = notify) -> Registry:
    """The registry of the functions named by TARGETs and --template, perhaps none; ``say`` tells what a template skips."""
    from perdure.runtime.node_binary import DEFAULT_NODE_RUNTIME, NODE_SUFFIXES
    from perdure.runtime.registry import FunctionSpec, Registry, parse_target, seed_functions

    registry = Registry()
    for target in targets:
        if "=" not in target and target.endswith(".py"):
            for spec in seed_functions(Path(target)):
                registry.add(spec)
            continue
        name, file, attribute = parse_target(target)
        node = file.suffix in NODE_SUFFIXES
        registry.add(FunctionSpec(name, file.resolve(), attribute, runtime=DEFAULT_NODE_RUNTIME if node else None))
    if template is not None:
        from perdure.runtime.template import load_template

        loaded = load_template(template)
        for reason in loaded.skipped:
            say(f"Skipped: {reason}")
        for spec in loaded.functions:
            registry.add(spec)
    return registry


def json_argument(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not valid JSON ({error}). Quote it, as in '{{\"id\": 1}}'.", param_hint=option) from None


def decoded(execution: dict[str, Any]) -> dict[str, Any]:
    """The execution as the CLI prints it: ``Result`` decoded from its JSON text."""
    shown = dict(execution)
    if isinstance(shown.get("Result"), str):
        try:
            shown["Result"] = json.loads(shown["Result"])
        except ValueError:
            pass
    return shown
