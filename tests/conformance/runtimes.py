"""The runtimes the conformance cases' handlers are written for: Python and Node.js.

Each runtime has a folder of handlers, one file per suite, with a handler per case named
``case_S_N`` (and the ``target_*`` functions the invoke cases call), and an expectations file
of its own listing the cases that are not expected to pass there, each with its reason.

- ``python``: ``handlers/<suite>.py``, on AWS's ``aws-durable-execution-sdk-python``
  (``@durable_execution``), served as ``Runtime: python3.13``; ``expectations.yaml``.
- ``node``: ``handlers_js/<suite>.mjs``, on AWS's ``@aws/durable-execution-sdk-js``
  (``export const case_S_N = withDurableExecution(...)``), served as ``Runtime: nodejs22.x``;
  ``expectations_node.yaml``. The SDK is pinned by ``handlers_js/package-lock.json`` and
  installed into ``handlers_js/node_modules`` (not committed) with ``npm ci``, once: again only
  when the lock file changes.

This module needs only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Runtime:
    name: str  # what --runtime takes
    template_runtime: str  # the template's Runtime
    handlers: Path  # the folder of handler files, the functions' CodeUri
    suffix: str  # a handler file's suffix; its stem is the suite's name
    pattern: re.Pattern[str]  # finds the served functions' names in a handler file
    expectations: Path
    language: str  # the language the package's report names

    def handler_files(self) -> list[Path]:
        return sorted(path for path in self.handlers.glob(f"*{self.suffix}") if not path.name.startswith("_"))

    def suites(self) -> set[str]:
        """The suites this runtime has a handler file for."""
        return {path.stem for path in self.handler_files()}


PYTHON = Runtime(
    name="python",
    template_runtime="python3.13",
    handlers=HERE / "handlers",
    suffix=".py",
    pattern=re.compile(r"^@durable_execution[^\n]*\n(?:@[^\n]*\n)*def ((?:case_\d+_\d+)|(?:target_\w+))\(", re.M),
    expectations=HERE / "expectations.yaml",
    language="python",
)

NODE = Runtime(
    name="node",
    template_runtime="nodejs22.x",
    handlers=HERE / "handlers_js",
    suffix=".mjs",
    pattern=re.compile(r"^export const ((?:case_\d+_\d+)|(?:target_\w+)) = withDurableExecution\(", re.M),
    expectations=HERE / "expectations_node.yaml",
    language="javascript",
)

RUNTIMES = {runtime.name: runtime for runtime in (PYTHON, NODE)}


def install_node_packages(node: str | None, folder: Path = NODE.handlers) -> None:
    """Installs the handlers' npm packages (the SDK) with ``npm ci``, unless the lock file's are there.

    npm runs on ``node`` (Node 22 or newer; None: the one on PATH), as the SDK asks. A marker in
    ``node_modules`` holds the digest of the lock file it was installed from, so a second run
    starts at once and a changed lock file installs again.
    """
    lock = folder / "package-lock.json"
    marker = folder / "node_modules" / ".perdure-installed"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            f"The Node handlers need their npm packages installed in {folder / 'node_modules'} and npm "
            "was not found on PATH: install Node.js with npm, or run `npm ci` in that folder yourself."
        )
    print(f"conformance: installing the Node handlers' packages (npm ci in {folder})", flush=True)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        env={**os.environ, "PATH": os.pathsep.join([str(Path(node).parent), os.environ.get("PATH", "")])} if node else None,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"npm ci in {folder} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    marker.write_text(digest + "\n")
