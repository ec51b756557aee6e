"""The ``perdure`` command: serve functions, start executions, inspect them, complete callbacks.

Each module holds the commands of one concern: ``serving`` runs a server (built by
``perdure.server``), ``executions`` talks to one over HTTP, ``functions`` deploys code to one
and lists what it serves, ``schedules`` pauses, resumes and triggers schedules, ``database`` works on a database directly; ``options`` holds what
they share.
"""

from __future__ import annotations

import click

from perdure.cli.database import keys, purge, run
from perdure.cli.executions import callback, executions, invoke
from perdure.cli.functions import deploy, functions_group
from perdure.cli.schedules import schedules
from perdure.cli.serving import serve, worker

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="perdure")
def main() -> None:
    """Perdure: self-hosted durable functions for Python."""


for command in (serve, worker, deploy, invoke, run, executions, functions_group, schedules, callback, keys, purge):
    main.add_command(command)
