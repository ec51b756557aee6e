"""The commands that work on a database directly, with no server: run, keys and purge."""

from __future__ import annotations

import contextlib
import functools
import shlex
import sys
from pathlib import Path

import click

from perdure.cli.options import (
    F,
    blob_options,
    db_options,
    decoded,
    json_argument,
    notify,
    print_json,
    registry_of,
    reports_errors,
    retention_option,
)
from perdure.store import display_url


@click.command()
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
    from perdure.runtime.local import run_to_end

    file, _, attribute = target.rpartition(":")
    if not file.endswith(".py") or not attribute:
        raise click.BadParameter("write path/to/file.py:function, e.g. examples/order_processing.py:process_order", param_hint="TARGET")
    announce = functools.partial(_announce_callback, database=_database_argument(db))
    # What the function prints goes to stderr, so stdout carries only the result's JSON.
    with contextlib.redirect_stdout(sys.stderr):
        execution = run_to_end(Path(file), attribute, json_argument(payload, "--payload"), name, db, announce)
    print_json(decoded(execution.to_wire()))
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


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys that `perdure serve` accepts."""


def keys_db_option(function: F) -> F:
    return db_options("Database URL (the one `perdure serve` uses).")(function)


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
    from perdure.server import open_key_ring

    ring = open_key_ring(db)
    try:
        print_json(ring.create(name).to_wire())
    finally:
        ring.store.close()


@keys.command("list")
@keys_db_option
@reports_errors
def list_keys(db: str) -> None:
    """List the API keys, oldest first, active and revoked (no secrets)."""
    from perdure.server import open_key_ring

    ring = open_key_ring(db)
    try:
        print_json([key.to_wire() for key in ring.all()])
    finally:
        ring.store.close()


@keys.command("revoke")
@click.argument("key")
@keys_db_option
@reports_errors
def revoke_key(key: str, db: str) -> None:
    """Revoke the active key with this access key ID or name; servers refuse it from the next request."""
    from perdure.server import open_key_ring

    ring = open_key_ring(db)
    try:
        print_json(ring.revoke(key).to_wire())
    finally:
        ring.store.close()


@click.command()
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
    from perdure.server import ServerConfig, open_service

    specs = list(registry_of((), template)) if template else []
    config = ServerConfig(db_url=db, blobs=blobs, s3_endpoint=s3_endpoint, retention_days=retention_days)
    service, _ = open_service(config, specs, notify)
    try:
        report = service.purge_expired(dry_run=dry_run)
    finally:
        service.close()
    print_json(report.to_wire())
