"""Processes that start together on a new PostgreSQL database all create the schema, one at a
time (`appeals api --workers 2` beside a worker): none fails on a type or table another made."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import inspect

from core.db import create_tables, make_engine
from tests.conftest import PG_URL, _drop_schema, _postgres_engine


def test_concurrent_create_tables_on_a_new_postgresql_schema_all_succeed() -> None:
    first, schema = _postgres_engine()  # an empty schema: nothing created yet
    engines = [first] + [
        make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"}) for _ in range(3)
    ]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(create_tables, engines))  # raises what any of them raised
        assert "appeal" in inspect(first).get_table_names()
    finally:
        for engine in engines[1:]:
            engine.dispose()
        _drop_schema(first, schema)
