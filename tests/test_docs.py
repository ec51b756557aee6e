"""The CLI reference in docs/ matches `--help`, and the package exports what it says it does."""

from __future__ import annotations

import os
from pathlib import Path

import click

import perdure
from perdure.cli import main

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _commands(group: click.Group, prefix: list[str]) -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = [(prefix, group)]
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            found.extend(_commands(command, [*prefix, name]))
        else:
            found.append(([*prefix, name], command))
    return found


def render_reference() -> str:
    """Renders every command's --help as one Markdown page."""
    parts = ["# `perdure` command reference", "", "Generated from `--help`; `tests/test_docs.py` keeps it current.", ""]
    for path, command in _commands(main, ["perdure"]):
        # A fixed width, so the page does not depend on the terminal that renders it.
        context = click.Context(
            command, info_name=" ".join(path), help_option_names=["-h", "--help"], terminal_width=100, max_content_width=100
        )
        with context:
            parts += [f"## {' '.join(path)}", "", "```", command.get_help(context), "```", ""]
    return "\n".join(parts)


def test_cli_reference_matches_help() -> None:
    expected = render_reference()
    if os.environ.get("PERDURE_UPDATE_DOCS") == "1":
        REFERENCE.write_text(expected)
    assert REFERENCE.read_text() == expected, (
        "docs/cli.md is out of date: run `PERDURE_UPDATE_DOCS=1 ./scripts/test tests/test_docs.py`."
    )


def test_all_is_sorted_and_complete() -> None:
    modules = {"api", "cli", "client", "errors", "protocol", "runtime", "sdk", "server", "service", "store", "telemetry", "testing"}
    public = {name for name in dir(perdure) if not name.startswith("_") and name not in modules}
    assert perdure.__all__ == sorted(perdure.__all__)
    assert public <= set(perdure.__all__), public - set(perdure.__all__)
