"""The ``perdure`` command: serve functions, start executions, inspect them, complete callbacks."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from perdure.client import Client
from perdure.errors import PerdureError
from perdure.service.model import json_default
from perdure.store import DEFAULT_DB_URL, display_url

if TYPE_CHECKING:
    from perdure.api.keys import KeyRing
    from perdure.runtime.registry import Registry
    from perdure.store.base import Store

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=json_default))


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


def _open_service(db: str, blobs: str | None, s3_endpoint: str | None, retention_days: int, specs: Any) -> Any:
    """Opens the service on ``db`` with the blob store chosen from --blobs and the functions' template."""
    from perdure.runtime.storage import choose_blobs
    from perdure.service.executions import DurableService, ServiceConfig
    from perdure.service.functions import lookup_of
    from perdure.service.snapshot_upgrade import upgrade_snapshots
    from perdure.store import open_store

    config, notes = choose_blobs(blobs, s3_endpoint, specs)
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    # The functions served, so that a chained invoke can start a child execution of one of them.
    functions = lookup_of(spec.defaults for spec in specs)
    service = DurableService(open_store(db, config), ServiceConfig(retention_days=retention_days), functions=functions)
    # Before any execution runs here: one suspended across an upgrade resumes from its snapshots.
    upgrade = upgrade_snapshots(service.store, service.snapshots, service.clock())
    if upgrade.note:
        click.echo(f"Note: {upgrade.note}", err=True)
    return service, config


def functions_arguments(function: F) -> F:
    """The TARGET arguments and --template option of the commands that run functions."""
    function = click.option(
        "--template",
        "template",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A SAM/CloudFormation template whose durable functions to run.",
    )(function)
    return click.argument("targets", nargs=-1)(function)


def _json_argument(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not valid JSON ({error}). Quote it, as in '{{\"id\": 1}}'.", param_hint=option) from None


def _decoded(execution: dict[str, Any]) -> dict[str, Any]:
    """The execution as the CLI prints it: ``Result`` decoded from its JSON text."""
    shown = dict(execution)
    if isinstance(shown.get("Result"), str):
        try:
            shown["Result"] = json.loads(shown["Result"])
        except ValueError:
            pass
    return shown


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="perdure")
def main() -> None:
    """Perdure: self-hosted durable functions for Python."""


@main.command()
@functions_arguments
@db_options("Database URL.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8500, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256), help="Worker processes that run handlers.")
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
@blob_options
@retention_option
@reports_errors
def serve(
    targets: tuple[str, ...], template: Path | None, db: str, host: str, port: int, workers: int, no_workers: bool,
    dev: bool, request_timeout: float, blobs: str | None, s3_endpoint: str | None, retention_days: int,
) -> None:
    """Serve functions over the Lambda-compatible HTTP API and run their executions.

    Each TARGET is either path/to/app.py, whose @durable.function functions are all served,
    or NAME=path/to/file.py:handler, naming a handler written with
    aws-durable-execution-sdk-python.

    Requests must be signed with AWS Signature Version 4 (as boto3 and the AWS CLI sign) or
    carry a bearer token, of a key made with `perdure keys create` on the same --db; without
    any key the server refuses to start. With --dev, on 127.0.0.1, ::1 or localhost only, the
    API is open to anything on this machine.
    """
    import uvicorn

    from perdure.api.app import PerdureApp
    from perdure.api.dev_guard import is_loopback
    from perdure.api.slow_clients import uvicorn_settings
    from perdure.runtime.runner import Runtime
    from perdure.runtime.workers import WorkerSettings
    from perdure.sdk.snapshot import load_secret
    from perdure.store import data_dir_for

    if dev and not is_loopback(host):
        raise click.UsageError(
            f"--dev runs the API with no authentication, so it is allowed only on a loopback --host "
            f"(127.0.0.1, ::1 or localhost), not {host}. Create a key with `perdure keys create --name NAME` "
            "and serve without --dev."
        )
    # Checked (or made) once here: a short key would otherwise fail every worker as it starts.
    load_secret(data_dir_for(db))
    registry = _functions(targets, template, "serve")
    service, blob_config = _open_service(db, blobs, s3_endpoint, retention_days, registry)
    runtime = None
    if not no_workers:
        settings = WorkerSettings(db, blob_config, service.config, data_dir=data_dir_for(db))
        runtime = Runtime(service, registry, settings, workers)
    keys = None if dev else _server_keys(service.store, db)
    app = PerdureApp(service, registry, runtime, keys, request_seconds=request_timeout)
    if dev:
        click.echo(
            "Development mode (--dev): the API is open, with no authentication, to every user and program "
            "on this machine. Without --dev it needs keys from `perdure keys create`.",
            err=True,
        )
    names = ", ".join(spec.name for spec in registry)
    running = "no workers: `perdure worker` runs the executions" if no_workers else f"{workers} workers"
    click.echo(f"Perdure serving {names} on http://{host}:{port} (database {display_url(db)}, {running})", err=True)
    signing_in = "open, as the API is" if dev else "sign in with the token of a key from `perdure keys create`"
    click.echo(f"Dashboard: http://{host}:{port}/ ({signing_in})", err=True)
    # Waiting RequestResponse invokes must not hold a shutdown for the length of a function timeout.
    uvicorn.run(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10, **uvicorn_settings(request_timeout)
    )


@main.command()
@functions_arguments
@db_options("Database URL (the one the API's `perdure serve` uses).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 256), help="Worker processes that run handlers.")
@blob_options
@retention_option
@reports_errors
def worker(
    targets: tuple[str, ...], template: Path | None, db: str, workers: int,
    blobs: str | None, s3_endpoint: str | None, retention_days: int,
) -> None:
    """Run the executions of functions, without serving HTTP.

    Takes the same TARGETs and --template as `perdure serve`, and runs the executions that
    any server on the same --db starts: start many, on many machines, with a PostgreSQL
    database (`perdure serve --no-workers` then serves the API alone). Stops on SIGTERM or
    Ctrl-C once running invocations finish; a second signal stops it at once, and what was
    running then resumes elsewhere from its last checkpoint.
    """
    from perdure.runtime.runner import Runtime, wait_for_stop_signal
    from perdure.runtime.workers import WorkerSettings
    from perdure.sdk.snapshot import load_secret
    from perdure.store import data_dir_for

    load_secret(data_dir_for(db))  # as in `perdure serve`: refused here, not in every worker
    registry = _functions(targets, template, "run")
    service, blob_config = _open_service(db, blobs, s3_endpoint, retention_days, registry)
    settings = WorkerSettings(db, blob_config, service.config, data_dir=data_dir_for(db))
    runtime = Runtime(service, registry, settings, workers)
    names = ", ".join(spec.name for spec in registry)
    runtime.start()
    try:
        signum = wait_for_stop_signal(
            lambda: click.echo(f"Perdure worker running {names} (database {display_url(db)}, {workers} workers)", err=True)
        )
        click.echo(
            f"Received {signal.Signals(signum).name}: stopping once running invocations finish "
            "(send it again to stop at once).",
            err=True,
        )
    finally:
        runtime.stop()
        service.store.close()


def _server_keys(store: Store, db: str) -> KeyRing:
    """The keys `perdure serve` checks requests against; refuses to serve when there are none."""
    from perdure.api.keys import KeyRing, api_secret
    from perdure.store import data_dir_for

    keys = KeyRing(store, api_secret(data_dir_for(db)))
    usable, foreign = keys.split_verifiable()
    if not usable and not foreign:
        raise PerdureError(
            f"No API keys exist in the database {display_url(db)}, so every request would be refused. "
            "Create one with `perdure keys create --name NAME` and the same --db (it prints its credentials "
            "once), or, to run open on this machine while developing, serve with --dev."
        )
    for key in foreign:
        click.echo(
            f"Warning: key {key.access_key_id} ({key.name}) was made under another server secret, so its "
            "SigV4 signatures cannot be verified here (its bearer token works). Give this server the "
            "PERDURE_SECRET (or data folder secret file) that `perdure keys create` used.",
            err=True,
        )
    click.echo(
        f"Authentication on: requests need a SigV4 signature or bearer token of one of {len(usable + foreign)} "
        "API keys (`perdure keys list`).",
        err=True,
    )
    return keys


def _functions(targets: tuple[str, ...], template: Path | None, verb: str) -> Registry:
    """The registry of the functions named by TARGETs and --template; at least one."""
    registry = _registry(targets, template)
    if not len(registry):
        raise click.UsageError(f"Nothing to {verb}: name at least one TARGET or a --template.")
    return registry


def _registry(targets: tuple[str, ...], template: Path | None) -> Registry:
    from perdure.runtime.registry import FunctionSpec, Registry, parse_target, seed_functions

    registry = Registry()
    for target in targets:
        if "=" not in target and target.endswith(".py"):
            for spec in seed_functions(Path(target)):
                registry.add(spec)
            continue
        name, file, attribute = parse_target(target)
        registry.add(FunctionSpec(name, file.resolve(), attribute))
    if template is not None:
        from perdure.runtime.template import load_template

        loaded = load_template(template)
        for reason in loaded.skipped:
            click.echo(f"Skipped: {reason}", err=True)
        for spec in loaded.functions:
            registry.add(spec)
    return registry


@main.command()
@click.argument("function")
@click.option("--payload", help="The execution input, as JSON.")
@click.option("--async", "run_async", is_flag=True, help="Return at once instead of waiting for the end.")
@click.option("--name", help="Execution name: starting the same name again returns the same execution.")
@endpoint_option
@reports_errors
def invoke(function: str, payload: str | None, run_async: bool, name: str | None, endpoint: str) -> None:
    """Start an execution of FUNCTION and print it as JSON."""
    value = _json_argument(payload, "--payload")
    with Client(endpoint) as client:
        execution = client.invoke(function, value, wait=not run_async, name=name)
    _print(_decoded(execution))


@main.command()
@click.argument("target")
@click.option("--payload", help="The execution input, as JSON.")
@click.option("--name", help="Execution name: run the same name again to resume it after a crash.")
@db_options("Database URL.")
@reports_errors
def run(target: str, payload: str | None, name: str | None, db: str) -> None:
    """Run one execution of a @durable.function in this process and print its result.

    TARGET is path/to/file.py:function. Waits are waited in place; at a callback it prints
    the callback ID and how to complete it, and goes on waiting. Running the same command
    again with the same --name resumes the execution from its last checkpoint.
    """
    from perdure.sdk.local import run_to_end

    file, _, attribute = target.rpartition(":")
    if not file.endswith(".py") or not attribute:
        raise click.BadParameter("write path/to/file.py:function, e.g. examples/order_processing.py:process_order", param_hint="TARGET")
    announce = functools.partial(_announce_callback, database=_database_argument(db))
    # What the function prints goes to stderr, so stdout carries only the result's JSON.
    with contextlib.redirect_stdout(sys.stderr):
        execution = run_to_end(Path(file), attribute, _json_argument(payload, "--payload"), name, db, announce)
    _print(_decoded(execution.to_wire()))
    if execution.status.value != "SUCCEEDED":
        sys.exit(1)


def _database_argument(db: str) -> tuple[str, str]:
    """The option that names the database in a command printed for the user, and a note: never its password.

    Stderr is often kept in logs and terminals' scrollback. A URL that came from ``--db-env
    NAME`` is named by that option again.
    """
    db_env = click.get_current_context().params.get("db_env")
    if db_env:
        return f"--db-env {shlex.quote(db_env)}", ""
    shown = display_url(db)
    note = "" if shown == db else "\nPut the database's password in place of ***, or give its URL as --db-env NAME."
    # Quoted: a URL may hold what a shell reads otherwise (&, ?, and the mask's *).
    return f"--db {shlex.quote(shown)}", note


def _announce_callback(callback_id: str, db: str, database: tuple[str, str]) -> None:
    option, note = database
    click.echo(
        f"Waiting for callback {callback_id}. Complete it from another terminal with:\n"
        f"  perdure callback succeed {callback_id} --result '{{\"approved\": true}}' {option}{note}",
        err=True,
    )


@main.group()
def executions() -> None:
    """List, inspect, stop, pause, resume, restart and delete executions."""


@executions.command("list")
@click.option("--function", help="Only executions of this function.")
@click.option("--status", type=click.Choice(["RUNNING", "PAUSING", "PAUSED", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"]))
@endpoint_option
@reports_errors
def list_executions(function: str | None, status: str | None, endpoint: str) -> None:
    """List executions, newest first."""
    with Client(endpoint) as client:
        _print(client.list_executions(function, status))


@executions.command("get")
@click.argument("arn")
@endpoint_option
@reports_errors
def get_execution(arn: str, endpoint: str) -> None:
    """Show one execution."""
    with Client(endpoint) as client:
        _print(_decoded(client.get_execution(arn)))


@executions.command("history")
@click.argument("arn")
@endpoint_option
@reports_errors
def history(arn: str, endpoint: str) -> None:
    """Show an execution's history events, oldest first."""
    with Client(endpoint) as client:
        _print(client.history(arn))


@executions.command("logs")
@click.argument("arn")
@click.option("--text", is_flag=True, help="Print only the lines themselves, not JSON.")
@endpoint_option
@reports_errors
def logs(arn: str, text: bool, endpoint: str) -> None:
    """Show the lines an execution's invocations wrote (stdout, stderr, logging), in order.

    One JSON object a line: Seq, Invocation (which invocation wrote it), Stream (stdout, stderr
    or log), Timestamp and Message. Lines logged while an invocation replays what earlier ones
    did are not repeated (the SDK's logger and ctx.logger stay quiet on replay).
    """
    with Client(endpoint) as client:
        for line in client.logs(arn):
            click.echo(line["Message"] if text else json.dumps(line))


@executions.command("stop")
@click.argument("arn")
@click.option("--error-type", help="ErrorType recorded on the stopped execution.")
@click.option("--error-message", help="ErrorMessage recorded on the stopped execution.")
@endpoint_option
@reports_errors
def stop(arn: str, error_type: str | None, error_message: str | None, endpoint: str) -> None:
    """Stop a running execution."""
    with Client(endpoint) as client:
        client.stop(arn, error_type, error_message)
        _print(_decoded(client.get_execution(arn)))


@executions.command("pause")
@click.argument("arn")
@click.option("--reason", help="Why it is paused; recorded in its history.")
@click.option(
    "--keep-timeout-running",
    is_flag=True,
    help="Let its execution timeout run on while paused (by default the timeout stands still).",
)
@endpoint_option
@reports_errors
def pause(arn: str, reason: str | None, keep_timeout_running: bool, endpoint: str) -> None:
    """Pause an execution: it is not invoked until resumed.

    What it waits for goes on meanwhile (waits fire, callbacks can be completed). An
    invocation running now is cut short at its next checkpoint (status PAUSING until then).
    """
    with Client(endpoint) as client:
        client.pause(arn, reason, pause_timeout=not keep_timeout_running)
        _print(_decoded(client.get_execution(arn)))


@executions.command("resume")
@click.argument("arn")
@click.option("--reason", help="Why it is resumed; recorded in its history.")
@endpoint_option
@reports_errors
def resume(arn: str, reason: str | None, endpoint: str) -> None:
    """Resume a paused execution; it runs at once if anything it waited for happened meanwhile."""
    with Client(endpoint) as client:
        client.resume(arn, reason)
        _print(_decoded(client.get_execution(arn)))


@executions.command("restart")
@click.argument("arn")
@click.option(
    "--from",
    "from_checkpoint",
    required=True,
    metavar="CHECKPOINT",
    help="A checkpoint number (2 for the second) or the ID of a finished operation.",
)
@click.option("--name", help="The new execution's name (default: <old name>-restart-<n>).")
@endpoint_option
@reports_errors
def restart(arn: str, from_checkpoint: str, name: str | None, endpoint: str) -> None:
    """Start a new execution that resumes right after a checkpoint of this one.

    It runs the same function with the same input; what was done up to that checkpoint is
    not done again. The execution ARN is left as it is; this prints the new one.
    """
    with Client(endpoint) as client:
        _print(_decoded(client.restart(arn, from_checkpoint, name)))


@executions.command("delete")
@click.argument("arn")
@endpoint_option
@reports_errors
def delete(arn: str, endpoint: str) -> None:
    """Delete an execution that has ended, with its history and payloads.

    A running or paused execution is refused: stop it first.
    """
    with Client(endpoint) as client:
        reply = client.delete(arn)
    _print({"DurableExecutionArn": arn, **reply})


@main.group()
def callback() -> None:
    """Complete callbacks that executions wait for."""


def db_option(function: F) -> F:
    return db_options("Complete it directly in this database (as `perdure run` uses), not through a server.", None)(
        function
    )


def _local_service(db: str) -> Any:
    from perdure.service.executions import DurableService
    from perdure.store import open_store

    return DurableService(open_store(db))


@callback.command("succeed")
@click.argument("callback_id")
@click.option("--result", help="The callback's result, as JSON.")
@endpoint_option
@db_option
@reports_errors
def callback_succeed(callback_id: str, result: str | None, endpoint: str, db: str | None) -> None:
    """Complete a callback successfully."""
    value = _json_argument(result, "--result")
    if db:
        _local_service(db).succeed_callback(callback_id, json.dumps(value) if value is not None else None)
    else:
        with Client(endpoint) as client:
            client.succeed_callback(callback_id, value)
    _print({"CallbackId": callback_id, "Status": "SUCCEEDED"})


@callback.command("fail")
@click.argument("callback_id")
@click.option("--error-type", help="ErrorType of the failure.")
@click.option("--error-message", help="ErrorMessage of the failure.")
@endpoint_option
@db_option
@reports_errors
def callback_fail(callback_id: str, error_type: str | None, error_message: str | None, endpoint: str, db: str | None) -> None:
    """Fail a callback."""
    if db:
        from perdure.service.model import ErrorObject

        _local_service(db).fail_callback(callback_id, ErrorObject(message=error_message, type=error_type))
    else:
        with Client(endpoint) as client:
            client.fail_callback(callback_id, error_type, error_message)
    _print({"CallbackId": callback_id, "Status": "FAILED"})


@callback.command("heartbeat")
@click.argument("callback_id")
@endpoint_option
@db_option
@reports_errors
def callback_heartbeat(callback_id: str, endpoint: str, db: str | None) -> None:
    """Tell a callback's execution that the work it waits for is still going."""
    if db:
        _local_service(db).heartbeat_callback(callback_id)
    else:
        with Client(endpoint) as client:
            client.heartbeat_callback(callback_id)
    _print({"CallbackId": callback_id, "Status": "HEARTBEAT"})


@main.group()
def keys() -> None:
    """Create, list and revoke the API keys that `perdure serve` accepts."""


def keys_db_option(function: F) -> F:
    return db_options("Database URL (the one `perdure serve` uses).")(function)


def _key_ring(db: str) -> KeyRing:
    from perdure.api.keys import KeyRing, api_secret
    from perdure.store import data_dir_for, open_store

    return KeyRing(open_store(db), api_secret(data_dir_for(db)))


@keys.command("create")
@click.option("--name", required=True, help="Who or what uses the key, e.g. ci or deploy-bot.")
@keys_db_option
@reports_errors
def create_key(name: str, db: str) -> None:
    """Create an API key and print its credentials, which are shown only this once.

    AccessKeyId and SecretAccessKey sign requests with SigV4: give them to boto3 or the AWS
    CLI, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the perdure client commands.
    Token is a bearer token (Authorization: Bearer ..., or PERDURE_TOKEN). The database keeps
    neither, only what verifies them, with a secret from PERDURE_SECRET or the data folder's
    secret file: a server verifies SigV4 only with the same one. Lost credentials cannot be
    shown again: revoke the key and create another.
    """
    ring = _key_ring(db)
    try:
        _print(ring.create(name).to_wire())
    finally:
        ring.store.close()


@keys.command("list")
@keys_db_option
@reports_errors
def list_keys(db: str) -> None:
    """List the API keys, oldest first, active and revoked (no secrets)."""
    ring = _key_ring(db)
    try:
        _print([key.to_wire() for key in ring.all()])
    finally:
        ring.store.close()


@keys.command("revoke")
@click.argument("key")
@keys_db_option
@reports_errors
def revoke_key(key: str, db: str) -> None:
    """Revoke the active key with this access key ID or name; servers refuse it from the next request."""
    ring = _key_ring(db)
    try:
        _print(ring.revoke(key).to_wire())
    finally:
        ring.store.close()


@main.command()
@db_options("Database URL.")
@blob_options
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The template the server runs, if its checkpoint bucket holds the blobs (no --blobs given).",
)
@retention_option
@click.option("--dry-run", is_flag=True, help="Print what would be removed, and remove nothing.")
@reports_errors
def purge(
    db: str, blobs: str | None, s3_endpoint: str | None, template: Path | None, retention_days: int, dry_run: bool
) -> None:
    """Delete finished executions whose retention ran out, with the blobs only they used.

    An execution is kept for its function's retention (retention_days,
    RetentionPeriodInDays, or its checkpoint bucket's ExpirationInDays), or --retention-days
    when it has none, counted from its end. Prints what was removed as JSON. `perdure serve`
    and `perdure worker` purge by themselves every hour; give this command the same --db
    and --blobs (or --template) as them.
    """
    specs = list(_registry((), template)) if template else []
    service, _ = _open_service(db, blobs, s3_endpoint, retention_days, specs)
    try:
        report = service.purge_expired(dry_run=dry_run)
    finally:
        service.store.close()
    _print(report.to_wire())
