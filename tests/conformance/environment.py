"""The Python environment that runs AWS's conformance package.

``aws-durable-execution-conformance-tests`` 1.0.0 declares ``Requires-Python >=3.14``, yet it is
plain Python that imports and runs on 3.13, and Perdure's own environment is 3.11. So the
conformance run keeps the package out of the project's environment: it gets a virtual
environment of its own, ``tests/conformance/.venv``, made with the newest Python at hand (3.14
if there is one, else 3.13: the machines here have pyenv's 3.13), and the package installed
there with ``pip install --ignore-requires-python`` at a pinned version, its dependencies
(boto3, packaging, PyYAML) resolved by pip as usual. Nothing of the package is copied into this
repository. The harness (``run.py``) runs in that environment and starts ``perdure serve`` from
the project's environment as a subprocess, so each side runs on its own interpreter.

This module needs only the standard library and runs on any Python from 3.11 on.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = "aws-durable-execution-conformance-tests"
VERSION = "1.0.0"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
MARKER = VENV / ".installed"
# The oldest Python the package is run on; it asks for 3.14, and runs on 3.13.
MINIMUM = (3, 13)


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def candidates() -> list[str]:
    """Interpreters that may run the package, best first."""
    found: list[str] = []
    explicit = os.environ.get("PERDURE_CONFORMANCE_PYTHON")
    if explicit:
        return [explicit]
    for name in ("python3.14", "python3.13"):
        path = shutil.which(name)
        if path:
            found.append(path)
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    for root in dict.fromkeys(r for r in roots if r):
        # Newest first: 3.14.x before 3.13.x.
        for path in sorted(glob.glob(f"{root}/versions/3.1[3-9]*/bin/python3"), reverse=True):
            found.append(path)
    return list(dict.fromkeys(found))


def find_python() -> tuple[str, tuple[int, int]]:
    """The interpreter for the package's environment: the first candidate of at least 3.13."""
    for python in candidates():
        version = _version(python)
        if version is not None and version >= MINIMUM:
            return python, version
    raise SystemExit(
        f"The conformance run needs Python {MINIMUM[0]}.{MINIMUM[1]} or newer for {PACKAGE} "
        "(which asks for 3.14 and runs on 3.13), and none was found: looked for python3.14 and "
        "python3.13 on PATH and under pyenv's versions. Install one (pyenv install 3.13) or set "
        "PERDURE_CONFORMANCE_PYTHON to its path."
    )


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure() -> Path:
    """Creates (or reuses) the package's environment and returns its interpreter."""
    wanted = f"{PACKAGE}=={VERSION}"
    python = venv_python()
    if python.exists() and MARKER.exists() and MARKER.read_text().strip() == wanted:
        return python
    base, version = find_python()
    print(
        f"conformance: making {VENV} with Python {version[0]}.{version[1]} ({base}) for {wanted}",
        file=sys.stderr,
        flush=True,
    )
    if VENV.exists():
        shutil.rmtree(VENV)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # The package's metadata asks for 3.14; it runs on 3.13 (see the module docstring).
            "--ignore-requires-python",
            wanted,
        ],
        check=True,
    )
    MARKER.write_text(wanted + "\n")
    return python


def package_importable() -> bool:
    try:
        import aws_durable_execution_conformance_tests  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    print(ensure())
