"""The store's ``?`` placeholders reach psycopg as ``%s`` only outside quoted text and comments, and a literal
``%`` survives, so one SQL text runs on both engines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from powersync_pipelines.storage.backend import to_pg_ddl, to_pg_sql


def test_placeholders_outside_quotes_become_psycopg_ones():
    sql = "SELECT '?' AS q, \"a?b\", 'it''s 100%' FROM t WHERE a = ? AND b LIKE 'x%' AND c = ? -- why? 5%\n"
    assert to_pg_sql(sql) == ("SELECT '?' AS q, \"a?b\", 'it''s 100%%' FROM t WHERE a = %s AND b LIKE 'x%%' "
                              "AND c = %s -- why? 5%%\n")


@given(st.lists(st.sampled_from(["a", " ", "=", "?", "%", ",", "(", ")"]), max_size=40))
def test_every_bare_question_mark_is_one_parameter(tokens):
    sql = "".join(tokens)
    out = to_pg_sql(sql)
    assert out.count("%s") == sql.count("?")
    assert out.replace("%s", "").replace("%%", "") == sql.replace("?", "").replace("%", "")


def test_duckdb_double_is_double_precision_once():
    assert to_pg_ddl("a DOUBLE NOT NULL, b DOUBLE PRECISION, c double") == (
        "a DOUBLE PRECISION NOT NULL, b DOUBLE PRECISION, c DOUBLE PRECISION")
