"""Served code as function versions: published when a server starts, unpacked where workers import it.

A function a server is given (a file, ``NAME=FILE:ATTR`` or a template's function) is packed with
the rest of its folder into a bundle and published as a version; the server then runs the copy
unpacked into its code cache, never the live folder, so a file edited while it runs changes no
version. An execution runs the version it started on: its invocations find that version's spec
here, and the bundle is fetched from the blob store and unpacked once if this machine does not
have it yet.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from perdure.protocol.versions import FunctionConfig, FunctionVersion
from perdure.runtime.bundles import NOT_PYTHON_CODE, Bundle, pack_folder, unpack
from perdure.runtime.node_binary import is_node_runtime
from perdure.runtime.registry import FunctionSpec
from perdure.service.executions import DurableService


class CodeVersions:
    """The versions of functions' code, unpacked into ``cache`` (a folder of the server's own)."""

    def __init__(self, service: DurableService, cache: Path, leave_out: Collection[Path] = ()) -> None:
        self.service = service
        self.cache = cache
        # Not code, though it may sit in a code folder: the server's database and data.
        self.leave_out = tuple(leave_out)
        self._specs: dict[tuple[str, int], FunctionSpec] = {}
        # Each folder is packed once, however many functions share it: a Node folder's
        # node_modules holds thousands of files (packing 20 MB of them takes a second or more).
        self._packed: dict[tuple[Path, frozenset[str]], Bundle] = {}
        self._lock = threading.Lock()

    def publish(self, spec: FunctionSpec) -> FunctionSpec:
        """Publishes the spec's code and settings; returns the spec of that version, run from the cache."""
        folder = spec.code_folder.resolve()
        names = frozenset() if is_node_runtime(spec.runtime) else NOT_PYTHON_CODE
        with self._lock:
            bundle = self._packed.get((folder, names))
        if bundle is None:
            bundle = pack_folder(folder, leave_out=self.leave_out, leave_out_names=names)
            with self._lock:
                self._packed[(folder, names)] = bundle
        handler = f"{spec.file.resolve().relative_to(folder).as_posix()}:{spec.attribute}"
        version = self.service.publish_version(spec.name, bundle.data, spec.config(handler))
        if spec.auto_publish_alias:
            self.service.put_alias(spec.name, spec.auto_publish_alias, version.version)
        published = self._spec_of(version, bundle, spec)
        with self._lock:
            self._specs[(spec.name, version.version)] = published
        return published

    def publish_bundle(self, function_name: str, bundle: Bundle, config: FunctionConfig) -> tuple[FunctionVersion, FunctionSpec]:
        """Publishes code that came as a bundle (a deploy through the API); returns its version and spec."""
        version = self.service.publish_version(function_name, bundle.data, config)
        return version, self._cached(version)

    def spec(self, served: FunctionSpec, version: int) -> FunctionSpec:
        """The spec of ``version`` of the function ``served`` is the newest served spec of."""
        with self._lock:
            known = self._specs.get((served.name, version))
        if known is not None:
            return known
        found = self.service.get_version(served.name, str(version))
        assert found is not None, "a number names a version or raises"
        return self._cached(found, served)

    def newest(self, only: frozenset[str] | None = None) -> list[FunctionSpec]:
        """The spec of the newest version of every function with versions in the database (or of those in ``only``)."""
        return [
            self._cached(version)
            for version in self.service.newest_versions()
            if only is None or version.function_name in only
        ]

    def _cached(self, version: FunctionVersion, served: FunctionSpec | None = None) -> FunctionSpec:
        key = (version.function_name, version.version)
        with self._lock:
            known = self._specs.get(key)
        if known is None:
            known = self._spec_of(version, Bundle(self.service.version_code(version), version.code_key), served)
            with self._lock:
                known = self._specs.setdefault(key, known)
        return known

    def _spec_of(self, version: FunctionVersion, bundle: Bundle, served: FunctionSpec | None) -> FunctionSpec:
        folder = unpack(bundle, self.cache)
        file, _, attribute = version.config.handler.rpartition(":")
        config = version.config
        return FunctionSpec(
            name=version.function_name,
            file=folder.joinpath(*PurePosixPath(file).parts),
            attribute=attribute,
            timeout_seconds=config.timeout_seconds,
            memory_mb=config.memory_mb,
            execution_timeout_seconds=config.execution_timeout_seconds,
            retention_days=config.retention_days,
            max_concurrency=config.max_concurrency,
            function_url=config.function_url,
            checkpoint_bucket=served.checkpoint_bucket if served else None,
            code_dir=folder,
            version=version.version,
            runtime=config.runtime,
        )
