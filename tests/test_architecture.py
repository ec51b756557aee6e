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
