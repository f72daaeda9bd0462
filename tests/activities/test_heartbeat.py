"""A document check heartbeats only once it has run a while: a quick check costs no Temporal
action, a long one tells Temporal it is alive before each further file, so a check lost with
its worker is retried after the heartbeat timeout (workflows/appeal.py)."""

from __future__ import annotations

from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.appeal import HEARTBEAT_AFTER_SECONDS, heartbeat_when_slow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_heartbeat_until_the_check_has_run_a_while() -> None:
    beats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    clock = Clock()

    def check_files() -> None:
        beat = heartbeat_when_slow(clock.now, monotonic=clock)
        beat()
        clock.now += HEARTBEAT_AFTER_SECONDS - 0.5
        beat()
        assert beats == []
        clock.now += 1
        beat()
        beat()

    env.run(check_files)
    assert len(beats) == 2
