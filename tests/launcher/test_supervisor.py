"""The supervisor that keeps `appeals dev` running, on fake processes and a fixed clock: which
part died and how, when it is started again, when it is back, and that nothing else is touched.
No test here sleeps: time moves only when a test advances the clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.clock import FixedClock
from launcher.dev import Backoff, Notice, NoticeKind, Part, Supervisor, describe_exit

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def seconds(*values: float) -> list[timedelta]:
    return [timedelta(seconds=v) for v in values]


# --- The backoff schedule ----------------------------------------------------------------------


def test_the_backoff_doubles_from_one_second_up_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 10)] == seconds(1, 2, 4, 8, 16, 30, 30, 30, 30)


def test_the_backoff_stays_at_its_cap_however_many_crashes() -> None:
    assert Backoff().delay(10_000) == timedelta(seconds=30)


def test_the_backoff_counts_crashes_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        Backoff().delay(0)


def test_a_backoff_of_other_numbers() -> None:
    backoff = Backoff(first=timedelta(milliseconds=500), factor=3, cap=timedelta(seconds=10))
    assert [backoff.delay(n) for n in range(1, 6)] == seconds(0.5, 1.5, 4.5, 10, 10)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (-9, "exit code -9, killed by SIGKILL"),
        (-15, "exit code -15, killed by SIGTERM"),
        (1, "exit code 1"),
        (0, "exit code 0"),
        (None, "exit code unknown"),
    ],
)
def test_how_a_part_ended_is_said_with_its_signal(code: int | None, text: str) -> None:
    assert describe_exit(code) == text


# --- The supervisor ----------------------------------------------------------------------------


class FakeProcess:
    """A process that lives until a test kills it; `crash_on_start` makes the next starts die
    at once (a part that crashes while it starts)."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        self.log_path.write_text(f"{name} started\n")
        self.running = True
        self.code: int | None = None
        self.starts = 0
        self.stops = 0
        self.leftovers_killed = 0
        self.crash_on_start = 0

    def start(self) -> FakeProcess:
        self.starts += 1
        if self.crash_on_start:
            self.crash_on_start -= 1
            self.running, self.code = False, 1
            with self.log_path.open("a") as log:
                log.write("Traceback: cannot bind\n")
        else:
            self.running, self.code = True, None
        return self

    def alive(self) -> bool:
        return self.running

    def kill(self, code: int = -9) -> None:
        self.running, self.code = False, code

    def stop(self, timeout: float = 15.0) -> None:
        self.stops += 1
        if self.running:
            self.kill(-15)

    def kill_leftovers(self) -> None:
        self.leftovers_killed += 1

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    @property
    def exit_code(self) -> int | None:
        return None if self.running else self.code


class Scene:
    """Two parts (a worker and an API) under a supervisor with a fixed clock."""

    def __init__(self, tmp_path: Path, *, not_restarted_because: str = "") -> None:
        self.clock = FixedClock(START)
        self.notices: list[Notice] = []
        self.worker = FakeProcess("worker", tmp_path)
        self.api = FakeProcess("API", tmp_path)
        self.worker_ready = True
        self.supervisor = Supervisor(
            [
                Part(
                    self.worker,
                    lambda: self.worker_ready,
                    timedelta(seconds=60),
                    not_restarted_because=not_restarted_because,
                ),
                Part(self.api, lambda: True, timedelta(seconds=60)),
            ],
            report=self.notices.append,
            clock=self.clock,
        )

    def after(self, secs: float) -> list[Notice]:
        """Advances the clock, ticks once and returns what was said on that tick."""
        self.clock.advance(timedelta(seconds=secs))
        said = len(self.notices)
        self.supervisor.tick()
        return self.notices[said:]

    def kinds(self, notices: list[Notice]) -> list[tuple[str, NoticeKind]]:
        return [(n.part, n.kind) for n in notices]


def test_a_part_that_died_is_reported_started_again_after_a_second_and_reported_back(
    tmp_path: Path,
) -> None:
    scene = Scene(tmp_path)
    assert scene.after(0) == []
    scene.worker.kill(-9)

    died = scene.after(0.5)
    assert scene.kinds(died) == [("worker", NoticeKind.DIED)]
    (notice,) = died
    first_line = notice.text.splitlines()[0]
    assert "worker died (exit code -9, killed by SIGKILL)" in first_line
    assert str(scene.worker.log_path) in first_line and "Restarting it in 1 s" in first_line
    assert notice.loud and notice.at == START + timedelta(seconds=0.5)
    assert scene.worker.leftovers_killed == 1
    assert scene.supervisor.states()["worker"] == "waiting"

    # Not before its backoff is over.
    assert scene.after(0.5) == [] and scene.worker.starts == 0
    starting = scene.after(0.5)
    assert scene.kinds(starting) == [("worker", NoticeKind.RESTARTING)] and scene.worker.starts == 1
    assert "--- appeals dev: starting worker again" in scene.worker.log_path.read_text()

    back = scene.after(0.5)
    assert scene.kinds(back) == [("worker", NoticeKind.BACK)]
    assert "worker is back" in back[0].text and "down 1.5 s" in back[0].text and not back[0].loud
    assert scene.supervisor.states() == {"worker": "up", "API": "up"}
    # The API was never touched.
    assert (scene.api.starts, scene.api.stops, scene.api.alive()) == (0, 0, True)


def test_a_part_is_back_only_once_its_ready_check_passes(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.worker.kill(-9)
    scene.worker_ready = False
    scene.after(0)
    scene.after(1)  # started again
    assert scene.supervisor.states()["worker"] == "starting"
    for _ in range(5):
        assert scene.after(5) == []
    scene.worker_ready = True
    assert scene.kinds(scene.after(1)) == [("worker", NoticeKind.BACK)]


def test_a_part_that_keeps_crashing_on_start_is_reported_every_time_and_backs_off(
    tmp_path: Path,
) -> None:
    scene = Scene(tmp_path)
    scene.worker.crash_on_start = 5
    scene.worker.kill(1)
    said: list[Notice] = []
    for _ in range(400):  # 100 s in ticks of 0.25 s
        said += scene.after(0.25)
    deaths = [n for n in said if n.kind is NoticeKind.DIED]
    assert len(deaths) == 6, [d.text for d in deaths]
    assert [d.text.splitlines()[0].rsplit("Restarting it in ", 1)[1] for d in deaths] == [
        "1 s.",
        "2 s.",
        "4 s.",
        "8 s.",
        "16 s.",
        "30 s.",
    ]
    assert all(d.loud and str(scene.worker.log_path) in d.text for d in deaths)
    assert "died again while starting (exit code 1, crash 5 in a row)" in deaths[4].text
    # From the second crash in a row on, the end of its log comes with the notice.
    assert "Traceback: cannot bind" in deaths[1].text and "cannot bind" not in deaths[0].text
    # The sixth start works; the API never noticed any of it.
    assert said[-1].kind is NoticeKind.BACK and scene.worker.starts == 6
    assert (scene.api.starts, scene.api.stops, scene.api.alive()) == (0, 0, True)


def _restart_delay(scene: Scene, kill: Callable[[], None]) -> float:
    """Kills the worker and returns how long (in whole ticks of 0.5 s) it waited to be started."""
    kill()
    scene.after(0)
    waited = 0.0
    while scene.supervisor.states()["worker"] == "waiting":
        scene.after(0.5)
        waited += 0.5
    scene.after(0)  # ready: back
    assert scene.supervisor.states()["worker"] == "up"
    return waited


def test_the_backoff_starts_over_once_a_part_stayed_up_a_minute(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    kill = scene.worker.kill
    assert _restart_delay(scene, kill) == 1
    scene.after(10)
    assert _restart_delay(scene, kill) == 2  # up for 10 s only: the second crash in a row
    scene.after(10)
    assert _restart_delay(scene, kill) == 4
    scene.after(60)  # up for a minute
    assert _restart_delay(scene, kill) == 1


def test_a_part_that_is_not_ready_in_time_is_stopped_and_counted_as_a_crash(tmp_path: Path) -> None:
    scene = Scene(tmp_path)
    scene.worker_ready = False
    scene.worker.kill(-9)
    scene.after(0)
    scene.after(1)
    assert scene.worker.starts == 1
    assert scene.after(59) == []
    said = scene.after(1)
    assert scene.kinds(said) == [("worker", NoticeKind.UNHEALTHY)]
    assert "was not ready 60 s after it was started again, so it was stopped" in said[0].text
    assert "crash 2 in a row" in said[0].text and "Starting it again in 2 s" in said[0].text
    assert scene.worker.stops == 1 and said[0].loud
    assert scene.supervisor.states()["worker"] == "waiting"


def test_a_part_that_is_not_restarted_says_why_and_the_others_carry_on(tmp_path: Path) -> None:
    scene = Scene(tmp_path, not_restarted_because="it kept its state in memory")
    scene.worker.kill(-9)
    said = scene.after(0)
    assert scene.kinds(said) == [("worker", NoticeKind.NOT_RESTARTED)]
    assert "It is not started again: it kept its state in memory" in said[0].text
    for _ in range(10):
        assert scene.after(30) == []
    assert scene.worker.starts == 0 and scene.supervisor.states() == {"worker": "down", "API": "up"}
    # The API is still looked after.
    scene.api.kill(-9)
    assert scene.kinds(scene.after(0)) == [("API", NoticeKind.DIED)]


def test_a_part_that_cannot_even_be_launched_is_tried_again(tmp_path: Path) -> None:
    scene = Scene(tmp_path)

    def no_binary() -> FakeProcess:
        raise FileNotFoundError("no such file: temporal")

    scene.worker.kill(-9)
    scene.after(0)
    scene.worker.start = no_binary  # type: ignore[method-assign]
    said = scene.after(1)
    assert scene.kinds(said) == [("worker", NoticeKind.DIED)]
    assert "could not be started again (no such file: temporal; crash 2 in a row)" in said[0].text
    assert scene.supervisor.states()["worker"] == "waiting"


def test_run_ticks_through_the_injected_sleep_until_told_to_stop(tmp_path: Path) -> None:
    clock = FixedClock(START)
    notices: list[Notice] = []
    worker = FakeProcess("worker", tmp_path)
    stop = threading.Event()
    slept: list[float] = []

    def sleep(secs: float) -> None:
        slept.append(secs)
        clock.advance(timedelta(seconds=secs))
        if len(slept) == 1:
            worker.kill(-9)
        if len(slept) == 10:
            stop.set()

    supervisor = Supervisor(
        [Part(worker, lambda: True, timedelta(seconds=5))],
        report=notices.append,
        clock=clock,
        sleep=sleep,
        interval=0.5,
    )
    supervisor.run(stop)
    assert slept == [0.5] * 10
    assert [n.kind for n in notices] == [NoticeKind.DIED, NoticeKind.RESTARTING, NoticeKind.BACK]
    assert worker.starts == 1 and worker.alive()
