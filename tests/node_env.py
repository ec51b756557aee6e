"""Node.js for the tests of Node functions: Node 22 from npm, and the test handlers' npm packages.

A module of its own (as servers.py is): the fixtures of tests/node use it, and so may other
test folders that run Node handlers. Both steps run once per machine: scripts/node22 installs
Node 22 into .node22/, and `npm ci` installs tests/handlers/node/package-lock.json into its
node_modules (both gitignored); a lock file keeps parallel test processes from installing twice.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_HANDLERS = ROOT / "tests" / "handlers" / "node"


@functools.cache
def node22() -> str:
    """The path of a Node.js 22 binary (installed from npm by scripts/node22 the first time)."""
    with _locked():
        found = subprocess.run([str(ROOT / "scripts" / "node22")], capture_output=True, text=True, check=True)
    return found.stdout.strip().splitlines()[-1]


@functools.cache
def node_handlers() -> Path:
    """tests/handlers/node, with its npm packages installed."""
    node = node22()
    with _locked():
        if not (NODE_HANDLERS / "node_modules" / "@aws" / "durable-execution-sdk-js" / "package.json").is_file():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("The Node handlers' tests need npm, to install their packages: install npm (Debian: apt-get install npm).")
            # npm runs on Node 22: on an older Node, npm installs an empty placeholder of the SDK.
            # The rest of the environment stays: npm needs its proxy and certificate settings.
            env = {**os.environ, "PATH": f"{Path(node).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_HANDLERS, env=env, check=True, capture_output=True)
    return NODE_HANDLERS


class _locked:
    """An exclusive lock on .node22.lock, for the length of a ``with``."""

    def __enter__(self) -> None:
        self._file = open(ROOT / ".node22.lock", "w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
