"""bench/temporal_bench.py's references: the no-op of the shape issue 11 measured (--issue-noop)
and the floor's recorded activity results (--floor), both from a real stored history."""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from bench.noop_plan import plan_from_history
from bench.temporal_bench import ISSUE_11_HISTORY, recorded_results
from tests.workflows.actions import count_actions


def issue_11_history() -> WorkflowHistory:
    return WorkflowHistory.from_json("issue-11", ISSUE_11_HISTORY.read_text())


def test_the_issue_noop_has_the_shape_issue_11_measured() -> None:
    """The stored history is a real auto-approve run from before the lean path, and the no-op
    derived from it has that run's shape."""
    history = issue_11_history()
    count = count_actions(history)
    assert (count.activities_scheduled, count.search_attribute_upserts, count.signals_received) == (11, 6, 1)
    assert count.local_activity_tasks == 5
    totals = plan_from_history(history.events).totals()
    assert totals["workflow tasks"] == 11
    assert totals["activities"] == 11
    assert totals["local activities"] == 5
    assert totals["upserts"] == 6


def test_the_floor_returns_what_each_activity_returned_in_the_history() -> None:
    results = asyncio.run(recorded_results(DataConverter.default, issue_11_history().events))
    assert results["check_eligibility"]["eligible"] is True
    assert results["assess_appeal"]["recommendation"] == "AUTO_APPROVE"
    assert {"prepare_checklist", "verify_document", "apply_limit", "deliver_notification"} <= set(results)
