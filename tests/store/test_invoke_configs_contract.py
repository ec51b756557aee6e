"""The store contract's event invoke configurations (DestinationQueries), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from store_backends import NOW

from perdure.protocol.destinations import ConfigSource, EventInvokeConfig, StoredInvokeConfig
from perdure.store.base import Store

FAILURES = EventInvokeConfig(on_failure="notify", maximum_event_age_seconds=3600)


def stored(qualifier: str, config: EventInvokeConfig = FAILURES, source: ConfigSource = ConfigSource.API) -> StoredInvokeConfig:
    return StoredInvokeConfig("orders", qualifier, config, source, NOW)


def test_configurations_are_kept_per_function_and_qualifier_and_replaced_whole(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.invoke_configs("orders") == []
        tx.put_invoke_config(stored("$LATEST"))
        tx.put_invoke_config(stored("live", EventInvokeConfig(on_success="audit:2")))
        tx.put_invoke_config(StoredInvokeConfig("other", "$LATEST", FAILURES, ConfigSource.SERVED, NOW))
    replaced = StoredInvokeConfig("orders", "$LATEST", EventInvokeConfig(on_success="audit"), ConfigSource.SERVED, NOW + 5)
    with store.transaction() as tx:
        tx.put_invoke_config(replaced)
    with store.snapshot() as tx:
        assert tx.invoke_configs("orders") == [replaced, stored("live", EventInvokeConfig(on_success="audit:2"))]


def test_a_delete_takes_one_qualifiers_or_only_what_its_source_set(store: Store) -> None:
    with store.transaction() as tx:
        tx.put_invoke_config(stored("$LATEST"))
        tx.put_invoke_config(stored("live"))
    with store.transaction() as tx:
        assert not tx.delete_invoke_config("orders", "$LATEST", ConfigSource.SERVED)
        assert tx.delete_invoke_config("orders", "live")
        assert not tx.delete_invoke_config("orders", "live")
    with store.snapshot() as tx:
        assert tx.invoke_configs("orders") == [stored("$LATEST")]
    with store.transaction() as tx:
        tx.delete_invoke_configs("orders")
    with store.snapshot() as tx:
        assert tx.invoke_configs("orders") == []


def test_a_configuration_written_in_a_transaction_that_fails_is_not_kept(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_invoke_config(stored("$LATEST"))
        raise RuntimeError("the transaction fails")
    with store.snapshot() as tx:
        assert tx.invoke_configs("orders") == []
