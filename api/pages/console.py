"""The reviewer console: the review queue and the case page, with the reviewer's actions.

Pages read only the database (no Temporal call on a GET) in a fixed number of queries; every
action goes through the same use cases as the JSON API (api/review_queue.py), with the task's
version as If-Match and, for decisions, an idempotency key made for each rendered form, so a
stale page is told what happened instead of overwriting it and a double click decides once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api import review_queue
from api.case_file import CaseFile, load_case_file
from api.deps import ClockDep, EngineDep, GatewayDep, ReadsDep, S3Dep, SettingsDep
from api.document_uploads import document_link
from api.pages.session import check_csrf
from api.pages.viewers import SUPERVISING_ROLES, StaffViewer
from api.pages.web import PageRoute, error_page, page_context, redirect, render, wants_html
from api.schemas.review_tasks import DecisionBody
from core.auth import Principal
from core.clock import Clock
from core.db import session_scope
from core.db.case_tables import Appeal, ReviewTask, TaskStatus
from core.db.ledger_tables import Customer
from core.documents.amounts import AmountError, parse_amount_minor
from core.documents.types import DocumentType
from core.errors import DomainError, InvalidInput
from core.notifications.rendering import document_label, format_money
from core.policy.model import RiskTier
from core.reviews.queue import (
    QueueCounts,
    TaskFilter,
    TaskSort,
    default_status,
    list_tasks,
    queue_counts,
)
from core.reviews.service import REVIEW_QUEUE, SECOND_REVIEW_QUEUE, get_task
from core.reviews.sla import ESCALATION_QUEUE
from core.status import AppealStatus
from workflows.messages import ReviewOutcome

router = APIRouter(route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)])

PAGE_SIZE: Final = 50
QUEUES: Final = (REVIEW_QUEUE, SECOND_REVIEW_QUEUE, ESCALATION_QUEUE)

# Messages after an action (a fixed set: the URL never carries text that the page shows).
NOTICES: Final = {
    "claimed": ("The task is yours. Decide below.", "任务已由您认领，请在下方作出决定。"),
    "released": ("The task is back in the queue.", "任务已退回队列。"),
    "decided": ("Your decision is recorded.", "您的决定已记录。"),
    "nothing_waiting": (
        "Nothing is waiting that you may take. Check again later.",
        "目前没有您可以认领的任务，请稍后再试。",
    ),
}

STATUS_LABELS: Final[dict[str, tuple[str, str]]] = {
    AppealStatus.SUBMITTED: ("Submitted", "已提交"),
    AppealStatus.INELIGIBLE: ("Not eligible", "不符合条件"),
    AppealStatus.AWAITING_DOCUMENTS: ("Waiting for documents", "等待材料"),
    AppealStatus.EXPIRED: ("Expired", "已过期"),
    AppealStatus.CHECKING: ("Being checked", "审核检查中"),
    AppealStatus.AUTO_APPROVED: ("Approved automatically", "自动批准"),
    AppealStatus.AUTO_DECLINED: ("Declined automatically", "自动拒绝"),
    AppealStatus.PENDING_REVIEW: ("Waiting for a reviewer", "等待审核"),
    AppealStatus.IN_REVIEW: ("In review", "审核中"),
    AppealStatus.INFO_REQUESTED: ("Information requested", "已要求补充材料"),
    AppealStatus.PENDING_SECOND_REVIEW: ("Waiting for a second review", "等待复核"),
    AppealStatus.IN_SECOND_REVIEW: ("In second review", "复核中"),
    AppealStatus.APPROVED: ("Approved", "已批准"),
    AppealStatus.PARTIALLY_APPROVED: ("Approved in part", "部分批准"),
    AppealStatus.DECLINED: ("Declined", "已拒绝"),
    AppealStatus.LIMIT_APPLIED: ("Limit applied", "额度已生效"),
    AppealStatus.LIMIT_APPLY_FAILED: ("Limit not applied: needs an operator", "额度未能生效，需人工处理"),
    AppealStatus.CLOSED: ("Closed", "已结案"),
    AppealStatus.WITHDRAWN: ("Withdrawn", "已撤回"),
}

TASK_STATUS_LABELS: Final[dict[str, tuple[str, str]]] = {
    TaskStatus.OPEN: ("Open", "待认领"),
    TaskStatus.CLAIMED: ("Claimed", "已认领"),
    TaskStatus.COMPLETED: ("Completed", "已完成"),
    TaskStatus.CANCELLED: ("Cancelled", "已取消"),
}

QUEUE_LABELS: Final[dict[str, tuple[str, str]]] = {
    REVIEW_QUEUE: ("First review", "初审"),
    SECOND_REVIEW_QUEUE: ("Second review", "复核"),
    ESCALATION_QUEUE: ("Escalated", "已升级"),
}

EVENT_LABELS: Final[dict[str, tuple[str, str]]] = {
    "submitted": ("Appeal submitted", "提交申诉"),
    "status_changed": ("Status changed", "状态变更"),
    "task_created": ("Review task created", "生成审核任务"),
    "task_claimed": ("Task claimed", "认领任务"),
    "task_released": ("Task released", "退回任务"),
    "task_reassigned": ("Task reassigned", "改派任务"),
    "sla_warning": ("SLA warning", "时限预警"),
    "task_escalated": ("SLA breached: escalated", "超时升级"),
}

OUTCOME_LABELS: Final[dict[str, tuple[str, str]]] = {
    "APPROVE": ("Approve", "批准"),
    "DECLINE": ("Decline", "拒绝"),
    "REQUEST_INFO": ("Request information", "要求补充材料"),
}

RECOMMENDATION_LABELS: Final[dict[str, tuple[str, str]]] = {
    "AUTO_APPROVE": ("Approve", "批准"),
    "MANUAL_REVIEW": ("Manual review", "人工审核"),
    "AUTO_DECLINE": ("Decline", "拒绝"),
}

CHARACTERISTIC_LABELS: Final[dict[str, tuple[str, str]]] = {
    "worst_dpd_12m": ("Worst delay, 12 months", "近12个月最长逾期"),
    "late_bills_12m": ("Late bills, 12 months", "近12个月逾期账单数"),
    "months_since_last_late": ("Months since last late bill", "距上次逾期月数"),
    "on_time_ratio_12m": ("On-time share, 12 months", "近12个月按时还款比例"),
    "account_age_months": ("Account age (months)", "账户账龄（月）"),
    "active_months_6m": ("Active months, 6 months", "近6个月活跃月数"),
    "other_credit_products": ("Other credit products", "其他信贷产品数"),
    "small_loan_apps_90d": ("Small-loan applications, 90 days", "近90天小额贷款申请"),
    "overdue_records_24m": ("Overdue records, 24 months", "近24个月逾期记录"),
    "spending_to_income": ("Spending to income", "消费收入比"),
    "net_monthly_income_minor": ("Verified monthly income", "可核实月收入"),
    "income_stability_cv": ("Income variation", "收入波动系数"),
    "debt_to_income": ("Debt to income", "负债收入比"),
    "employment_verified": ("Employment verified", "工作单位已核实"),
    "overdue_bills_now": ("Bills overdue now", "当前逾期账单"),
    "account_closed": ("Account closed", "账户已关闭"),
    "red_flag_count": ("Document red flags", "材料风险提示"),
    "missing_document_count": ("Missing documents", "缺少的材料"),
    "statement_months_covered": ("Statement months covered", "流水覆盖月数"),
}

_PERCENT_CHARACTERISTICS: Final = frozenset(
    {"on_time_ratio_12m", "spending_to_income", "debt_to_income", "income_stability_cv"}
)


def _pick(locale: str, pair: tuple[str, str]) -> str:
    return pair[1] if locale == "zh-CN" else pair[0]


def _label(locale: str, labels: dict[str, tuple[str, str]], code: str | None) -> str:
    if code is None:
        return ""
    pair = labels.get(code)
    return _pick(locale, pair) if pair else code


def _duration(delta: timedelta, locale: str) -> str:
    """`3 h 12 min` / `3小时12分钟`: the two largest units, minutes only under an hour."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        parts = [(days, "d", "天"), (hours, "h", "小时")]
    elif hours:
        parts = [(hours, "h", "小时"), (mins, "min", "分钟")]
    else:
        parts = [(mins, "min", "分钟")]
    shown = [p for p in parts if p[0]] or parts[-1:]
    if locale == "zh-CN":
        return "".join(f"{n}{zh}" for n, _, zh in shown)
    return " ".join(f"{n} {en}" for n, en, _ in shown)


@dataclass(frozen=True)
class SlaView:
    state: str  # on_time | warning | breached | closed
    badge: str  # the badge's colour class (base.css)
    word: str  # the state in words: colour is never the only signal
    text: str  # the countdown


def sla_view(clock: review_queue.SlaClock, locale: str) -> SlaView:
    left = _duration(clock.remaining, locale)
    state = clock.state
    if state is review_queue.SlaState.BREACHED:
        return SlaView(
            state,
            "bad",
            _pick(locale, ("Breached", "已超时")),
            _pick(locale, (f"{left} overdue", f"超时 {left}")),
        )
    if state is review_queue.SlaState.WARNING:
        return SlaView(
            state,
            "warn",
            _pick(locale, ("Warning", "即将超时")),
            _pick(locale, (f"{left} left", f"剩余 {left}")),
        )
    if state is review_queue.SlaState.ON_TIME:
        return SlaView(
            state, "ok", _pick(locale, ("On time", "正常")), _pick(locale, (f"{left} left", f"剩余 {left}"))
        )
    return SlaView(state, "", _pick(locale, ("Closed", "已结束")), "")


def characteristic_value(name: str, value: Any, locale: str) -> str:
    if value is None:
        return _pick(locale, ("missing", "缺失"))
    if isinstance(value, bool):
        return _pick(locale, ("yes", "是") if value else ("no", "否"))
    if name.endswith("_minor"):
        return format_money(int(value))
    if name in _PERCENT_CHARACTERISTICS:
        return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.1'))}%"
    return str(value)


def _month_label(day: date, locale: str, with_year: bool) -> str:
    """A chart's month under a bar: "Mar", with the year on the first bar and in January."""
    with_year = with_year or day.month == 1
    if locale == "zh-CN":
        return f"{day.year}年{day.month}月" if with_year else f"{day.month}月"
    return f"{day:%b %Y}" if with_year else f"{day:%b}"


def _helpers(locale: str) -> dict[str, Any]:
    return {
        "status_label": lambda code: _label(locale, STATUS_LABELS, code),
        "task_status_label": lambda code: _label(locale, TASK_STATUS_LABELS, code),
        "queue_label": lambda code: _label(locale, QUEUE_LABELS, code),
        "event_label": lambda code: _label(locale, EVENT_LABELS, code),
        "outcome_label": lambda code: _label(locale, OUTCOME_LABELS, code),
        "recommendation_label": lambda code: _label(locale, RECOMMENDATION_LABELS, code),
        "characteristic_label": lambda code: _label(locale, CHARACTERISTIC_LABELS, code),
        "characteristic_value": lambda name, value: characteristic_value(name, value, locale),
        "document_label": lambda code: document_label(code, locale),
        "sla": lambda clock: sla_view(clock, locale),
        "reason_text": lambda refusal: refusal.text(locale) if refusal is not None else "",
        "month_label": lambda day, with_year=False: _month_label(day, locale, with_year),
        # A form field's value in yuan ("6000.00"), from fen without floats.
        "yuan": lambda minor: f"{Decimal(minor) / 100:.2f}",
    }


def _nav(principal: Principal, current: str) -> dict[str, Any]:
    return {"nav_current": current, "show_dashboard": principal.role in SUPERVISING_ROLES}


def _notice(locale: str, key: str | None) -> str | None:
    return _pick(locale, NOTICES[key]) if key in NOTICES else None


# -- the queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    task: ReviewTask
    customer_name: str | None
    requested_limit_minor: int | None
    appeal_status: str | None
    sla: review_queue.SlaClock


@dataclass(frozen=True)
class QueueFilters:
    status: TaskStatus | None
    queue: str | None
    risk_tier: str | None
    overdue: bool | None
    mine: bool
    sort: TaskSort

    def query(self, **changes: Any) -> str:
        values: dict[str, Any] = {
            "status": self.status.value if self.status else "",
            "queue": self.queue or "",
            "risk_tier": self.risk_tier or "",
            "overdue": {True: "yes", False: "no", None: ""}[self.overdue],
            "mine": "1" if self.mine else "",
            "sort": self.sort.value,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})


def _choice(value: str | None, allowed: tuple[str, ...] | list[str], what: str) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(
            f"Unknown {what} {value!r}; use one of {', '.join(allowed)}.", code="validation_failed"
        )
    return value


def _filters(
    status: str | None,
    queue: str | None,
    risk_tier: str | None,
    overdue: str | None,
    mine: str | None,
    sort: str | None,
) -> QueueFilters:
    chosen_status = _choice(status, [s.value for s in TaskStatus], "status")
    chosen_overdue = _choice(overdue, ("yes", "no"), "overdue choice")
    return QueueFilters(
        status=TaskStatus(chosen_status) if chosen_status else None,
        queue=_choice(queue, QUEUES, "queue"),
        risk_tier=_choice(risk_tier, [t.value for t in RiskTier], "risk tier"),
        overdue=None if chosen_overdue is None else chosen_overdue == "yes",
        mine=bool(mine),
        sort=TaskSort(_choice(sort, [s.value for s in TaskSort], "sort") or TaskSort.DUE.value),
    )


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    total: int
    counts: QueueCounts
    status: TaskStatus


def load_queue_page(
    engine: Engine, principal: Principal, filters: QueueFilters, cursor: str | None, now: datetime
) -> QueuePage:
    """Four queries whatever the page holds: the page, its count, the headline counts, and the
    appeals and customers of the page's tasks."""
    who = principal.subject if filters.mine else None
    status = filters.status or default_status(who)
    task_filter = TaskFilter(
        status=status, queue=filters.queue, assignee=who, overdue=filters.overdue, risk_tier=filters.risk_tier
    )
    with session_scope(engine, read_only=True) as session:
        tasks, next_cursor, total = list_tasks(
            session, task_filter, sort=filters.sort, cursor=cursor, limit=PAGE_SIZE, now=now
        )
        # The default queue's total is the number of open tasks: not counted twice.
        default_queue = task_filter == TaskFilter(status=TaskStatus.OPEN)
        counts = queue_counts(
            session, principal.subject, now=now, open_total=total if default_queue else None
        )
        summaries: dict[str, tuple[str | None, int, str]] = {}
        if tasks:
            found = session.exec(
                select(Appeal.id, Customer.name, Appeal.requested_limit_minor, Appeal.status)
                .join(Customer, col(Customer.id) == col(Appeal.customer_id), isouter=True)
                .where(col(Appeal.id).in_({t.appeal_id for t in tasks}))
            ).all()
            summaries = {row[0]: (row[1], row[2], row[3]) for row in found}
    rows = []
    for task in tasks:
        name, requested, appeal_status = summaries.get(task.appeal_id, (None, None, None))
        rows.append(QueueRow(task, name, requested, appeal_status, review_queue.sla_clock(task, now)))
    return QueuePage(rows=rows, next_cursor=next_cursor, total=total, counts=counts, status=status)


@router.get("/review")
async def queue_page(
    request: Request,
    principal: StaffViewer,
    engine: EngineDep,
    reads: ReadsDep,
    clock: ClockDep,
    status: str | None = None,
    queue: str | None = None,
    risk_tier: str | None = None,
    overdue: str | None = None,
    mine: str | None = None,
    sort: str | None = None,
    cursor: str | None = None,
    notice: str | None = None,
) -> Response:
    filters = _filters(status, queue, risk_tier, overdue, mine, sort)
    if cursor is not None and len(cursor) > 500:
        raise InvalidInput("The cursor is not valid for this sort.", code="invalid_cursor")
    now = clock.now()
    page = await reads.run(lambda: load_queue_page(engine, principal, filters, cursor or None, now))
    locale = page_context(request, principal)["locale"]
    return render(
        request,
        "console/queue.html",
        {
            **_helpers(locale),
            **_nav(principal, "queue"),
            "page": page,
            "filters": filters,
            "cursor": cursor,
            "notice": _notice(locale, notice),
            "task_statuses": list(TaskStatus),
            "queues": QUEUES,
            "risk_tiers": [t.value for t in RiskTier],
            "sorts": list(TaskSort),
        },
        principal=principal,
    )


@router.post("/review/claim-next")
async def claim_next(
    request: Request, principal: StaffViewer, engine: EngineDep, gateway: GatewayDep
) -> Response:
    task = await review_queue.claim_next(engine, gateway, principal)
    if task is None:
        return redirect(request, "/review?notice=nothing_waiting")
    return redirect(request, f"/review/tasks/{task.id}?notice=claimed")


# -- the case page ---------------------------------------------------------------------------


@router.get("/review/tasks/{task_id}")
async def case_page(
    request: Request,
    task_id: str,
    principal: StaffViewer,
    engine: EngineDep,
    reads: ReadsDep,
    settings: SettingsDep,
    clock: ClockDep,
    notice: str | None = None,
) -> Response:
    locale = page_context(request, principal)["locale"]
    case: CaseFile = await reads.run(
        lambda: load_case_file(
            engine, principal, task_id, today=clock.today(), now=clock.now(), locale=locale
        )
    )
    reasons = case.policy.reasons
    principal_codes = [r.code for r in case.assessment.reasons] if case.assessment else []
    # The assessment's principal reasons first, then the rest of the policy's codes.
    reason_codes = principal_codes + [code for code in reasons if code not in principal_codes]
    return render(
        request,
        "console/case.html",
        {
            **_helpers(locale),
            **_nav(principal, "case"),
            "case": case,
            "notice": _notice(locale, notice),
            "reason_choices": [
                (
                    code,
                    reasons[code].zh_cn if locale == "zh-CN" else reasons[code].en,
                    code in principal_codes,
                )
                for code in reason_codes
            ],
            "document_types": list(DocumentType),
            "workflow_url": (
                f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}"
                f"/workflows/{case.appeal.workflow_id}"
            ),
            # A fresh key per rendered form: a double click or a retry decides once.
            "form_keys": {outcome.value: f"console-{uuid.uuid4()}" for outcome in ReviewOutcome},
        },
        principal=principal,
    )


def _action_problem(request: Request, principal: Principal, task_id: str, exc: DomainError) -> Response:
    return render(
        request,
        "console/action_problem.html",
        {
            **_nav(principal, "case"),
            "task_id": task_id,
            "stale": exc.status_code in (409, 412),
            "status_code": exc.status_code,
            "detail": exc.detail,
            "code": exc.code,
        },
        principal=principal,
        status_code=exc.status_code,
    )


@router.post("/review/tasks/{task_id}/claim")
async def claim_task(
    request: Request,
    task_id: str,
    principal: StaffViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    version: Annotated[int, Form()],
) -> Response:
    try:
        await review_queue.claim(engine, gateway, principal, task_id, version)
    except DomainError as exc:
        return _action_problem(request, principal, task_id, exc)
    return redirect(request, f"/review/tasks/{task_id}?notice=claimed")


@router.post("/review/tasks/{task_id}/release")
async def release_task(
    request: Request,
    task_id: str,
    principal: StaffViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    version: Annotated[int, Form()],
) -> Response:
    try:
        await review_queue.release(engine, gateway, principal, task_id, version)
    except DomainError as exc:
        return _action_problem(request, principal, task_id, exc)
    return redirect(request, f"/review/tasks/{task_id}?notice=released")


def _yuan_to_minor(text: str) -> int:
    """A limit typed in yuan ("6000", "6,000.50", "¥6000") in fen: Decimal arithmetic only."""
    try:
        minor = parse_amount_minor(text.strip())
    except AmountError:
        minor = None
    if minor is None or minor <= 0:
        raise InvalidInput("Enter the approved limit in yuan, e.g. 6000 or 6000.50.", code="invalid_amount")
    return minor


def decision_body(
    outcome: ReviewOutcome,
    approved_limit: str,
    reasons: list[str],
    requested_documents: list[str],
    note: str,
) -> DecisionBody:
    try:
        return DecisionBody.model_validate(
            {
                "outcome": outcome,
                "approved_limit_minor": (
                    _yuan_to_minor(approved_limit) if outcome is ReviewOutcome.APPROVE else None
                ),
                "reasons": reasons if outcome is ReviewOutcome.DECLINE else [],
                "requested_documents": requested_documents if outcome is ReviewOutcome.REQUEST_INFO else [],
                "note": note.strip(),
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise InvalidInput(f"Please check the form: {message}.", code="validation_failed") from exc


@router.post("/review/tasks/{task_id}/decision")
async def decide(
    request: Request,
    task_id: str,
    principal: StaffViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    outcome: Annotated[ReviewOutcome, Form()],
    version: Annotated[int, Form()],
    idempotency_key: Annotated[str, Form(min_length=8, max_length=200)],
    approved_limit: Annotated[str, Form(max_length=40)] = "",
    reasons: Annotated[list[str] | None, Form()] = None,
    requested_documents: Annotated[list[str] | None, Form()] = None,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        body = decision_body(outcome, approved_limit, reasons or [], requested_documents or [], note)
        await review_queue.decide(
            engine, gateway, principal, task_id, body, idempotency_key=idempotency_key, if_match=version
        )
    except DomainError as exc:
        return _action_problem(request, principal, task_id, exc)
    return redirect(request, f"/review/tasks/{task_id}?notice=decided")


# -- documents -------------------------------------------------------------------------------


def _task_appeal(engine: Engine, task_id: str) -> str:
    with session_scope(engine, read_only=True) as session:
        return get_task(session, task_id).appeal_id


async def _document_redirect(
    request: Request,
    task_id: str,
    document_id: str,
    principal: Principal,
    engine: Engine,
    s3: Any,
    settings: Any,
    clock: Clock,
    *,
    inline: bool,
) -> Response:
    appeal_id = await to_thread.run_sync(_task_appeal, engine, task_id)
    try:
        link = await to_thread.run_sync(
            lambda: document_link(
                engine,
                s3,
                settings,
                principal,
                appeal_id=appeal_id,
                document_id=document_id,
                inline=inline,
                clock=clock,
            )
        )
    except DomainError as exc:
        # A file withheld (not verified, refused as active content, changed in storage): a
        # person who opened it gets a page saying why; an API client the problem.
        if not wants_html(request):
            raise
        return error_page(request, exc.status_code, exc.detail, exc.code)
    # A fresh short-lived link each time it is opened; the page never holds one that expires.
    return Response(status_code=303, headers={"Location": link.url, "Cache-Control": "no-store"})


@router.get("/review/tasks/{task_id}/documents/{document_id}/preview")
async def preview_document(
    request: Request,
    task_id: str,
    document_id: str,
    principal: StaffViewer,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    return await _document_redirect(
        request, task_id, document_id, principal, engine, s3, settings, clock, inline=True
    )


@router.get("/review/tasks/{task_id}/documents/{document_id}/download")
async def download_document(
    request: Request,
    task_id: str,
    document_id: str,
    principal: StaffViewer,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    return await _document_redirect(
        request, task_id, document_id, principal, engine, s3, settings, clock, inline=False
    )
