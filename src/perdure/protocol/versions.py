"""Function versions and aliases: a function's code and configuration, numbered as Lambda numbers them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from perdure.protocol.function_urls import FunctionUrl
# Lambda's default is 3 s, too short for a durable function: the 900 s maximum, which the
# seed's template also sets. Memory is unlimited unless configured.
DEFAULT_TIMEOUT_SECONDS = 900
LATEST = "$LATEST"


@dataclass(frozen=True)
class FunctionConfig:
    """How a version runs: with its code, what makes it that version.

    ``handler`` names the handler inside the code bundle: ``path/to/file.py:attribute``.
    """

    handler: str
    # The Lambda runtime a deploy named (python3.13, say); None when served from a file.
    runtime: str | None = None
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int | None = None
    execution_timeout_seconds: int | None = None
    retention_days: int | None = None
    # Invocations one worker process runs at once (see ``FunctionSpec.max_concurrency``).
    max_concurrency: int | None = None
    # Its URL (a template's FunctionUrlConfig), if it has one: kept with the version, so that
    # an API server that only reads the database knows it too.
    function_url: FunctionUrl | None = None

    @property
    def lambda_handler(self) -> str:
        """The handler as Lambda writes it: ``pkg/app.py:handler`` is ``pkg.app.handler``; Node's ``src/app.mjs:handler`` is ``src/app.handler``."""
        file, _, attribute = self.handler.rpartition(":")
        if is_node(self.runtime):
            return f"{file.rpartition('.')[0]}.{attribute}"
        return f"{file.removesuffix('.py').replace('/', '.')}.{attribute}"

    def lambda_settings(self) -> dict[str, Any]:
        """Its settings as Lambda's FunctionConfiguration writes them: Timeout, MemorySize, DurableConfig."""
        durable: dict[str, Any] = {}
        if self.execution_timeout_seconds:
            durable["ExecutionTimeout"] = self.execution_timeout_seconds
        if self.retention_days:
            durable["RetentionPeriodInDays"] = self.retention_days
        settings: dict[str, Any] = {"Timeout": self.timeout_seconds, "DurableConfig": durable}
        if self.runtime:
            settings["Runtime"] = self.runtime
        if self.memory_mb:
            settings["MemorySize"] = self.memory_mb
        return settings

    def to_json(self) -> str:
        fields = asdict(self)
        # Settings added after versions were first stored are left out while unset, so that
        # the digest of a version stored before them stays the same.
        for name in _ADDED_SETTINGS:
            if fields[name] is None:
                del fields[name]
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FunctionConfig:
        fields = json.loads(text)
        if fields.get("function_url") is not None:
            fields["function_url"] = FunctionUrl.from_json(fields["function_url"])
        return cls(**fields)

    def digest(self, code_key: str) -> str:
        """What identifies code and configuration together: the same twice reuses one version."""
        return hashlib.sha256(f"{code_key}\n{self.to_json()}".encode()).hexdigest()


_ADDED_SETTINGS = ("max_concurrency", "function_url")


def handler_of_lambda(handler: str, runtime: str | None = None) -> str:
    """Lambda's ``pkg.app.handler`` as a ``FunctionConfig.handler``: ``pkg/app.py:handler``.

    A Node runtime's ``src/app.handler`` is ``src/app.js:handler``, whose file a deploy then
    looks for as Lambda does: ``.js``, else ``.mjs``, else ``.cjs`` (``NODE_EXTENSIONS``).
    """
    module, _, attribute = handler.rpartition(".")
    if is_node(runtime):
        return f"{module}{NODE_EXTENSIONS[0]}:{attribute}"
    return f"{module.replace('.', '/')}.py:{attribute}"


# What Lambda's Node runtimes try, in order, for a handler's module.
NODE_EXTENSIONS = (".js", ".mjs", ".cjs")


def is_node(runtime: str | None) -> bool:
    """Whether a Lambda runtime name (``nodejs22.x``) is one of Node.js."""
    return runtime is not None and runtime.startswith("nodejs")


@dataclass(frozen=True)
class FunctionVersion:
    """Version ``version`` of a function: the bundle its code is in (a blob key) and its configuration."""

    function_name: str
    version: int
    code_key: str
    config: FunctionConfig
    created_time: float

    @property
    def digest(self) -> str:
        return self.config.digest(self.code_key)


@dataclass(frozen=True)
class Alias:
    """A name for one version of a function (``live → 3``)."""

    function_name: str
    name: str
    version: int
