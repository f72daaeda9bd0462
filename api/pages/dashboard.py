"""The supervisor dashboard (`/dashboard`, supervisors and admins): open tasks by queue and
status, SLA warnings and breaches, the ageing of open tasks, decisions per day, the approval
rate by risk tier and the median time to decision (core/reviews/dashboard.py computes them, as
of the app's clock, in four queries), and the most urgent open tasks with a form to reassign
each through the same use case as `POST /review-tasks/{id}/reassign`.

Days are calendar days in the viewer's time zone (the page says which). A reassignment carries
the task's version from the page: if someone changed the task since, the use case refuses it
(412) and the dashboard comes back, up to date, with a message saying so.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from anyio import to_thread
from fastapi import APIRouter, Depends, Form, Request, Response
from sqlalchemy.engine import Engine

from api import review_queue
from api.deps import ClockDep, EngineDep, GatewayDep
from api.pages.console import QUEUE_LABELS
from api.pages.session import check_csrf
from api.pages.viewers import SupervisorViewer
from api.pages.web import PageRoute, page_context, redirect, render
from core.auth import Principal, usable_subject
from core.clock import Clock
from core.db import session_scope
from core.db.review_tables import ReviewRun
from core.errors import DomainError, InvalidInput
from core.lender.review import recent_runs
from core.reviews.dashboard import PERIODS, Dashboard, supervisor_dashboard
from core.reviews.rules import SLA_WARNING_FRACTION

router = APIRouter(route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)])

# Where the workflow warns a task's assignee: the dashboard counts "past the warning point" by it.
WARNING_FRACTION: Final = SLA_WARNING_FRACTION
URGENT_LIMIT: Final = 50
REVIEW_RUNS_SHOWN: Final = 7  # the portfolio review's last runs

# The queues are named as the reviewer console names them.
QUEUE_NAMES: Final = QUEUE_LABELS
STATUS_NAMES: Final = {"OPEN": ("Unclaimed", "待认领"), "CLAIMED": ("Claimed", "已认领")}
TIER_NAMES: Final = {"LOW": ("Low", "低"), "MEDIUM": ("Medium", "中"), "HIGH": ("High", "高")}
ROLE_NAMES: Final = {
    "reviewer": ("Reviewer", "审核员"),
    "senior_reviewer": ("Senior reviewer", "高级审核员"),
    "supervisor": ("Supervisor", "主管"),
}

# What a refused reassignment means, in both languages; the use case's own detail follows.
_REFUSALS: Final = {
    "stale_version": (
        "Someone changed this task after this page was loaded, so it was not reassigned. "
        "The list below is up to date: check the task and try again.",
        "此页面加载后，该任务已被他人修改，因此未改派。下方列表已是最新，请核对该任务后重试。",
    ),
    "task_not_assignable": (
        "That person cannot take this task, so it was not reassigned.",
        "该人员不能处理此任务，因此未改派。",
    ),
    "unknown_staff_member": (
        "That person is not in the staff directory, so the task was not reassigned. People are "
        "added when they first sign in, or by an admin.",
        "员工名录中没有该人员，因此未改派。人员在首次登录时或由管理员加入名录。",
    ),
    "staff_member_inactive": (
        "That person is inactive in the staff directory, so the task was not reassigned.",
        "该人员在员工名录中已停用，因此未改派。",
    ),
    "task_closed": (
        "This task is finished or cancelled; there is nothing to reassign.",
        "该任务已完成或已取消，无需改派。",
    ),
    "task_not_found": ("There is no such task.", "没有这个任务。"),
    "invalid_assignee": (
        "Enter the id of the person to hand the task to (no spaces).",
        "请填写接手人员的编号（不含空格）。",
    ),
    "appeal_closed": (
        "The task now shows the new assignee, but the appeal is no longer running.",
        "任务已显示新的处理人，但该申诉的流程已结束。",
    ),
    "temporal_unavailable": (
        "The task now shows the new assignee, but the appeal's workflow could not be told yet. "
        "Reassign it again in a moment.",
        "任务已显示新的处理人，但暂时无法通知申诉流程，请稍后再改派一次。",
    ),
}
_OTHER_REFUSAL: Final = ("The task was not reassigned.", "任务未改派。")


def _names(table: dict[str, tuple[str, str]], key: str | None) -> tuple[str, str]:
    if key is None:
        return ("Not assessed", "未评估")
    return table.get(key, (key, key))


def _duration(value: timedelta) -> tuple[str, str]:
    """A duration for people, in English and Chinese: "2 d 4 h", "5 h 20 min", "12 min"."""
    minutes = max(int(value.total_seconds()) // 60, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return (f"{days} d {hours} h", f"{days}天{hours}小时")
    if hours:
        return (f"{hours} h {mins} min", f"{hours}小时{mins}分钟")
    return (f"{mins} min", f"{mins}分钟")


def _hours(value: timedelta) -> tuple[str, str]:
    """A duration in hours and minutes (for medians, where days would hide the hours)."""
    minutes = max(int(value.total_seconds() // 60), 0)
    hours, mins = divmod(minutes, 60)
    if hours:
        return (f"{hours} h {mins} min", f"{hours}小时{mins}分钟")
    return (f"{mins} min", f"{mins}分钟")


def _band(lower: timedelta, upper: timedelta | None) -> tuple[str, str]:
    def short(d: timedelta) -> tuple[str, str]:
        hours = int(d.total_seconds() // 3600)
        return (
            (f"{hours // 24}d", f"{hours // 24}天")
            if hours >= 24 and hours % 24 == 0
            else (f"{hours}h", f"{hours}小时")
        )

    if upper is None:
        en, zh = short(lower)
        return (f"over {en}", f"{zh}以上")
    hi = short(upper)
    if lower == timedelta(0):
        return (f"under {hi[0]}", f"{hi[1]}以内")
    lo = short(lower)
    return (f"{lo[0]}–{hi[0]}", f"{lo[1]}–{hi[1]}")


def _day(value: date) -> tuple[str, str]:
    return (f"{value.day} {value:%b}", f"{value.month}月{value.day}日")


def _load(engine: Engine, now_clock: Clock, zone: ZoneInfo, days: int) -> tuple[Dashboard, list[ReviewRun]]:
    """The board (four queries) and the portfolio review's last runs (one)."""
    with session_scope(engine, read_only=True) as session:
        board = supervisor_dashboard(
            session,
            now=now_clock.now(),
            zone=zone,
            days=days,
            warning_fraction=WARNING_FRACTION,
            urgent_limit=URGENT_LIMIT,
        )
        return board, recent_runs(session, REVIEW_RUNS_SHOWN)


def _period(days: int | str | None) -> int:
    try:
        chosen = int(days) if days is not None else PERIODS[0]
    except ValueError:
        chosen = PERIODS[0]
    return chosen if chosen in PERIODS else PERIODS[0]


async def _page(
    request: Request,
    viewer: Principal,
    engine: Engine,
    clock: Clock,
    days: int,
    *,
    message: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    zone: ZoneInfo = page_context(request, viewer)["tz"]
    board, review_runs = await to_thread.run_sync(_load, engine, clock, zone, days)
    return render(
        request,
        "dashboard/dashboard.html",
        {
            "board": board,
            "review_runs": review_runs,
            "message": message,
            "periods": PERIODS,
            "urgent_limit": URGENT_LIMIT,
            "warning_percent": round(WARNING_FRACTION * 100),
            "queue_name": lambda q: _names(QUEUE_NAMES, q),
            "status_name": lambda s: _names(STATUS_NAMES, str(s)),
            "tier_name": lambda t: _names(TIER_NAMES, t),
            "role_name": lambda r: _names(ROLE_NAMES, r),
            "duration": _duration,
            "hours": _hours,
            "band_name": _band,
            "day_name": _day,
        },
        principal=viewer,
        status_code=status_code,
    )


@router.get("/dashboard")
async def dashboard_page(
    request: Request,
    viewer: SupervisorViewer,
    engine: EngineDep,
    clock: ClockDep,
    days: str | None = None,
    reassigned: str | None = None,
) -> Response:
    message = {"kind": "reassigned", "task_id": reassigned[:36]} if reassigned else None
    return await _page(request, viewer, engine, clock, _period(days), message=message)


@router.post("/dashboard/tasks/{task_id}/reassign")
async def reassign_task(
    request: Request,
    task_id: str,
    viewer: SupervisorViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    clock: ClockDep,
    to: Annotated[str, Form(max_length=200)] = "",
    version: Annotated[str, Form(max_length=20)] = "",
    days: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    period = _period(days or None)
    try:
        assignee = to.strip()
        if not assignee or len(assignee) > 100 or not usable_subject(assignee):
            raise InvalidInput("Enter an id such as r-2.", code="invalid_assignee")
        if not version.isdigit():
            raise InvalidInput("The form has no task version; reload the page.", code="invalid_assignee")
        # Whom the task goes to is checked against the staff directory: their role is its.
        await review_queue.reassign(engine, gateway, viewer, task_id, to=assignee, if_match=int(version))
    except DomainError as exc:
        lead = _REFUSALS.get(exc.code, _OTHER_REFUSAL)
        message = {"kind": "refused", "lead": lead, "detail": exc.detail, "task_id": task_id[:36]}
        return await _page(
            request, viewer, engine, clock, period, message=message, status_code=exc.status_code
        )
    return redirect(request, f"/dashboard?days={period}&reassigned={task_id}#task-{task_id}")
