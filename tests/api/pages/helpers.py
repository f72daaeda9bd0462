"""Driving the web pages with an HTTP client as a browser would: cookies, forms, CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_from(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, subject: str, role: str) -> str:
    """Signs in through the development form; returns the CSRF token for later forms."""
    page = await http.get("/sign-in")
    assert page.status_code == 200, page.text
    token = csrf_from(page.text)
    answer = await http.post("/sign-in/dev", data={"subject": subject, "role": role, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return token


class QueryCounter:
    """Counts the SQL statements an engine runs while it is active (to show a page makes a
    fixed number of queries, not one per row)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> QueryCounter:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def count(self) -> int:
        return len(self.statements)
