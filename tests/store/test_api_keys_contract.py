"""The store contract's API keys (Store.add_api_key and the rest), on SQLite and PostgreSQL.

The PostgreSQL test database is shared by the session and its keys are not emptied between
tests, so each test names its keys uniquely and looks only at those.
"""

from __future__ import annotations

import uuid

import pytest
from store_backends import NOW, StoreFactory

from perdure.store.base import Store
from perdure.store.keys import ApiKey, KeyNameTakenError


def new_key(name: str, created: float = NOW) -> ApiKey:
    unique = uuid.uuid4().hex
    return ApiKey(
        access_key_id=f"PERD{unique[:16].upper()}",
        name=name,
        created_time=created,
        secret_salt=f"salt-{unique}",
        secret_sha256=f"secret-{unique}",
        token_sha256=f"token-{unique}",
    )


def unique_name() -> str:
    return f"ci-{uuid.uuid4().hex[:8]}"


def test_a_key_reads_back_by_id_and_by_token(store: Store) -> None:
    key = new_key(unique_name())
    store.add_api_key(key)
    assert store.get_api_key(key.access_key_id) == key
    assert store.find_api_key_by_token(key.token_sha256) == key
    assert store.get_api_key("PERDNOSUCHKEY0000000") is None
    assert store.find_api_key_by_token("no-such-hash") is None


def test_keys_list_oldest_first(store: Store) -> None:
    older, newer = new_key(unique_name(), NOW - 10), new_key(unique_name(), NOW)
    store.add_api_key(newer)
    store.add_api_key(older)
    ids = [k.access_key_id for k in store.list_api_keys()]
    assert ids.index(older.access_key_id) < ids.index(newer.access_key_id)


def test_revoking_marks_the_key_once(store: Store) -> None:
    key = new_key(unique_name())
    store.add_api_key(key)
    revoked = store.revoke_api_key(key.access_key_id, NOW + 5)
    assert revoked is not None and revoked.revoked_time == NOW + 5 and not revoked.active
    assert store.get_api_key(key.access_key_id) == revoked
    assert store.find_api_key_by_token(key.token_sha256) == revoked
    assert store.revoke_api_key(key.access_key_id, NOW + 9) is None  # already revoked: unchanged
    assert store.get_api_key(key.access_key_id) == revoked
    assert store.revoke_api_key("PERDNOSUCHKEY0000000", NOW) is None


def test_an_active_name_is_unique_but_a_revoked_one_is_free(store: Store) -> None:
    name = unique_name()
    first = new_key(name)
    store.add_api_key(first)
    duplicate = new_key(name)
    with pytest.raises(KeyNameTakenError, match=f"already named '{name}'"):
        store.add_api_key(duplicate)
    assert store.get_api_key(duplicate.access_key_id) is None
    store.revoke_api_key(first.access_key_id, NOW)
    store.add_api_key(duplicate)
    assert store.get_api_key(duplicate.access_key_id) == duplicate


def test_keys_are_shared_by_every_store_on_the_database(open_test_store: StoreFactory) -> None:
    one, other = open_test_store(), open_test_store()
    key = new_key(unique_name())
    one.add_api_key(key)
    assert other.get_api_key(key.access_key_id) == key
    other.revoke_api_key(key.access_key_id, NOW)
    fetched = one.get_api_key(key.access_key_id)
    assert fetched is not None and not fetched.active


def test_ending_sessions_bumps_the_generation_of_that_key_only(store: Store) -> None:
    key, other = new_key(unique_name()), new_key(unique_name())
    store.add_api_key(key)
    store.add_api_key(other)
    assert key.session_generation == 0
    ended = store.end_api_key_sessions(key.access_key_id)
    assert ended is not None and ended.session_generation == 1
    assert store.end_api_key_sessions(key.access_key_id) == store.get_api_key(key.access_key_id)
    assert store.find_api_key_by_token(key.token_sha256).session_generation == 2  # type: ignore[union-attr]
    assert store.get_api_key(other.access_key_id) == other
    assert store.end_api_key_sessions("PERDNOSUCHKEY0000000") is None
