"""The suite's one waiting primitive: it returns the awaited value, retries what raises, and on
timeout says what it waited for, what it last saw and what last went wrong."""

from __future__ import annotations

import itertools

import pytest

from tests.eventually import PATIENCE_ENV, eventually, eventually_sync, patience


async def test_returns_the_first_value_that_satisfies_the_condition() -> None:
    counter = itertools.count(1)
    assert await eventually(lambda: next(counter), lambda n: n >= 3, what="the third try") == 3


async def test_async_probes_are_awaited() -> None:
    seen: list[int] = []

    async def probe() -> list[int]:
        seen.append(len(seen))
        return list(seen)

    assert await eventually(probe, lambda s: len(s) == 2, what="two tries") == [0, 1]


async def test_the_default_condition_is_a_truthy_value() -> None:
    values = iter([[], None, ["notice"]])
    assert await eventually(lambda: next(values), what="a notice") == ["notice"]


async def test_a_probe_that_raises_is_tried_again() -> None:
    attempts: list[Exception | str] = [KeyError("documents"), ConnectionError("refused"), "ready"]

    def probe() -> str:
        item = attempts.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert await eventually(probe, what="the server to answer") == "ready"


async def test_timeout_names_the_condition_and_the_last_value() -> None:
    with pytest.raises(AssertionError) as info:
        await eventually(
            lambda: {"status": "VERIFYING"},
            lambda d: d["status"] in ("ACCEPTED", "REJECTED"),
            what="document d-1 to be ACCEPTED or REJECTED",
            timeout=0.2,
        )
    message = str(info.value)
    assert "waiting for document d-1 to be ACCEPTED or REJECTED" in message
    assert "Last value seen: {'status': 'VERIFYING'}" in message
    assert PATIENCE_ENV in message


async def test_timeout_reports_the_last_exception_and_chains_it() -> None:
    def probe() -> int:
        raise ConnectionError("connection refused")

    with pytest.raises(AssertionError) as info:
        await eventually(probe, what="the API to answer", timeout=0.2)
    assert "No try returned a value." in str(info.value)
    assert "The last try raised: ConnectionError: connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionError)


async def test_a_failing_predicate_counts_as_not_yet() -> None:
    with pytest.raises(AssertionError) as info:
        await eventually(lambda: [], lambda items: items[0] == "x", what="a first item", timeout=0.2)
    assert "Last value seen: []" in str(info.value) and "IndexError" in str(info.value)


def test_the_sync_variant_behaves_the_same() -> None:
    counter = itertools.count(1)
    assert eventually_sync(lambda: next(counter), lambda n: n == 2, what="a second try") == 2
    with pytest.raises(AssertionError, match="waiting for mail about appeal 7"):
        eventually_sync(lambda: [], what="mail about appeal 7", timeout=0.1)


def test_patience_scales_every_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PATIENCE_ENV, raising=False)
    assert patience(30) == 30
    monkeypatch.setenv(PATIENCE_ENV, "2.5")
    assert patience(30) == 75
    for bad in ("slow", "0", "-1"):
        monkeypatch.setenv(PATIENCE_ENV, bad)
        with pytest.raises(ValueError, match=PATIENCE_ENV):
            patience(30)
