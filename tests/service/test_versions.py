"""Function versions in the service: published once per code and configuration, pinned by executions."""

from __future__ import annotations

import uuid

import pytest

from perdure.errors import BlobNotFoundError, InvalidParameterError
from perdure.protocol.records import OperationUpdate
from perdure.protocol.versions import Alias, FunctionConfig
from perdure.service.executions import DurableService, StartRequest
from perdure.service.versions import VersionNotFoundError
from perdure.testing import SkippableClock


def name() -> str:
    # The PostgreSQL test database keeps versions between tests.
    return f"fn-{uuid.uuid4().hex[:12]}"


CONFIG = FunctionConfig("app.py:handler", timeout_seconds=60, execution_timeout_seconds=3600, retention_days=7)


def test_the_same_code_and_configuration_make_one_version_anything_else_the_next(service: DurableService) -> None:
    fn = name()
    first = service.publish_version(fn, b"code one", CONFIG)
    assert first.version == 1
    assert service.publish_version(fn, b"code one", CONFIG) == first
    assert service.publish_version(fn, b"code two", CONFIG).version == 2
    assert service.publish_version(fn, b"code one", FunctionConfig("app.py:handler", timeout_seconds=61)).version == 3
    assert [v.version for v in service.list_versions(fn)] == [1, 2, 3]
    assert service.version_code(service.get_version(fn, "2")) == b"code two"  # type: ignore[arg-type]


def test_an_execution_runs_the_version_its_qualifier_named_when_it_started(service: DurableService) -> None:
    fn = name()
    service.publish_version(fn, b"v1", CONFIG)
    service.publish_version(fn, b"v2", FunctionConfig("app.py:handler", execution_timeout_seconds=60))
    service.put_alias(fn, "live", 1)

    latest = service.start_execution(StartRequest(fn)).execution
    by_number = service.start_execution(StartRequest(fn, qualifier="1")).execution
    by_alias = service.start_execution(StartRequest(fn, qualifier="live")).execution
    assert (latest.function_version, by_number.function_version, by_alias.function_version) == (2, 1, 1)
    assert latest.to_wire()["Version"] == "2" and ":live/durable-execution/" in by_alias.arn
    # Each has its own version's settings.
    assert (latest.timeout_seconds, by_number.timeout_seconds, by_number.retention_days) == (60, 3600, 7)
    # An alias moved later does not move what already started.
    service.put_alias(fn, "live", 2)
    assert service.get_execution(by_alias.arn).function_version == 1


def test_an_unknown_qualifier_is_not_found_and_starts_nothing(service: DurableService) -> None:
    fn = name()
    service.publish_version(fn, b"v1", CONFIG)
    for qualifier in ("banana", "7"):
        with pytest.raises(VersionNotFoundError, match=f"{fn} has no version or alias '{qualifier}'; its versions and aliases: 1"):
            service.start_execution(StartRequest(fn, qualifier=qualifier))
    # A function without versions has only $LATEST too.
    with pytest.raises(VersionNotFoundError):
        service.start_execution(StartRequest(name(), qualifier="banana"))
    assert service.start_execution(StartRequest(name())).execution.function_version is None


def test_aliases_name_existing_versions_with_lambdas_names(service: DurableService) -> None:
    fn = name()
    service.publish_version(fn, b"v1", CONFIG)
    with pytest.raises(VersionNotFoundError):
        service.put_alias(fn, "live", 2)
    for bad in ("123", "has space", "x" * 129):
        with pytest.raises(InvalidParameterError, match="Invalid alias name"):
            service.put_alias(fn, bad, 1)
    assert service.put_alias(fn, "live", 1) == Alias(fn, "live", 1)
    assert service.list_aliases(fn) == [Alias(fn, "live", 1)]


def test_publishing_an_earlier_versions_code_again_rolls_latest_back_to_it(service: DurableService) -> None:
    fn = name()
    first = service.publish_version(fn, b"v1", CONFIG)
    service.publish_version(fn, b"v2", CONFIG)
    assert service.publish_version(fn, b"v1", CONFIG) == first
    assert service.get_version(fn, "$LATEST") == first
    running = service.start_execution(StartRequest(fn)).execution
    assert running.function_version == 1
    # $LATEST is not an alias anyone made.
    assert service.list_aliases(fn) == []
    service.stop_execution(running.arn)
    service.delete_function(fn, 1)
    assert service.get_version(fn, "$LATEST").version == 2  # type: ignore[union-attr]


def test_retention_purges_an_old_version_nothing_needs_and_keeps_those_in_use(service: DurableService, clock: SkippableClock) -> None:
    fn, other = name(), name()
    unused = service.publish_version(fn, b"unused", CONFIG)
    in_use = service.publish_version(fn, b"in use", CONFIG)
    aliased = service.publish_version(fn, b"aliased", CONFIG)
    latest = service.publish_version(fn, b"latest", CONFIG)
    service.put_alias(fn, "stable", aliased.version)
    # The same bundle as ``unused`` under another function: its blob must stay.
    shared = service.publish_version(other, b"unused", CONFIG)
    running = service.start_execution(StartRequest(fn, qualifier=str(in_use.version))).execution
    clock.advance(31 * 86400)

    report = service.purge_expired()

    assert report.versions == [f"{fn}:{unused.version}"]
    assert [v.version for v in service.list_versions(fn)] == [in_use.version, aliased.version, latest.version]
    assert report.blobs == []  # the bundle is still the code of ``other``'s version
    assert service.version_code(shared) == b"unused"
    service.stop_execution(running.arn)
    clock.advance(31 * 86400)
    again = service.purge_expired()
    # The stopped execution went with its retention, and then its version.
    assert f"{fn}:{in_use.version}" in again.versions and again.blobs == [in_use.code_key]
    with pytest.raises(BlobNotFoundError):
        service.version_code(in_use)


def test_a_restart_runs_the_old_executions_version_unless_told_another(service: DurableService) -> None:
    fn = name()
    service.publish_version(fn, b"v1", CONFIG)
    service.publish_version(fn, b"v2", CONFIG)
    old = service.start_execution(StartRequest(fn, qualifier="1")).execution
    [invocation] = service.lease("test", [fn], 1, 60)
    step = OperationUpdate.from_wire({"Id": "s1", "Type": "STEP", "Action": "SUCCEED", "Payload": "1"})
    service.checkpoint(invocation.execution_arn, invocation.checkpoint_token, [step])

    assert service.restart_execution(old.arn, "s1").function_version == 1
    assert service.restart_execution(old.arn, "s1", version="2").function_version == 2
    assert service.restart_execution(old.arn, "s1", version="$LATEST").function_version == 2
    with pytest.raises(VersionNotFoundError):
        service.restart_execution(old.arn, "s1", version="9")
