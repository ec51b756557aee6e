"""``perdure serve`` and ``perdure worker``: the commands that run a server, built by ``perdure.server``."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from perdure.cli.log_format import log_format_option, operator_messages
from perdure.cli.options import (
    F,
    blob_options,
    db_options,
    functions,
    functions_arguments,
    registry_of,
    metrics_options,
    node_option,
    reports_errors,
    retention_option,
    worker_options,
)
from perdure.store import display_url

if TYPE_CHECKING:
    from perdure.server import Notify, Server


def _check_public_url(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    from perdure.errors import InvalidParameterError
    from perdure.protocol.approval_links import check_public_url

    try:
        return check_public_url(value) if value is not None else None
    except InvalidParameterError as error:
        raise click.BadParameter(error.message) from None


def public_url_option(help: str) -> Callable[[F], F]:
    """--public-url: the base URL approval links are made under."""
    return click.option("--public-url", metavar="URL", callback=_check_public_url, help=help)


@click.command()
@functions_arguments
@db_options("Database URL.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8500, show_default=True, type=int)
@worker_options
@node_option
@click.option("--no-workers", is_flag=True, help="Serve the API only; `perdure worker` processes on the same --db run the executions.")
@click.option(
    "--dev",
    is_flag=True,
    help="Run the API open, with no authentication: for development, on a loopback --host only.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds a client may take to send a request's headers, and again its body; a slower one is cut off.",
)
@public_url_option(
    "Where people reach this server (behind a proxy, its https:// address): approval links are made "
    "under it. Default: http://HOST:PORT."
)
@blob_options
@retention_option
@metrics_options
@reports_errors
@log_format_option
def serve(
    targets: tuple[str, ...], template: Path | None, db: str, host: str, port: int, workers: int, concurrency: int,
    node: str | None, no_workers: bool, dev: bool, request_timeout: float, public_url: str | None, blobs: str | None,
    s3_endpoint: str | None, retention_days: int, metrics_host: str, metrics_port: int | None, json_log: bool,
) -> None:
    """Serve functions over the Lambda-compatible HTTP API and run their executions.

    Each TARGET is either path/to/app.py, whose @durable.function functions are all served,
    or NAME=path/to/file.py:handler, naming a handler written with
    aws-durable-execution-sdk-python. A template's function with a FunctionUrlConfig is also
    started by a plain POST to /url/NAME.

    Requests must be signed with AWS Signature Version 4 (as boto3 and the AWS CLI sign) or
    carry a bearer token, of a key made with `perdure keys create` on the same --db; without
    any key the server refuses to start. With --dev, on 127.0.0.1, ::1 or localhost only, the
    API is open to anything on this machine.

    GET /metrics gives Prometheus its metrics, authenticated like the API; --metrics-port
    serves them apart, unauthenticated. Traces go to the OTLP endpoint that the standard
    OTEL_EXPORTER_OTLP_ENDPOINT names, when it is set.
    """
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from perdure.api.dev_guard import is_loopback
    from perdure.api.slow_clients import uvicorn_settings
    from perdure.server import ServerConfig, default_public_url, open_server

    if dev and not is_loopback(host):
        raise click.UsageError(
            f"--dev runs the API with no authentication, so it is allowed only on a loopback --host "
            f"(127.0.0.1, ::1 or localhost), not {host}. Create a key with `perdure keys create --name NAME` "
            "and serve without --dev."
        )
    from perdure.runtime import destinations

    notify = operator_messages(json_log)
    # Before the secret, which may make the data folder: a command that serves nothing leaves no trace.
    registry = functions(targets, template, "serve", notify)
    destinations.check(registry)
    config = ServerConfig(
        db_url=db, blobs=blobs, s3_endpoint=s3_endpoint, host=host, port=port, workers=0 if no_workers else workers,
        concurrency=concurrency, dev=dev, request_timeout=request_timeout, retention_days=retention_days,
        metrics_host=metrics_host, metrics_port=metrics_port, json_log=json_log,
        public_url=public_url or default_public_url(host, port), node=node,
    ).with_secret()
    server = open_server(config, registry, notify)
    app = server.app(notify)
    _listen_for_metrics(server, notify)
    if dev:
        notify(
            "Development mode (--dev): the API is open, with no authentication, to every user and program "
            "on this machine. Without --dev it needs keys from `perdure keys create`."
        )
    names = ", ".join(spec.name for spec in registry)
    running = "no workers: `perdure worker` runs the executions" if no_workers else f"{workers} workers"
    notify(f"Perdure serving {names} on http://{host}:{port} (database {display_url(db)}, {running})")
    signing_in = "open, as the API is" if dev else "sign in with the token of a key from `perdure keys create`"
    notify(f"Dashboard: http://{host}:{port}/ ({signing_in})")
    # In JSON, uvicorn's loggers get no handlers of their own (log_config=None): their lines go to
    # the JSON handler instead, log_level still keeping them to warnings and errors.
    log_config = None if json_log else LOGGING_CONFIG
    _note_urls(server, config.public_url or "", notify)
    # Waiting RequestResponse invokes must not hold a shutdown for the length of a function timeout.
    uvicorn.run(
        app, host=host, port=port, log_level="warning", log_config=log_config, timeout_graceful_shutdown=10,
        **uvicorn_settings(request_timeout),
    )


@click.command()
@functions_arguments
@db_options("Database URL (the one the API's `perdure serve` uses).")
@worker_options
@node_option
@click.option(
    "--function", "functions", multiple=True, metavar="NAME",
    help="Given no TARGETs: run only this function of the database (repeat for more).",
)  # fmt: skip
@public_url_option("The `perdure serve --public-url` of the API: ctx.callback_link makes links under it (none without it).")
@blob_options
@retention_option
@metrics_options
@reports_errors
@log_format_option
def worker(
    targets: tuple[str, ...], template: Path | None, db: str, workers: int, concurrency: int, node: str | None,
    functions: tuple[str, ...],
    public_url: str | None, blobs: str | None, s3_endpoint: str | None, retention_days: int, metrics_host: str,
    metrics_port: int | None, json_log: bool,
) -> None:
    """Run the executions of functions, without serving HTTP.

    Takes the same TARGETs and --template as `perdure serve`, and runs the executions that
    any server on the same --db starts: start many, on many machines, with a PostgreSQL
    database (`perdure serve --no-workers` then serves the API alone). Given none, it runs
    every function of the database (or those named by --function), with the code versions
    stored there: no copy of the code is needed where it runs. Stops on SIGTERM or
    Ctrl-C once running invocations finish; a second signal stops it at once, and what was
    running then resumes elsewhere from its last checkpoint.

    Each worker serves its own metrics on --metrics-port (Prometheus scrapes every worker, as it
    scrapes every server); traces go where OTEL_EXPORTER_OTLP_ENDPOINT says.

    On PostgreSQL, PERDURE_PG_POOL_SIZE, PERDURE_PG_STATEMENT_TIMEOUT, PERDURE_PG_LOCK_TIMEOUT
    and PERDURE_PG_IDLE_IN_TRANSACTION_TIMEOUT set each process's connections and time limits
    (docs/deployment.md).
    """
    from perdure.runtime import destinations
    from perdure.runtime.registry import Registry
    from perdure.runtime.runner import wait_for_stop_signal
    from perdure.server import ServerConfig, open_server

    if functions and (targets or template):
        raise click.UsageError(
            "--function picks functions of the database for a worker given no code; with TARGETs "
            "or --template, name only the functions to run there."
        )
    notify = operator_messages(json_log)
    only = frozenset(functions) or None
    registry = registry_of(targets, template, notify) if targets or template else Registry(everything=True, only=only)
    destinations.check(registry)
    # As in `perdure serve`: a bad secret is refused here, not in every worker.
    config = ServerConfig(
        db_url=db, blobs=blobs, s3_endpoint=s3_endpoint, workers=workers, concurrency=concurrency,
        retention_days=retention_days, metrics_host=metrics_host, metrics_port=metrics_port, json_log=json_log,
        public_url=public_url, node=node,
    ).with_secret()
    server = open_server(config, registry, notify)
    _listen_for_metrics(server, notify)
    if only:
        names = ", ".join(sorted(only))
        stored = {version.function_name for version in server.service.newest_versions()}
        for missing in sorted(only - stored):
            notify(f"No version of {missing!r} is in the database yet: this worker runs it once one is deployed.")
    else:
        names = ", ".join(spec.name for spec in server.registry) or "every function of the database, as it gets one"
    server.start()
    try:
        signum = wait_for_stop_signal(
            lambda: notify(f"Perdure worker running {names} (database {display_url(db)}, {workers} workers)")
        )
        notify(
            f"Received {signal.Signals(signum).name}: stopping once running invocations finish "
            "(send it again to stop at once)."
        )
    finally:
        server.close()


def _note_urls(server: Server, public_url: str, notify: Notify) -> None:
    """Names each function URL as callers reach it."""
    from perdure.protocol.function_urls import AuthType

    for spec in server.registry:
        if spec.function_url is not None:
            auth = "open to anyone" if spec.function_url.auth_type is AuthType.NONE else "authenticated as the API"
            notify(f"Function URL of {spec.name}: POST {public_url}/url/{spec.name} ({auth})")


def _listen_for_metrics(server: Server, notify: Notify) -> None:
    port = server.listen_for_metrics()
    if port is not None:
        notify(f"Metrics: http://{server.config.metrics_host}:{port}/metrics (no authentication: keep this port private)")
