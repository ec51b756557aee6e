"""The shared SQL's spelling: each dialect writes a statement once, the same text on every call."""

from __future__ import annotations

import sqlite3

import pytest

from perdure.store.dialect import POSTGRES, SQLITE
from perdure.store.sql import Statements


def test_postgres_spells_positional_and_named_parameters_in_its_style() -> None:
    sql = "SELECT * FROM t WHERE a = ? AND b = :name AND c = ?"
    assert POSTGRES.spell(sql) == "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = %s"


def test_postgres_spelling_leaves_casts_alone() -> None:
    assert POSTGRES.spell("SELECT x::bigint FROM t WHERE id = :id") == "SELECT x::bigint FROM t WHERE id = %(id)s"


def test_postgres_refuses_a_percent_sign_that_psycopg_would_take_for_a_parameter() -> None:
    with pytest.raises(ValueError, match="may not contain '%'"):
        POSTGRES.spell("SELECT * FROM t WHERE name LIKE 'a%'")


def test_sqlite_spells_statements_as_written() -> None:
    sql = "SELECT * FROM t WHERE a = ? AND b = :name"
    assert SQLITE.spell(sql) is sql


def test_a_partial_update_is_the_same_text_on_every_call() -> None:
    # PostgreSQL prepares a statement that psycopg runs often with the same text.
    statements = Statements(POSTGRES, locking=True)
    first = statements.partial_update(("status", "version"))
    assert statements.partial_update(("status", "version")) is first
    assert first == "UPDATE executions SET status = %(status)s, version = %(version)s WHERE id = %(id)s"


def test_only_a_locking_set_of_statements_locks_the_rows_it_reads() -> None:
    assert Statements(POSTGRES, locking=True).execution_by_id.endswith(" FOR NO KEY UPDATE")
    assert "FOR" not in Statements(POSTGRES, locking=False).execution_by_id
    assert "FOR" not in Statements(SQLITE, locking=True).execution_by_id


@pytest.mark.parametrize("op", ["<", ">"])
def test_both_spellings_of_a_pair_comparison_select_the_same_rows(op: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a REAL, b TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(a, b) for a in (1.0, 2.0, 3.0) for b in ("x", "y", "z")])
    expanded, expanded_params = SQLITE.after(("a", "b"), op, (2.0, "y"))
    row_value, row_params = POSTGRES.after(("a", "b"), op, (2.0, "y"))
    select = "SELECT a, b FROM t WHERE {} ORDER BY a, b"
    # SQLite reads row values too, so the PostgreSQL clause (in its neutral spelling) runs here as well.
    assert conn.execute(select.format(expanded), expanded_params).fetchall() == (
        conn.execute(select.format(row_value), row_params).fetchall()
    )
    assert len(conn.execute(select.format(expanded), expanded_params).fetchall()) == 4


def test_a_membership_test_is_a_list_of_parameters_on_sqlite_and_one_array_on_postgres() -> None:
    assert SQLITE.member("status", ["A", "B"]) == ("status IN (?, ?)", ["A", "B"])
    assert POSTGRES.member("status", ["A", "B"]) == ("status = ANY(?)", [["A", "B"]])


def test_both_dialects_number_the_same_migrations() -> None:
    assert [n for n, _ in SQLITE.schema_scripts()] == [n for n, _ in POSTGRES.schema_scripts()]
