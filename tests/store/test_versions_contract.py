"""The store contract's function versions and aliases (VersionQueries), on SQLite and PostgreSQL.

The PostgreSQL test database keeps its versions between tests, so each test names its
functions uniquely.
"""

from __future__ import annotations

import uuid

from store_backends import NOW, execution

from perdure.protocol.records import ExecutionStatus
from perdure.protocol.versions import Alias, FunctionConfig, FunctionVersion
from perdure.store.base import Store


def name() -> str:
    return f"fn-{uuid.uuid4().hex[:12]}"


def version(function: str, number: int, code: str = "a" * 64, handler: str = "app.py:handler") -> FunctionVersion:
    return FunctionVersion(function, number, code, FunctionConfig(handler, timeout_seconds=60), NOW + number)


def test_versions_are_kept_numbered_and_found_by_digest(store: Store) -> None:
    fn = name()
    first, second = version(fn, 1), version(fn, 2, code="b" * 64)
    with store.transaction() as tx:
        assert tx.latest_version(fn) is None and tx.list_versions(fn) == []
        assert tx.insert_version(first, first.digest)
        assert tx.insert_version(second, second.digest)
        # Another version under a number the function has: refused, nothing changed.
        assert not tx.insert_version(version(fn, 2, code="c" * 64), "other digest")
    with store.snapshot() as tx:
        assert tx.latest_version(fn) == second
        assert tx.get_version(fn, 1) == first and tx.get_version(fn, 3) is None
        assert tx.list_versions(fn) == [first, second]
        assert tx.find_version(fn, second.digest) == second and tx.find_version(fn, "none") is None
        assert fn in tx.versioned_functions()


def test_aliases_point_at_versions_and_go_with_them(store: Store) -> None:
    fn = name()
    with store.transaction() as tx:
        for number in (1, 2):
            made = version(fn, number, code=str(number) * 64)
            tx.insert_version(made, made.digest)
        tx.put_alias(Alias(fn, "live", 1))
        tx.put_alias(Alias(fn, "canary", 2))
        tx.put_alias(Alias(fn, "live", 2))
    with store.snapshot() as tx:
        assert tx.get_alias(fn, "live") == Alias(fn, "live", 2)
        assert tx.list_aliases(fn) == [Alias(fn, "canary", 2), Alias(fn, "live", 2)]
    with store.transaction() as tx:
        assert tx.delete_alias(fn, "canary") and not tx.delete_alias(fn, "canary")
        tx.delete_version(fn, 2)
    with store.snapshot() as tx:
        assert tx.list_aliases(fn) == [] and [v.version for v in tx.list_versions(fn)] == [1]


def test_unfinished_executions_are_counted_by_the_version_they_run(store: Store) -> None:
    fn = name()
    with store.transaction() as tx:
        tx.insert_execution(execution("e1", fn, function_version=1))
        tx.insert_execution(execution("e2", fn, function_version=1, status=ExecutionStatus.PAUSED))
        tx.insert_execution(execution("e3", fn, function_version=2, status=ExecutionStatus.SUCCEEDED))
        tx.insert_execution(execution("e4", fn))
    with store.snapshot() as tx:
        assert tx.unfinished_by_version(fn) == {1: 2, None: 1}
        assert tx.get_execution_by_id("e1").function_version == 1  # type: ignore[union-attr]
