"""The ``perdure`` command itself: its help, its version, and what it says to a command it lacks."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from importlib.metadata import version

import pytest

Perdure = Callable[..., subprocess.CompletedProcess[str]]

COMMANDS = ["callback", "deploy", "executions", "functions", "invoke", "keys", "purge", "run", "schedules", "serve", "worker"]
SUBCOMMANDS = {
    "executions": ["delete", "get", "history", "list", "logs", "pause", "redrive", "restart", "resume", "stop"],
    "functions": ["list", "versions"],
    "schedules": ["list", "pause", "resume", "trigger"],
    "callback": ["fail", "heartbeat", "link", "succeed"],
    "keys": ["create", "list", "revoke"],
}


def listed_commands(help_text: str) -> list[str]:
    section = help_text.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def test_help_lists_every_command_and_h_is_the_same(perdure: Perdure) -> None:
    long, short = perdure("--help"), perdure("-h")
    assert long.returncode == 0 and long.stderr == ""
    assert long.stdout.startswith("Usage: perdure [OPTIONS] COMMAND [ARGS]...")
    assert listed_commands(long.stdout) == COMMANDS
    assert short.stdout == long.stdout


@pytest.mark.parametrize("group", sorted(SUBCOMMANDS))
def test_each_group_lists_its_commands(perdure: Perdure, group: str) -> None:
    shown = perdure(group, "--help")
    assert shown.returncode == 0
    assert listed_commands(shown.stdout) == SUBCOMMANDS[group]


@pytest.mark.parametrize(
    "command", [*COMMANDS, *(f"{group} {name}" for group, names in sorted(SUBCOMMANDS.items()) for name in names)]
)
def test_every_command_answers_h_with_its_usage(perdure: Perdure, command: str) -> None:
    shown = perdure(*command.split(), "-h")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"Usage: perdure {command} ")


def test_version_is_the_installed_packages(perdure: Perdure) -> None:
    shown = perdure("--version")
    assert shown.returncode == 0
    assert shown.stdout.strip() == f"perdure, version {version('perdure')}"


def test_an_unknown_command_exits_2_and_suggests_the_nearest(perdure: Perdure) -> None:
    shown = perdure("invok")
    assert shown.returncode == 2 and shown.stdout == ""
    assert "Error: No such command 'invok'. Did you mean 'invoke'?" in shown.stderr
    assert "Try 'perdure --help' for help." in shown.stderr


def test_no_command_prints_the_usage_and_exits_2(perdure: Perdure) -> None:
    shown = perdure()
    assert shown.returncode == 2
    assert "Usage: perdure [OPTIONS] COMMAND [ARGS]..." in shown.stdout + shown.stderr
