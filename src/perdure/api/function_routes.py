"""The Lambda routes that deploy code: functions, versions and aliases, as boto3 and the AWS CLI call them.

``CreateFunction`` and ``UpdateFunctionCode`` take a zip (``ZipFile``), which becomes a version of
the function at once: the same code and configuration again is the same version, ``$LATEST``
is the newest, and ``PublishVersion`` answers with it. The server runs the new version for the
next invocation that names it; executions already running go on with theirs.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route, json_body, json_response
from perdure.errors import ConflictError, FunctionNotFoundError, InvalidParameterError
from perdure.protocol.versions import (
    DEFAULT_TIMEOUT_SECONDS,
    LATEST,
    NODE_EXTENSIONS,
    Alias,
    FunctionConfig,
    FunctionVersion,
    handler_of_lambda,
    is_node,
)
from perdure.runtime.bundles import Bundle, member_names, repack_zip
from perdure.runtime.code_versions import CodeVersions
from perdure.runtime.node_binary import NODE_RUNTIMES
from perdure.runtime.registry import Registry
from perdure.service.executions import DurableService
from perdure.service.validation import NAME, NAME_RULE, check_qualifier

FUNCTIONS = "/2015-03-31/functions"


def is_code_upload(method: str, path: str) -> bool:
    """Whether a request carries a function's code (CreateFunction, UpdateFunctionCode)."""
    trimmed = path.rstrip("/")
    return (method == "POST" and trimmed == FUNCTIONS) or (
        method == "PUT" and trimmed.startswith(f"{FUNCTIONS}/") and trimmed.endswith("/code")
    )


class FunctionExistsError(ConflictError):
    def __init__(self, function_name: str) -> None:
        super().__init__(
            f"Function already exist: {function_name}. Update its code with UpdateFunctionCode "
            "(`aws lambda update-function-code`, or `perdure deploy`), or delete it first."
        )


def _text(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and required:
        raise InvalidParameterError(f"{key} is required.")
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError(f"{key} must be a string, not {type(value).__name__}.")
    return value


def _seconds(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidParameterError(f"{key} must be a positive whole number, not {value!r}.")
    return value


def _zip(body: dict[str, Any]) -> bytes:
    """The code a request carries: ``ZipFile`` (base64, as boto3 and the AWS CLI send it)."""
    if "S3Bucket" in body or "ImageUri" in body:
        raise InvalidParameterError("Perdure takes a function's code as ZipFile only: send the zip itself, not S3Bucket or ImageUri.")
    encoded = _text(body, "ZipFile", required=True) or ""
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise InvalidParameterError("ZipFile is not base64: send the zip's bytes base64-encoded, as boto3 does.") from None


def _config(body: dict[str, Any], base: FunctionConfig) -> FunctionConfig:
    """``base`` with the settings a CreateFunction or UpdateFunctionConfiguration body gives."""
    runtime = _text(body, "Runtime")
    if runtime is not None and not runtime.startswith("python") and runtime not in NODE_RUNTIMES:
        raise InvalidParameterError(
            f"Runtime {runtime} is not one Perdure runs: deploy Python handlers (python3.13, python3.14) "
            f"or Node.js ones ({', '.join(NODE_RUNTIMES)})."
        )
    handler = _text(body, "Handler")
    if handler is not None and "." not in handler:
        raise InvalidParameterError(f"Handler must be module.function, not {handler!r}: for example handler.process_order.")
    durable = body.get("DurableConfig") or {}
    if not isinstance(durable, dict):
        raise InvalidParameterError("DurableConfig must be an object.")
    changes: dict[str, Any] = {
        "handler": handler_of_lambda(handler, runtime or base.runtime) if handler else None,
        "runtime": runtime,
        "timeout_seconds": _seconds(body, "Timeout"),
        "memory_mb": _seconds(body, "MemorySize"),
        "execution_timeout_seconds": _seconds(durable, "ExecutionTimeout"),
        "retention_days": _seconds(durable, "RetentionPeriodInDays"),
    }
    return dataclasses.replace(base, **{key: value for key, value in changes.items() if value is not None})


def _checked_bundle(data: bytes, config: FunctionConfig) -> tuple[Bundle, FunctionConfig]:
    """The uploaded zip as a bundle, once its handler is known to be in it; ``config`` with a Node handler's file found."""
    bundle = repack_zip(data)
    file = config.handler.rpartition(":")[0]
    members = member_names(bundle)
    if is_node(config.runtime):
        stem, attribute = file.rpartition(".")[0], config.handler.rpartition(":")[2]
        found = next((stem + extension for extension in NODE_EXTENSIONS if stem + extension in members), file)
        file, config = found, dataclasses.replace(config, handler=f"{found}:{attribute}")
    if file not in members:
        raise InvalidParameterError(
            f"The Handler {config.lambda_handler!r} needs the file {file} in the zip, which it does not hold. "
            "Zip the folder's contents (not the folder itself), or fix Handler."
        )
    return bundle, config


@dataclass
class FunctionRoutes:
    """Deploy endpoints over one service and the registry of the server they change."""

    service: DurableService
    registry: Registry

    def routes(self) -> list[Route]:
        function = f"{FUNCTIONS}/{{function}}"
        aliases = f"{function}/aliases"
        return [
            Route("POST", FUNCTIONS, self.create_function),
            Route("GET", function, self.get_function),
            Route("DELETE", function, self.delete_function),
            Route("PUT", f"{function}/code", self.update_code),
            Route("PUT", f"{function}/configuration", self.update_configuration),
            Route("POST", f"{function}/versions", self.publish_version),
            Route("GET", f"{function}/versions", self.list_versions),
            Route("POST", aliases, self.create_alias),
            Route("GET", aliases, self.list_aliases),
            Route("GET", f"{aliases}/{{alias}}", self.get_alias),
            Route("PUT", f"{aliases}/{{alias}}", self.update_alias),
            Route("DELETE", f"{aliases}/{{alias}}", self.delete_alias),
        ]

    @property
    def _code(self) -> CodeVersions:
        code = self.registry.code
        if code is None:
            raise InvalidParameterError("This server keeps no code versions, so code cannot be deployed to it.")
        return code

    def _configuration(self, version: FunctionVersion, qualifier: str) -> dict[str, Any]:
        config = version.config
        wire: dict[str, Any] = {
            "FunctionName": version.function_name,
            "FunctionArn": self.service.function_arn(version.function_name, qualifier),
            "Handler": config.lambda_handler,
            **config.lambda_settings(),
            "CodeSha256": base64.b64encode(bytes.fromhex(version.code_key)).decode(),
            "Version": qualifier if qualifier == LATEST else str(version.version),
            "LastModified": datetime.datetime.fromtimestamp(version.created_time, datetime.UTC).isoformat(),
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
        }
        if config.runtime:
            wire["Runtime"] = config.runtime
        return wire

    def _alias(self, alias: Alias) -> dict[str, Any]:
        return {
            "AliasArn": self.service.function_arn(alias.function_name, alias.name),
            "Name": alias.name,
            "FunctionVersion": str(alias.version),
        }

    async def _latest(self, function_name: str) -> FunctionVersion:
        version = await run_in_threadpool(self.service.get_version, function_name, LATEST)
        if version is None:
            raise FunctionNotFoundError(function_name, [spec.name for spec in self.registry])
        return version

    async def _deploy(self, function_name: str, data: bytes, config: FunctionConfig) -> FunctionVersion:
        bundle, config = await run_in_threadpool(_checked_bundle, data, config)
        version, spec = await run_in_threadpool(self._code.publish_bundle, function_name, bundle, config)
        self.registry.install(spec)
        return version

    async def create_function(self, request: Request, params: dict[str, str]) -> Response:
        body = await json_body(request)
        name = _text(body, "FunctionName", required=True) or ""
        if not NAME.fullmatch(name):
            raise InvalidParameterError(f"Invalid FunctionName {name!r}: use {NAME_RULE}.")
        _text(body, "Handler", required=True)
        config = _config(body, FunctionConfig(handler="", timeout_seconds=DEFAULT_TIMEOUT_SECONDS))
        if await run_in_threadpool(self.service.get_version, name, LATEST) is not None:
            raise FunctionExistsError(name)
        code = body.get("Code")
        if not isinstance(code, dict):
            raise InvalidParameterError("Code is required: {\"ZipFile\": the zip's bytes, base64-encoded}.")
        version = await self._deploy(name, _zip(code), config)
        return json_response(self._configuration(version, LATEST), status=201)

    async def update_code(self, request: Request, params: dict[str, str]) -> Response:
        """UpdateFunctionCode; unlike Lambda's it also takes UpdateFunctionConfiguration's settings,
        so that code and settings that change together make one version (``perdure deploy``)."""
        name = params["function"]
        latest = await self._latest(name)
        body = await json_body(request)
        version = await self._deploy(name, _zip(body), _config(body, latest.config))
        return json_response(self._configuration(version, LATEST))

    async def update_configuration(self, request: Request, params: dict[str, str]) -> Response:
        """UpdateFunctionConfiguration: the newest code with these settings is a version (made if new)."""
        name = params["function"]
        latest = await self._latest(name)
        config = _config(await json_body(request), latest.config)
        code = await run_in_threadpool(self.service.version_code, latest)
        version = await self._deploy(name, code, config)
        return json_response(self._configuration(version, LATEST))

    async def publish_version(self, request: Request, params: dict[str, str]) -> Response:
        version = await self._latest(params["function"])
        return json_response(self._configuration(version, str(version.version)), status=201)

    async def list_versions(self, request: Request, params: dict[str, str]) -> Response:
        latest = await self._latest(params["function"])
        published = await run_in_threadpool(self.service.list_versions, params["function"])
        wires = [self._configuration(latest, LATEST), *(self._configuration(v, str(v.version)) for v in published)]
        return json_response({"Versions": wires})

    async def get_function(self, request: Request, params: dict[str, str]) -> Response:
        name = params["function"]
        qualifier = request.query_params.get("Qualifier", LATEST)
        check_qualifier(qualifier)
        version = await run_in_threadpool(self.service.get_version, name, qualifier)
        if version is None:
            raise FunctionNotFoundError(name, [spec.name for spec in self.registry])
        return json_response({"Configuration": self._configuration(version, qualifier), "Code": {"RepositoryType": "S3"}})

    async def delete_function(self, request: Request, params: dict[str, str]) -> Response:
        name = params["function"]
        qualifier = request.query_params.get("Qualifier")
        if qualifier is not None and not qualifier.isdigit():
            raise InvalidParameterError(f"Qualifier {qualifier!r} is not a version number: delete an alias with DeleteAlias.")
        await self._latest(name)
        await run_in_threadpool(self.service.delete_function, name, int(qualifier) if qualifier else None)
        if qualifier is None:
            self.registry.remove(name)
        return Response(status_code=204)

    async def _put_alias(self, name: str, alias: str, body: dict[str, Any]) -> Alias:
        version = _text(body, "FunctionVersion", required=True) or ""
        if not version.isdigit():
            raise InvalidParameterError(f"FunctionVersion must be a version number, not {version!r}.")
        return await run_in_threadpool(self.service.put_alias, name, alias, int(version))

    async def create_alias(self, request: Request, params: dict[str, str]) -> Response:
        body = await json_body(request)
        name = _text(body, "Name", required=True) or ""
        if any(alias.name == name for alias in await run_in_threadpool(self.service.list_aliases, params["function"])):
            raise ConflictError(f"Alias already exists: {params['function']}:{name}. Move it with UpdateAlias.")
        alias = await self._put_alias(params["function"], name, body)
        return json_response(self._alias(alias), status=201)

    async def update_alias(self, request: Request, params: dict[str, str]) -> Response:
        await run_in_threadpool(self.service.get_alias, params["function"], params["alias"])
        alias = await self._put_alias(params["function"], params["alias"], await json_body(request))
        return json_response(self._alias(alias))

    async def get_alias(self, request: Request, params: dict[str, str]) -> Response:
        alias = await run_in_threadpool(self.service.get_alias, params["function"], params["alias"])
        return json_response(self._alias(alias))

    async def list_aliases(self, request: Request, params: dict[str, str]) -> Response:
        aliases = await run_in_threadpool(self.service.list_aliases, params["function"])
        return json_response({"Aliases": [self._alias(alias) for alias in aliases]})

    async def delete_alias(self, request: Request, params: dict[str, str]) -> Response:
        await run_in_threadpool(self.service.delete_alias, params["function"], params["alias"])
        return Response(status_code=204)
