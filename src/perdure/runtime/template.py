"""Reads the durable functions that a SAM or CloudFormation template declares."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from perdure.errors import InvalidParameterError
from perdure.protocol.destinations import EventInvokeConfig, parse_destination
from perdure.protocol.function_urls import FunctionUrl
from perdure.protocol.limits import FunctionLimits, Rate, check_count, parse_rate
from perdure.protocol.versions import DEFAULT_TIMEOUT_SECONDS, LATEST
from perdure.runtime.destinations import Destinations
from perdure.runtime.node_binary import NODE_RUNTIMES, is_node_runtime
from perdure.runtime.node_template import node_handler
from perdure.runtime.registry import CheckpointBucket, FunctionSpec
from perdure.runtime.template_events import schedule_events
from perdure.service.validation import NAME, NAME_RULE

_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# CloudFormation's resource for what SAM's EventInvokeConfig property writes.
_INVOKE_CONFIG_TYPE = "AWS::Lambda::EventInvokeConfig"
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_BUCKET_ARN = re.compile(r"arn:[a-z0-9-]+:s3:::(?P<name>[a-z0-9][a-z0-9.-]*)")
# What to write instead of an intrinsic that has no local value, by property.
_EXAMPLES = {
    "Handler": "handler.process_order",
    "CodeUri": "./src",
    "Code": "./src",
    "Runtime": "python3.13",
    "Timeout": "900",
    "MemorySize": "256",
    "Enabled": "true",
    "MaxSuspensionSeconds": "86400",
    "ExecutionTimeout": "86400",
    "RetentionPeriodInDays": "30",
    "BucketArn": "!GetAtt CheckpointBucket.Arn",
    "ExpirationInDays": "30",
    "Status": "Enabled",
    "Destination": "!GetAtt NotifyFailure.Arn",
    "MaximumEventAgeInSeconds": "3600",
    "MaximumRetryAttempts": "2",
    "FunctionName": "!Ref OrderProcessor",
    "Qualifier": "$LATEST",
    "AuthType": "NONE",
    "InvokeMode": "BUFFERED",
    "ReservedConcurrentExecutions": "10",
    "TenantConcurrency": "2",
    "RateLimit": "50/minute",
    "TenantRateLimit": "5/second",
}
# Perdure's own settings of a function, in its resource's Metadata (which CloudFormation and SAM
# keep as they are, so the template still deploys to AWS): limits Lambda has no property for.
_PERDURE_SETTINGS = ("TenantConcurrency", "RateLimit", "TenantRateLimit")


@dataclass(frozen=True)
class TemplateFunctions:
    """The durable functions of a template, and a sentence for each function left out."""

    functions: list[FunctionSpec]
    skipped: list[str]


class _TemplateLoader(yaml.SafeLoader):
    """A safe YAML loader that also reads CloudFormation's short-form intrinsics, and keeps the
    line of each mapping's keys (by the mapping's ``id``), so that errors can name it."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[int, dict[str, int]] = {}


def _construct_located_mapping(loader: _TemplateLoader, node: yaml.MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data
    data.update(loader.construct_mapping(node))
    loader.lines[id(data)] = {str(key.value): key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)}


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    """Builds the long form of a short-form intrinsic, such as ``{"Fn::GetAtt": [X, Arn]}``."""
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    argument: Any
    if isinstance(node, yaml.ScalarNode):
        argument = loader.construct_scalar(node)
        if suffix == "GetAtt":
            argument = argument.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        argument = loader.construct_sequence(node, deep=True)
    else:
        argument = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: argument}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)
_TemplateLoader.add_constructor("tag:yaml.org,2002:map", _construct_located_mapping)


def load_template(path: Path) -> TemplateFunctions:
    """Returns a spec for each durable function in the template at ``path``."""
    template = _Template(path)
    functions: list[FunctionSpec] = []
    skipped: list[str] = []
    for logical_id, resource in template.resources.items():
        if isinstance(resource, dict) and resource.get("Type") in _FUNCTION_TYPES:
            result = template.function(logical_id, resource)
            if isinstance(result, str):
                skipped.append(result)
            else:
                functions.append(result)
    for logical_id, resource in template.resources.items():
        if isinstance(resource, dict) and resource.get("Type") == _INVOKE_CONFIG_TYPE:
            functions = template.invoke_config_resource(logical_id, resource, functions)
    return TemplateFunctions(functions, skipped + template.notes)


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or str(next(iter(value))).startswith("Fn::"))
    )


def _short_form(value: dict[str, Any]) -> str:
    """Renders an intrinsic as a user would write it, for messages: ``!Ref AWS::Region``."""
    ((name, argument),) = value.items()
    tag = "!" + name.removeprefix("Fn::")
    return f"{tag} {argument}" if isinstance(argument, str) else tag


class _Template:
    """A parsed template, resolving the values Perdure needs from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidParameterError(
                f"The template {path} cannot be read ({error.strerror}); check the path and its permissions."
            ) from error
        loader = _TemplateLoader(text)
        try:
            document = loader.get_single_data()
        except yaml.YAMLError as error:
            raise InvalidParameterError(
                f"The template {path} is not valid YAML or JSON; fix this and try again: {error}"
            ) from error
        finally:
            loader.dispose()
        self.lines = loader.lines
        # What the template declares that is not applied, a sentence each (see ``template_events``).
        self.notes: list[str] = []
        resources = document.get("Resources") if isinstance(document, dict) else None
        if not isinstance(resources, dict):
            raise InvalidParameterError(
                f"The template {path} has no Resources section; pass a SAM or CloudFormation "
                "template that declares your functions."
            )
        self.resources: dict[str, Any] = resources
        parameters = document.get("Parameters")
        self.defaults = {
            name: parameter["Default"]
            for name, parameter in (parameters.items() if isinstance(parameters, dict) else [])
            if isinstance(parameter, dict) and "Default" in parameter
        }
        globals_section = document.get("Globals")
        function_globals = globals_section.get("Function") if isinstance(globals_section, dict) else None
        self.function_globals: dict[str, Any] = function_globals if isinstance(function_globals, dict) else {}

    def line(self, mapping: dict[str, Any], key: str) -> int | None:
        """The line of ``key`` in ``mapping`` (a mapping this template holds), if known."""
        return self.lines.get(id(mapping), {}).get(key)

    def error(self, logical_id: str, text: str) -> InvalidParameterError:
        return InvalidParameterError(f"{self.path}: Resource {logical_id}: {text}")

    def function(self, logical_id: str, resource: dict[str, Any]) -> FunctionSpec | str:
        """Returns the function's spec, or a sentence saying why it is not registered."""
        serverless = resource["Type"] == "AWS::Serverless::Function"
        properties = self.mapping(logical_id, "Properties", resource.get("Properties"))
        if serverless:
            # SAM applies Globals to serverless functions only, and a function's own value wins.
            properties = {**self.function_globals, **properties}
        seed_config = self.mapping(logical_id, "DurableFunction", properties.get("DurableFunction"))
        aws_config = self.mapping(logical_id, "DurableConfig", properties.get("DurableConfig"))
        enabled = self.boolean(logical_id, "DurableFunction.Enabled", seed_config.get("Enabled", True))
        not_registered = f"{self.path}: Resource {logical_id} is not registered because"
        if "DurableConfig" not in properties and "DurableFunction" not in properties:
            return (
                f"{not_registered} it has no DurableConfig or DurableFunction section; add "
                "DurableConfig with an ExecutionTimeout to run it as a durable function."
            )
        if "DurableConfig" not in properties and not enabled:
            return f"{not_registered} DurableFunction.Enabled is false; set it to true to run it as a durable function."
        runtime = self.plain(logical_id, "Runtime", properties.get("Runtime"))
        if runtime is not None and not str(runtime).startswith("python") and runtime not in NODE_RUNTIMES:
            runtimes = ", ".join(NODE_RUNTIMES)
            return f"{not_registered} its Runtime is {runtime}; Perdure runs Python handlers and Node.js ones ({runtimes})."

        file, attribute, code_dir = self.handler(logical_id, serverless, properties, runtime, resource.get("Metadata"))
        timeout = self.positive_int(logical_id, "Timeout", properties.get("Timeout"), "seconds")
        execution_timeout = self.positive_int(
            logical_id, "DurableConfig.ExecutionTimeout", aws_config.get("ExecutionTimeout"), "seconds"
        ) or self.positive_int(
            logical_id, "DurableFunction.MaxSuspensionSeconds", seed_config.get("MaxSuspensionSeconds"), "seconds"
        )
        storage = self.mapping(logical_id, "DurableFunction.CheckpointStorage", seed_config.get("CheckpointStorage"))
        # The bucket is read even when RetentionPeriodInDays wins, for its name and to check it.
        bucket_days = self.bucket_retention(logical_id, storage.get("BucketArn"))
        retention = (
            self.positive_int(
                logical_id, "DurableConfig.RetentionPeriodInDays", aws_config.get("RetentionPeriodInDays"), "days"
            )
            or bucket_days
        )
        return FunctionSpec(
            name=self.function_name(logical_id, properties.get("FunctionName")),
            file=file,
            attribute=attribute,
            timeout_seconds=timeout or DEFAULT_TIMEOUT_SECONDS,
            memory_mb=self.positive_int(logical_id, "MemorySize", properties.get("MemorySize"), "megabytes"),
            execution_timeout_seconds=execution_timeout,
            retention_days=retention,
            checkpoint_bucket=self.checkpoint_bucket(logical_id, storage),
            code_dir=code_dir,
            auto_publish_alias=self.alias(logical_id, properties.get("AutoPublishAlias")),
            schedules=schedule_events(self, logical_id, properties, self.notes),
            destinations=self.destinations(
                logical_id, "EventInvokeConfig.", self.mapping(logical_id, "EventInvokeConfig", properties.get("EventInvokeConfig"))
            ),
            function_url=self.function_url(logical_id, properties),
            limits=self.limits(logical_id, properties, resource.get("Metadata")),
            runtime=runtime if is_node_runtime(runtime) else None,
        )

    def destinations(self, logical_id: str, prefix: str, settings: dict[str, Any]) -> Destinations | None:
        """SAM's EventInvokeConfig (or an EventInvokeConfig resource's properties): the functions that
        ended executions start. ``prefix`` is where ``settings`` are in the resource, for messages."""
        if not settings:
            return None
        targets = self.mapping(logical_id, f"{prefix}DestinationConfig", settings.get("DestinationConfig"))
        found: dict[str, str | None] = {"OnSuccess": None, "OnFailure": None}
        for kind in found:
            prop = f"{prefix}DestinationConfig.{kind}"
            entry = self.mapping(logical_id, prop, targets.get(kind))
            if not entry:
                continue
            kind_type = self.plain(logical_id, f"{prop}.Type", entry.get("Type", "Lambda"))
            if kind_type != "Lambda":
                raise self.error(
                    logical_id,
                    f"{prop}.Type is {kind_type}, but Perdure sends an execution's end to another function it "
                    "runs: write Type: Lambda and a Destination such as !GetAtt NotifyFailure.Arn.",
                )
            found[kind] = self.destination(logical_id, f"{prop}.Destination", entry.get("Destination"))
        attempts_prop, age_prop = f"{prefix}MaximumRetryAttempts", f"{prefix}MaximumEventAgeInSeconds"
        attempts = self.plain(logical_id, attempts_prop, settings.get("MaximumRetryAttempts"))
        try:
            config = EventInvokeConfig(
                on_success=found["OnSuccess"],
                on_failure=found["OnFailure"],
                # 0 is allowed here (no retries), which positive_int refuses.
                maximum_retry_attempts=0
                if attempts in (0, "0")
                else self.positive_int(logical_id, attempts_prop, attempts, "attempts"),
                maximum_event_age_seconds=self.positive_int(
                    logical_id, age_prop, settings.get("MaximumEventAgeInSeconds"), "seconds"
                ),
            )
        except InvalidParameterError as error:
            raise self.error(logical_id, error.message) from None
        where = f"{self.path}: Resource {logical_id}: {prefix}DestinationConfig"
        return Destinations(config, f"{where}.OnSuccess.Destination", f"{where}.OnFailure.Destination")

    def destination(self, logical_id: str, prop: str, value: Any) -> str:
        """A destination's function: ``!GetAtt F.Arn`` or ``!Ref F`` of a function here, a name, or a function ARN."""
        reference = self.bucket_reference(value)
        if reference is not None:
            target, attribute = reference
            resource = self.resources.get(target)
            if not isinstance(resource, dict) or resource.get("Type") not in _FUNCTION_TYPES or attribute != "Arn":
                raise self.error(
                    logical_id,
                    f"{prop} refers to {target}.{attribute}, which is not the ARN of a function in this template. "
                    "Write !GetAtt F.Arn or !Ref F, where F is a function of this template, or the function's name.",
                )
            properties = self.mapping(target, "Properties", resource.get("Properties"))
            return self.function_name(target, properties.get("FunctionName"))
        try:
            return parse_destination(self.plain(logical_id, prop, value), prop)
        except InvalidParameterError as error:
            raise self.error(logical_id, error.message) from None

    def invoke_config_resource(
        self, logical_id: str, resource: dict[str, Any], functions: list[FunctionSpec]
    ) -> list[FunctionSpec]:
        """``functions``, the one an AWS::Lambda::EventInvokeConfig resource names given its destinations."""
        properties = self.mapping(logical_id, "Properties", resource.get("Properties"))
        qualifier = self.plain(logical_id, "Qualifier", properties.get("Qualifier", LATEST))
        if qualifier != LATEST:
            raise self.error(
                logical_id,
                f"Qualifier is {qualifier!r}: a template sets the destinations of a function's $LATEST, which apply "
                "to all its executions. Write Qualifier: $LATEST, or set a version's with PutFunctionEventInvokeConfig.",
            )
        name = self.destination(logical_id, "FunctionName", properties.get("FunctionName"))
        named = [spec for spec in functions if spec.name == name]
        if not named:
            raise self.error(logical_id, f"FunctionName names {name!r}, which is not a durable function of this template.")
        if named[0].destinations is not None:
            raise self.error(
                logical_id, f"{name} has its destinations set twice, here and in its own EventInvokeConfig: keep one."
            )
        destinations = self.destinations(logical_id, "", properties)
        return [dataclasses.replace(spec, destinations=destinations) if spec.name == name else spec for spec in functions]

    def limits(self, logical_id: str, properties: dict[str, Any], metadata: Any) -> FunctionLimits:
        """ReservedConcurrentExecutions, and Perdure's limits from ``Metadata: {Perdure: {...}}``."""
        perdure = self.mapping(logical_id, "Metadata", metadata).get("Perdure")
        perdure = self.mapping(logical_id, "Metadata.Perdure", perdure)
        unknown = sorted(set(perdure) - set(_PERDURE_SETTINGS))
        if unknown:
            raise self.error(
                logical_id,
                f"Metadata.Perdure.{unknown[0]} is not a Perdure setting; use {', '.join(_PERDURE_SETTINGS[:-1])} "
                f"or {_PERDURE_SETTINGS[-1]}.",
            )
        reserved = properties.get("ReservedConcurrentExecutions")
        return FunctionLimits(
            concurrency=self.count(logical_id, "ReservedConcurrentExecutions", reserved, 0),
            tenant_concurrency=self.count(logical_id, "Metadata.Perdure.TenantConcurrency", perdure.get("TenantConcurrency"), 1),
            rate=self.rate(logical_id, "Metadata.Perdure.RateLimit", perdure.get("RateLimit")),
            tenant_rate=self.rate(logical_id, "Metadata.Perdure.TenantRateLimit", perdure.get("TenantRateLimit")),
        )

    def count(self, logical_id: str, prop: str, value: Any, minimum: int) -> int | None:
        value = self.plain(logical_id, prop, value)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        try:
            return check_count(value, minimum)
        except ValueError as error:
            example = f"{prop.rpartition('.')[2]}: {_EXAMPLES[prop.rpartition('.')[2]]}"
            raise self.error(logical_id, f"{prop} {error}. Write, for example, {example}.") from None

    def rate(self, logical_id: str, prop: str, value: Any) -> Rate | None:
        value = self.plain(logical_id, prop, value)
        if value is None:
            return None
        try:
            return parse_rate(value)
        except ValueError as error:
            raise self.error(logical_id, f"{prop} {error}.") from None

    def alias(self, logical_id: str, value: Any) -> str | None:
        """AutoPublishAlias: the alias SAM points at each version it publishes."""
        alias = self.plain(logical_id, "AutoPublishAlias", value)
        if alias is not None and not isinstance(alias, str):
            raise self.error(logical_id, f"AutoPublishAlias must be an alias name, such as live, not {alias!r}.")
        return alias

    def function_url(self, logical_id: str, properties: dict[str, Any]) -> FunctionUrl | None:
        """FunctionUrlConfig: a URL that starts an execution (``perdure.api.function_urls``)."""
        if "FunctionUrlConfig" not in properties:
            return None
        config = self.mapping(logical_id, "FunctionUrlConfig", properties["FunctionUrlConfig"])
        settings = {key: self.plain(logical_id, f"FunctionUrlConfig.{key}", value) for key, value in config.items()}
        try:
            return FunctionUrl.from_settings(settings)
        except InvalidParameterError as error:
            raise self.error(logical_id, error.message) from None

    def function_name(self, logical_id: str, value: Any) -> str:
        # A computed FunctionName (usually !Sub with the stack name) has no local value, so the
        # logical ID, which is unique in the template, names the function instead.
        if not isinstance(value, str):
            return logical_id
        if not NAME.fullmatch(value):
            raise self.error(
                logical_id,
                f"FunctionName {value!r} is not a valid function name. Use {NAME_RULE}.",
            )
        return value

    def handler(
        self, logical_id: str, serverless: bool, properties: dict[str, Any], runtime: str | None, metadata: Any
    ) -> tuple[Path, str, Path]:
        """Finds the handler's file, attribute and code folder from Handler and CodeUri (or Code)."""
        handler = self.plain(logical_id, "Handler", properties.get("Handler"))
        if handler is None:
            raise self.error(
                logical_id,
                "Handler is missing. Add Handler: module.function, for example Handler: handler.process_order.",
            )
        if is_node_runtime(runtime):
            folder = self.code_folder(logical_id, serverless, properties)
            found = node_handler(
                self.path, logical_id, str(handler), folder, self.mapping(logical_id, "Metadata", metadata),
                lambda text: self.error(logical_id, text),
            )  # fmt: skip
            return found.file, found.attribute, found.code_dir
        module, _, attribute = str(handler).rpartition(".")
        if not module or not attribute.isidentifier():
            raise self.error(
                logical_id,
                f"Handler must be module.function, not {handler!r}. For example, "
                "Handler: handler.process_order runs process_order from handler.py.",
            )
        key = "CodeUri" if serverless else "Code"
        code_dir = self.code_folder(logical_id, serverless, properties)
        file = code_dir / (module.replace(".", "/") + ".py")
        if not file.is_file():
            raise self.error(
                logical_id,
                f"Handler {handler!r} needs the file {file}, which does not exist. "
                f"Check Handler and {key}, or create the file.",
            )
        return file, attribute, code_dir

    def code_folder(self, logical_id: str, serverless: bool, properties: dict[str, Any]) -> Path:
        """The folder CodeUri (or Code) names, relative to the template."""
        key = "CodeUri" if serverless else "Code"
        folder = self.plain(logical_id, key, properties.get(key, "."))
        if not isinstance(folder, str) or "://" in folder:
            shown = f"a mapping of {', '.join(folder)}" if isinstance(folder, dict) else repr(folder)
            raise self.error(
                logical_id,
                f"{key} is {shown}, but Perdure loads handlers from local files. Write {key}: ./src, "
                "the folder (relative to the template) that holds the handler's module.",
            )
        return (self.path.parent / folder).resolve()

    def bucket_retention(self, logical_id: str, arn: Any) -> int | None:
        """Returns the retention the checkpoint bucket's lifecycle rules give, if it is in the template."""
        prop = "DurableFunction.CheckpointStorage.BucketArn"
        reference = self.bucket_reference(arn)
        if reference is None:
            # Checked so that an intrinsic Perdure cannot follow is refused, not silently ignored.
            self.plain(logical_id, prop, arn)
            return None
        target, attribute = reference
        bucket: Any = self.resources.get(target)
        kind = bucket.get("Type") if isinstance(bucket, dict) else None
        if kind != "AWS::S3::Bucket" or attribute != "Arn":
            if kind is None:
                problem = f"{target} is not a resource in this template"
            elif kind != "AWS::S3::Bucket":
                problem = f"{target} is a resource of type {kind}, not an AWS::S3::Bucket"
            else:
                problem = f"{attribute} is not the bucket's ARN"
            raise self.error(
                logical_id,
                f"{prop} refers to {target}.{attribute}, but {problem}. Point it at the "
                "checkpoint bucket with !GetAtt CheckpointBucket.Arn, where CheckpointBucket is an "
                "AWS::S3::Bucket in this template, or write the bucket's ARN as a plain string.",
            )
        return self.lifecycle_expiry(target, bucket)

    def checkpoint_bucket(self, logical_id: str, storage: dict[str, Any]) -> CheckpointBucket | None:
        """Returns the S3 bucket that CheckpointStorage names, with its name if it has one here."""
        kind = self.plain(logical_id, "DurableFunction.CheckpointStorage.Type", storage.get("Type", "S3"))
        arn = storage.get("BucketArn")
        if arn is None or str(kind).upper() != "S3":
            return None
        reference = self.bucket_reference(arn)
        if reference is None:
            text = str(self.plain(logical_id, "DurableFunction.CheckpointStorage.BucketArn", arn))
            match = _BUCKET_ARN.fullmatch(text)
            if match is None:
                raise self.error(
                    logical_id,
                    f"DurableFunction.CheckpointStorage.BucketArn must be an S3 bucket ARN, such as "
                    f"arn:aws:s3:::my-checkpoints, or !GetAtt CheckpointBucket.Arn, not {text!r}.",
                )
            return CheckpointBucket(text, match["name"])
        target = reference[0]
        properties = self.mapping(target, "Properties", self.resources[target].get("Properties"))
        try:
            name = self.plain(target, "BucketName", properties.get("BucketName"))
        except InvalidParameterError:
            # A computed name (!Sub with the stack name, say) has no value here: as if unnamed.
            name = None
        return CheckpointBucket(target, str(name) if name else None)

    def bucket_reference(self, arn: Any) -> tuple[str, str] | None:
        """Returns the resource and attribute that a !GetAtt, or a !Ref to a resource, points at."""
        if not _is_intrinsic(arn):
            return None
        if isinstance(arn.get("Ref"), str) and arn["Ref"] not in self.defaults:
            return arn["Ref"], "Arn"
        argument = arn.get("Fn::GetAtt")
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if isinstance(argument, list) and len(argument) == 2:
            return str(argument[0]), str(argument[1])
        return None

    def lifecycle_expiry(self, bucket_id: str, bucket: dict[str, Any]) -> int | None:
        """Returns the shortest expiry among the bucket's enabled lifecycle rules."""
        properties = self.mapping(bucket_id, "Properties", bucket.get("Properties"))
        lifecycle = self.mapping(bucket_id, "LifecycleConfiguration", properties.get("LifecycleConfiguration"))
        rules = self.plain(bucket_id, "LifecycleConfiguration.Rules", lifecycle.get("Rules", []))
        if not isinstance(rules, list):
            raise self.error(
                bucket_id,
                f"LifecycleConfiguration.Rules must be a list of rules, not {rules!r}. Write each rule "
                "as a list item, for example - {ExpirationInDays: 30, Status: Enabled}.",
            )
        days = [
            self.positive_int(bucket_id, "ExpirationInDays", rule.get("ExpirationInDays"), "days")
            for rule in rules
            if isinstance(rule, dict) and self.plain(bucket_id, "Status", rule.get("Status")) == "Enabled"
        ]
        # Checkpoints disappear at the earliest expiry, so that is the retention the bucket gives.
        return min((day for day in days if day is not None), default=None)

    def mapping(self, logical_id: str, prop: str, value: Any) -> dict[str, Any]:
        value = self.plain(logical_id, prop, value)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(
                logical_id,
                f"{prop} must be a mapping of settings, not {value!r}. Write its settings on indented lines under it.",
            )
        return value

    def boolean(self, logical_id: str, prop: str, value: Any) -> bool:
        value = self.plain(logical_id, prop, value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(
                logical_id, f"{prop} must be true or false, not {value!r}. Write, for example, Enabled: true."
            )
        return value

    def positive_int(self, logical_id: str, prop: str, value: Any, unit: str) -> int | None:
        value = self.plain(logical_id, prop, value)
        if value is None:
            return None
        # ASCII digits alone: str.isdigit also takes '²', which int() refuses, and '٣', which it reads as 3.
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        example = f"{prop.rpartition('.')[2]}: {_EXAMPLES[prop.rpartition('.')[2]]}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(
                logical_id, f"{prop} must be a whole number of {unit}, not {value!r}. Write, for example, {example}."
            )
        if value < 1:
            raise self.error(logical_id, f"{prop} must be at least 1, not {value}. Write, for example, {example}.")
        return value

    def plain(self, logical_id: str, prop: str, value: Any) -> Any:
        """Returns the value with the intrinsics that have a local equivalent resolved."""
        if not _is_intrinsic(value):
            return value
        if value.get("Ref") in self.defaults:
            return self.defaults[value["Ref"]]
        if "Fn::Sub" in value:
            return self.substitute(logical_id, prop, value)
        raise self.unresolvable(logical_id, prop, _short_form(value))

    def substitute(self, logical_id: str, prop: str, value: dict[str, Any]) -> str:
        """Fills in a !Sub from its own variables and the template's parameter defaults."""
        argument = value["Fn::Sub"]
        text, variables = argument if isinstance(argument, list) and len(argument) == 2 else (argument, {})
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise self.unresolvable(logical_id, prop, "!Sub")

        def fill(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.plain(logical_id, prop, variables[name]))
            if name in self.defaults:
                return str(self.defaults[name])
            raise self.unresolvable(logical_id, prop, f"!Sub with ${{{name}}}")

        return _SUB_VARIABLE.sub(fill, text)

    def unresolvable(self, logical_id: str, prop: str, what: str) -> InvalidParameterError:
        example = _EXAMPLES.get(prop.rpartition(".")[2])
        instead = f"for example {prop.rpartition('.')[2]}: {example}" if example else "written out in full"
        return self.error(
            logical_id,
            f"{prop} uses {what}, which has no value outside CloudFormation. Write a plain value instead, {instead}.",
        )
