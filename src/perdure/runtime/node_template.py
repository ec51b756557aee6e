"""A template's Node.js functions: their handler files, and TypeScript built ahead with esbuild.

Lambda's Node runtimes read ``Handler: path/file.handler`` as the export ``handler`` of
``path/file.js``, ``.mjs`` or ``.cjs`` in the code folder. A function with SAM's
``Metadata: {BuildMethod: esbuild, BuildProperties: {EntryPoints: [...], ...}}`` is built as
``sam build`` builds it: esbuild bundles its entry points into ``.aws-sam/build/<LogicalId>``
beside the template, and the handler is then found there.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perdure.errors import InvalidParameterError
from perdure.protocol.versions import NODE_EXTENSIONS

__all__ = ["ESBUILD_VERSION", "NodeHandler", "esbuild_binary", "node_handler"]

# The esbuild npm installs on demand (into the cache folder), pinned so that builds repeat.
ESBUILD_VERSION = "0.28.2"
# SAM's BuildProperties for esbuild, and the esbuild flag each becomes.
_FLAGS = {
    "Format": "--format",
    "Target": "--target",
    "Minify": "--minify",
    "Sourcemap": "--sourcemap",
    "External": "--external",
    "Loader": "--loader",
    "MainFields": "--main-fields",
    "OutExtension": "--out-extension",
    "Banner": "--banner",
}


@dataclass(frozen=True)
class NodeHandler:
    """Where a Node function's handler is: its module file, the export, and its code folder."""

    file: Path
    attribute: str
    code_dir: Path


Fail = Callable[[str], InvalidParameterError]


def node_handler(template: Path, logical_id: str, handler: str, code_dir: Path, metadata: dict[str, Any], fail: Fail) -> NodeHandler:
    """Finds (building it first when the metadata asks) the module of ``handler`` in ``code_dir``."""
    module, _, attribute = handler.rpartition(".")
    if not module or not attribute.isidentifier():
        raise fail(
            f"Handler must be file.export, not {handler!r}. For example, Handler: app.handler runs the export "
            "handler of app.mjs (or app.js, app.cjs)."
        )
    method = metadata.get("BuildMethod")
    if method is not None:
        if method != "esbuild":
            raise fail(f"Metadata.BuildMethod is {method!r}; Perdure builds Node functions with esbuild only: write BuildMethod: esbuild.")
        code_dir = _build(template, logical_id, code_dir, metadata.get("BuildProperties") or {}, fail)
    for extension in NODE_EXTENSIONS:
        file = code_dir / (module + extension)
        if file.is_file():
            return NodeHandler(file, attribute, code_dir)
    tried = ", ".join(str(code_dir / (module + extension)) for extension in NODE_EXTENSIONS)
    raise fail(f"Handler {handler!r} needs one of the files {tried}, and none exists. Check Handler and CodeUri, or create the file.")


def _build(template: Path, logical_id: str, source: Path, properties: Any, fail: Fail) -> Path:
    """Runs esbuild as ``sam build`` would; returns the folder it built into."""
    if not isinstance(properties, dict):
        raise fail("Metadata.BuildProperties must be a mapping of esbuild settings, such as EntryPoints: [app.ts].")
    unknown = sorted(set(properties) - {"EntryPoints", *_FLAGS})
    if unknown:
        raise fail(f"Metadata.BuildProperties.{unknown[0]} is not an esbuild setting Perdure knows; use {', '.join(['EntryPoints', *_FLAGS])}.")
    entries = properties.get("EntryPoints")
    if not isinstance(entries, list) or not entries or not all(isinstance(entry, str) for entry in entries):
        raise fail("Metadata.BuildProperties.EntryPoints must list the files to build, for example EntryPoints: [app.ts].")
    for entry in entries:
        if not (source / entry).is_file():
            raise fail(f"Metadata.BuildProperties.EntryPoints names {entry}, but {source / entry} does not exist.")
    out = template.parent / ".aws-sam" / "build" / logical_id
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [str(esbuild_binary()), *entries, "--bundle", "--platform=node", f"--outdir={out}"]
    for name, flag in _FLAGS.items():
        value = properties.get(name)
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) or str(item).lower() in ("true", "false"):
                if str(item).lower() == "true":
                    command.append(flag)
            else:
                command.append(f"{flag}{':' if name in ('External', 'Loader', 'OutExtension', 'Banner') else '='}{item}")
    built = subprocess.run(command, cwd=source, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise fail(f"esbuild could not build {', '.join(entries)} (in {source}):\n{built.stderr.strip()}")
    if str(properties.get("Format", "cjs")).lower() == "esm" and not properties.get("OutExtension"):
        # ES modules in .js files: Node reads them so only under a package.json that says so.
        (out / "package.json").write_text('{"type": "module"}\n')
    if properties.get("External") and (source / "node_modules").is_dir():
        # What esbuild leaves out is imported at run time, from the built folder's node_modules.
        shutil.copytree(source / "node_modules", out / "node_modules", symlinks=True, ignore=shutil.ignore_patterns(".bin"))
    return out


def esbuild_binary() -> Path:
    """esbuild from npm, installed into Perdure's cache folder the first time; raises when npm is missing."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "perdure" / f"esbuild-{ESBUILD_VERSION}"
    binary = cache / "node_modules" / ".bin" / "esbuild"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise InvalidParameterError(
            "Building with BuildMethod: esbuild needs npm, to install esbuild, and npm was not found on PATH. "
            "Install npm (Debian: apt-get install npm), or build the function yourself and point Handler at the built .js."
        )
    cache.mkdir(parents=True, exist_ok=True)
    # Two processes building at once (two servers, parallel tests) would run npm into one folder.
    with open(cache / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), f"esbuild@{ESBUILD_VERSION}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if installed.returncode != 0 or not binary.exists():
        raise InvalidParameterError(f"npm could not install esbuild@{ESBUILD_VERSION} into {cache}:\n{installed.stderr.strip()}")
    return binary
