"""The registry of functions a server runs: names, handlers and their settings."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from perdure.errors import FunctionLoadError, FunctionNotFoundError, InvalidParameterError
from perdure.protocol.destinations import EventInvokeConfig
from perdure.protocol.function_urls import FunctionUrl
from perdure.protocol.limits import FunctionLimits
from perdure.protocol.schedules import ScheduleDefinition
from perdure.protocol.versions import DEFAULT_TIMEOUT_SECONDS, FunctionConfig
from perdure.runtime.destinations import Destinations, decorated
from perdure.runtime.node_binary import NODE_SUFFIXES
from perdure.service.functions import FunctionDefaults, FunctionRef, parse_function_name
from perdure.service.validation import NAME, NAME_RULE

if TYPE_CHECKING:
    from perdure.runtime.code_versions import CodeVersions

__all__ = [
    "CheckpointBucket",
    "FunctionRef",
    "FunctionSpec",
    "Registry",
    "import_file",
    "load_handler",
    "parse_function_name",
    "parse_target",
    "seed_functions",
]

# How often a registry that serves every function of the database looks for new ones.
LOOK_AGAIN_SECONDS = 2.0


@dataclass(frozen=True)
class CheckpointBucket:
    """The S3 bucket a template names for a function's checkpoints (``CheckpointStorage``)."""

    # How the template names it: the bucket's logical ID, or its ARN.
    resource: str
    # Its name outside CloudFormation, or None when CloudFormation would make one up.
    name: str | None


@dataclass(frozen=True)
class FunctionSpec:
    """A registered function: where its handler is and how it may run."""

    name: str
    file: Path
    attribute: str
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int | None = None
    execution_timeout_seconds: int | None = None
    retention_days: int | None = None
    checkpoint_bucket: CheckpointBucket | None = None
    # The folder whose files are the function's code (a template's CodeUri); None: the file's folder.
    code_dir: Path | None = None
    # The published version this spec runs (its file then in the unpacked bundle); None: unpublished.
    version: int | None = None
    # A template's AutoPublishAlias: the alias each publish points at the version it made.
    auto_publish_alias: str | None = None
    # How many of its invocations one worker process runs at once; None: the pool's default
    # (1 for a function with ``memory_mb``, whose limit is per process).
    max_concurrency: int | None = None
    # What starts it on a clock. Not part of its versions' settings: like an EventBridge rule, a
    # schedule triggers the function, and changing one publishes no new version.
    schedules: tuple[ScheduleDefinition, ...] = ()
    # The functions its ended executions start (a template's EventInvokeConfig, on_failure=...).
    destinations: Destinations | None = None
    # A template's FunctionUrlConfig: a plain HTTP request to /url/NAME starts an execution.
    function_url: FunctionUrl | None = None
    # How many of its invocations run at once on all servers, and how often one starts (issue 16).
    limits: FunctionLimits = FunctionLimits()
    # Its Lambda runtime (``nodejs22.x`` runs it in Node.js); None: Python.
    runtime: str | None = None

    def config(self, handler: str) -> FunctionConfig:
        """Its settings as a version keeps them, with ``handler`` (``file.py:attribute``, in its code)."""
        return FunctionConfig(
            handler=handler,
            runtime=self.runtime,
            timeout_seconds=self.timeout_seconds,
            memory_mb=self.memory_mb,
            execution_timeout_seconds=self.execution_timeout_seconds,
            retention_days=self.retention_days,
            max_concurrency=self.max_concurrency,
            function_url=self.function_url,
        )

    @property
    def code_folder(self) -> Path:
        return self.code_dir or self.file.parent

    @property
    def target(self) -> str:
        return f"{self.file}:{self.attribute}"

    @property
    def defaults(self) -> FunctionDefaults:
        """What the service needs to start an execution of it (a chained invoke's child)."""
        return FunctionDefaults(self.name, self.execution_timeout_seconds, self.retention_days)


def parse_target(target: str) -> tuple[str, Path, str]:
    """Parses ``NAME=path/to/file.py:attribute`` (or a Node module's ``.mjs``, ``.cjs``, ``.js``) into its three parts."""
    name, sep, location = target.partition("=")
    file, colon, attribute = location.rpartition(":")
    if not sep or not colon or not file.endswith((".py", *NODE_SUFFIXES)) or not attribute:
        raise InvalidParameterError(
            f"Invalid target {target!r}: write NAME=path/to/file.py:handler, "
            "for example orders=examples/orders.py:handler (or a Node.js module, orders=app.mjs:handler)."
        )
    if not NAME.fullmatch(name):
        raise InvalidParameterError(f"Invalid function name {name!r}: use {NAME_RULE}.")
    return name, Path(file), attribute


def import_file(function_name: str, file: Path) -> ModuleType:
    """Imports a handler file once, under its own module name as Lambda does.

    So error types read ``orders.OrderRejected``, and the file's neighbours that import it get
    this same module. The file's folder goes on the path, as Lambda's code folder does.
    """
    path = file.resolve()
    if not path.is_file():
        raise FunctionLoadError(function_name, f"the file {file} does not exist.")
    module_name = path.stem
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    if loaded is not None:
        module_name = f"perdure_handler_{function_name.replace('-', '_')}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise FunctionLoadError(function_name, f"{file} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise FunctionLoadError(function_name, f"importing {file} raised {type(error).__name__}: {error}") from error
    return module


def load_handler(spec: FunctionSpec) -> Callable[..., Any]:
    """Imports the function's file and returns its handler attribute."""
    handler = getattr(import_file(spec.name, spec.file), spec.attribute, None)
    if not callable(handler):
        raise FunctionLoadError(
            spec.name, f"{spec.file} has no function named {spec.attribute!r}; check the Handler setting."
        )
    return handler  # type: ignore[no-any-return]


def seed_functions(file: Path) -> list[FunctionSpec]:
    """Imports a file and returns a spec for each ``@durable.function`` defined in it."""
    from perdure.sdk.function import MARKER

    module = import_file(file.stem, file)
    specs = []
    for attribute, value in vars(module).items():
        durable = getattr(value, MARKER, None)
        if durable is None or getattr(durable.original, "__module__", None) != module.__name__:
            continue
        options = durable.options
        specs.append(
            FunctionSpec(
                name=options.name,
                file=file.resolve(),
                attribute=attribute,
                timeout_seconds=options.timeout,
                memory_mb=options.memory_mb,
                execution_timeout_seconds=options.max_suspension,
                retention_days=options.retention_days,
                max_concurrency=options.max_concurrency,
                schedules=options.schedules,
                destinations=decorated(
                    EventInvokeConfig(on_success=options.on_success, on_failure=options.on_failure), file.name, options.name
                ),
                limits=options.limits,
            )
        )
    if not specs:
        raise FunctionLoadError(file.stem, f"{file} defines no @durable.function; decorate the functions to serve with it.")
    return specs


class Registry:
    """Functions by name, and through ``code`` (when their code is published) each of their versions.

    With ``everything``, it serves every function with a version in the database too, as it
    finds them (``perdure worker`` given no code), or of those only the ones named in ``only``.
    """

    def __init__(
        self,
        specs: Iterable[FunctionSpec] = (),
        code: CodeVersions | None = None,
        everything: bool = False,
        only: frozenset[str] | None = None,
    ) -> None:
        self._specs: dict[str, FunctionSpec] = {}
        self._code = code
        self._everything = everything
        self._only = only
        self._looked = -math.inf
        for spec in specs:
            self.add(spec)

    @property
    def grows(self) -> bool:
        """Whether functions are added as they are found in the database (``everything``)."""
        return self._everything

    @property
    def code(self) -> CodeVersions | None:
        """Where versions' code is published and found; None when this registry publishes none."""
        return self._code

    def published(self, code: CodeVersions) -> Registry:
        """This registry's functions published as versions, each run from its unpacked bundle."""
        return Registry([code.publish(spec) for spec in self], code, self._everything, self._only)

    def install(self, spec: FunctionSpec) -> None:
        """Serves ``spec`` from now on, in place of the function's spec if it has one (a deploy)."""
        self._specs[spec.name] = spec

    def remove(self, function_name: str) -> None:
        """Stops serving a function (it was deleted)."""
        self._specs.pop(function_name, None)

    def _look_for_more(self) -> None:
        """With ``everything``, installs the newest version of every function in the database, now and then."""
        if not self._everything or self._code is None or time.monotonic() - self._looked < LOOK_AGAIN_SECONDS:
            return
        self._looked = time.monotonic()
        for spec in self._code.newest(self._only):
            self.install(spec)

    def add(self, spec: FunctionSpec) -> None:
        if spec.name in self._specs:
            raise InvalidParameterError(
                f"Function {spec.name!r} is registered twice ({self._specs[spec.name].target} and "
                f"{spec.target}); give each function its own name."
            )
        self._specs[spec.name] = spec

    def get(self, function_name: str) -> FunctionSpec:
        """Returns the spec for a name, qualified name or ARN; raises FunctionNotFoundError."""
        ref = parse_function_name(function_name)
        self._look_for_more()
        spec = self._specs.get(ref.name)
        if spec is None:
            raise FunctionNotFoundError(function_name, list(self._specs))
        return spec

    def spec_for(self, function_name: str, version: int | None) -> FunctionSpec:
        """The spec of the version an execution runs: the served one, or an earlier version's.

        Raises FunctionNotFoundError for a function this registry does not serve.
        """
        spec = self.get(function_name)
        if version is None or version == spec.version or self._code is None:
            return spec
        return self._code.spec(spec, version)

    def defaults(self) -> tuple[FunctionDefaults, ...]:
        """The service's view of every registered function (see ``DurableService``'s ``functions``)."""
        return tuple(spec.defaults for spec in self)

    def __iter__(self) -> Any:
        self._look_for_more()
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)
