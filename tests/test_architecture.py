"""The shape of the code: imports point down the layers, and no module grows past a size one can read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "perdure"


def test_no_module_imports_a_part_above_it() -> None:
    """The layers are ``[tool.importlinter]`` in pyproject.toml; lint-imports reads them there."""
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_module_is_over_800_lines_and_no_command_module_over_400() -> None:
    """A module one can read in a sitting; the CLI only parses arguments and calls the server's parts."""
    sizes = {path.relative_to(SOURCE).as_posix(): len(path.read_text().splitlines()) for path in SOURCE.rglob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > 800} == {}
    assert {name: lines for name, lines in sizes.items() if name.startswith("cli/") and lines > 400} == {}
