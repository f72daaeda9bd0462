"""Appeal activities: each runs one step of core/appeals/steps.py in a unit of work, then sends
the notice the step planned.

They are synchronous (SQLAlchemy sessions, boto3, SMTP) and run in the worker's thread pool.
Each step is idempotent per appeal and its input (activities/types.py), so Temporal's retries
are safe. Notices: the step plans the outbox rows in its own transaction; after the commit the
activity sends them once each. A channel that fails stays in the outbox for the worker's relay
(launcher/reconciler.py) to retry with backoff: the appeal never waits on a mail server, and a
row already sent is never sent again (core/notifications/outbox.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import (
    ApplyLimitInput,
    Checked,
    CheckInput,
    Decided,
    DecideInput,
    HumanReviewInput,
    LimitRefusalInput,
    NoticeStepInput,
    Opened,
    OpenInput,
    RemindInput,
    SlaEventInput,
    StepInput,
    StepResult,
    TaskPlan,
    WithdrawInput,
)
from core.appeals import steps
from core.appeals.service import get_appeal
from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.db.ledger_tables import CreditAccount, LimitEvent
from core.ledger.credit_line_api import CreditLineRefused, CreditLineUnavailable, apply_limit_externally
from core.notifications.channels import senders_from_settings
from core.notifications.outbox import send_claimed
from core.policy.deployment import load_deployment
from core.policy.loader import load_default_policy
from core.reviews.sla import record_sla_event
from core.settings import Settings

log = logging.getLogger(__name__)

# A document check that has run this long heartbeats before each further file (workflows/
# appeal.py CHECK_HEARTBEAT_TIMEOUT); a quick one sends no heartbeat, and costs no action.
HEARTBEAT_AFTER_SECONDS = 5.0


def heartbeat_when_slow(
    started: float, *, after: float = HEARTBEAT_AFTER_SECONDS, monotonic: Callable[[], float] = time.monotonic
) -> Callable[[], None]:
    """A callback that heartbeats once `after` seconds have passed since `started`."""

    def beat() -> None:
        if monotonic() - started >= after:
            activity.heartbeat()

    return beat


def _plan(task: TaskPlan) -> steps.ReviewTaskPlan:
    return steps.ReviewTaskPlan(
        task_id=task.task_id, due_at=task.due_at, round=task.round, preferred_assignee=task.preferred_assignee
    )


class AppealActivities:
    def __init__(
        self, *, engine: Engine, s3_client: Any, settings: Settings, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._engine = engine
        self._s3 = s3_client
        self._settings = settings
        self._clock = clock  # the business date every check is made on
        self._senders: dict[str, Any] | None = None

    @property
    def _notices(self) -> steps.Notices:
        return steps.Notices(
            webhook_urls=list(self._settings.webhook_urls),
            policy=load_default_policy(),
            challenger=load_deployment().challenger,
        )

    def _today(self) -> date:
        return self._clock.today()

    def _send(self, notification_ids: list[int]) -> None:
        """Sends what the step planned and claimed, once the step has committed. A failure is
        left in the outbox (recorded on its row) for the relay: it never fails the step."""
        if not notification_ids:
            return
        if self._senders is None:
            self._senders = senders_from_settings(self._settings)
        try:
            send_claimed(self._engine, notification_ids, self._senders)
        except Exception:  # the rows stay SENDING; the relay takes them once they are stale
            log.warning("notifications %s not sent yet", notification_ids, exc_info=True)

    # -- the steps ----------------------------------------------------------------------------

    @activity.defn(name="open_appeal")
    def open_appeal(self, inp: OpenInput) -> Opened:
        with session_scope(self._engine) as session:
            opened = steps.open_appeal(
                session,
                inp.appeal_id,
                today=self._today(),
                at=inp.at,
                notice_seq=inp.notice_seq,
                deadline_days=inp.deadline_days,
                notices=self._notices,
            )
        self._send(opened.to_deliver)
        return Opened(
            status=opened.status,
            eligible=opened.eligible,
            original_limit_minor=opened.original_limit_minor,
            missing=opened.missing,
            uploads_waiting=opened.uploads_waiting,
        )

    @activity.defn(name="check_documents")
    def check_documents(self, inp: CheckInput) -> Checked:
        checked = steps.check_documents(
            self._engine,
            self._s3,
            self._settings,
            inp.appeal_id,
            today=self._today(),
            at=inp.at,
            run=inp.run,
            notice_seq=inp.notice_seq,
            human_review_days=inp.human_review_days,
            review_task=_plan(inp.review_task),
            notices=self._notices,
            force_review=inp.force_review,
            before_each_file=heartbeat_when_slow(time.monotonic()),
        )
        self._send(checked.to_deliver)
        return _checked(checked)

    @activity.defn(name="start_human_review")
    def start_human_review(self, inp: HumanReviewInput) -> Checked:
        with session_scope(self._engine) as session:
            started = steps.start_human_review(
                session,
                inp.appeal_id,
                at=inp.at,
                notice_seq=inp.notice_seq,
                review_task=_plan(inp.review_task),
                requested_by=inp.requested_by,
                notices=self._notices,
            )
        self._send(started.to_deliver)
        return _checked(started)

    @activity.defn(name="close_after_decline")
    def close_after_decline(self, inp: StepInput) -> StepResult:
        with session_scope(self._engine) as session:
            closed = steps.close_after_decline(session, inp.appeal_id, at=inp.at)
        return StepResult(status=closed.status)

    @activity.defn(name="decide")
    def decide(self, inp: DecideInput) -> Decided:
        with session_scope(self._engine) as session:
            decided = steps.decide(
                session,
                inp.appeal_id,
                steps.ReviewerDecision(
                    task_id=inp.task_id,
                    stage=inp.stage,
                    decided_by=inp.decided_by,
                    outcome=inp.outcome,
                    approved_limit_minor=inp.approved_limit_minor,
                    reasons=inp.reasons,
                    requested_documents=inp.requested_documents,
                    note=inp.note,
                    idempotency_key=inp.idempotency_key,
                ),
                at=inp.at,
                notice_seq=inp.notice_seq,
                four_eyes=steps.FourEyesRule(inp.four_eyes_min_amount_minor, inp.four_eyes_risk_tiers),
                second_task=_plan(inp.second_task),
                notices=self._notices,
            )
        self._send(decided.to_deliver)
        return Decided(
            status=decided.status,
            missing=decided.missing,
            second_task_id=decided.second_task_id,
            second_task_due_at=decided.second_task_due_at,
            second_task_version=decided.second_task_version,
        )

    @activity.defn(name="apply_limit")
    def apply_limit(self, inp: ApplyLimitInput) -> StepResult:
        """To the ledger, or (when configured) to the external credit-line API first, keyed by
        the appeal so a retry is applied once there; the ledger then mirrors it once."""
        source = "appeals"
        if self._settings.credit_line_api_url:
            source = "credit-line-api"
            self._apply_externally(self._settings.credit_line_api_url, inp)
        with session_scope(self._engine) as session:
            applied = steps.apply_limit_and_close(
                session,
                inp.appeal_id,
                new_limit_minor=inp.new_limit_minor,
                at=inp.at,
                notice_seq=inp.notice_seq,
                source=source,
                reasons=inp.reasons,
                notices=self._notices,
            )
        self._send(applied.to_deliver)
        return StepResult(status=applied.status)

    def _apply_externally(self, url: str, inp: ApplyLimitInput) -> None:
        with session_scope(self._engine, read_only=True) as session:
            appeal = get_appeal(session, inp.appeal_id)
            account = session.get(CreditAccount, appeal.account_id)
            currency = account.currency if account else "CNY"
            # The mirror is written only after the API accepted: once it exists, a retry of this
            # activity (say after a crash before it completed) calls no one.
            if session.exec(select(LimitEvent.id).where(LimitEvent.appeal_id == appeal.id)).first():
                return
        try:
            apply_limit_externally(
                url,
                self._settings.credit_line_api_token,
                appeal_id=appeal.id,
                account_id=appeal.account_id,
                new_limit_minor=inp.new_limit_minor,
                currency=currency,
                timeout=self._settings.credit_line_api_timeout_seconds,
            )
        except CreditLineRefused as exc:
            raise ApplicationError(
                str(exc),
                {"status_code": exc.status_code, "body": exc.body[:2000]},
                type="LimitRefused",
                non_retryable=True,
            ) from exc
        except CreditLineUnavailable as exc:
            raise ApplicationError(str(exc), type="CreditLineUnavailable") from exc

    @activity.defn(name="record_limit_refusal")
    def record_limit_refusal(self, inp: LimitRefusalInput) -> StepResult:
        with session_scope(self._engine) as session:
            refused = steps.record_limit_refusal(
                session, inp.appeal_id, at=inp.at, refusal=inp.refusal, details=inp.details
            )
        return StepResult(status=refused.status)

    @activity.defn(name="withdraw")
    def withdraw(self, inp: WithdrawInput) -> StepResult:
        with session_scope(self._engine) as session:
            withdrawn = steps.withdraw(
                session,
                inp.appeal_id,
                at=inp.at,
                notice_seq=inp.notice_seq,
                requested_by=inp.requested_by,
                reason=inp.reason,
                notices=self._notices,
            )
        self._send(withdrawn.to_deliver)
        return StepResult(status=withdrawn.status)

    @activity.defn(name="expire")
    def expire(self, inp: NoticeStepInput) -> StepResult:
        with session_scope(self._engine) as session:
            expired = steps.expire(
                session, inp.appeal_id, at=inp.at, notice_seq=inp.notice_seq, notices=self._notices
            )
        self._send(expired.to_deliver)
        return StepResult(status=expired.status)

    @activity.defn(name="remind")
    def remind(self, inp: RemindInput) -> StepResult:
        with session_scope(self._engine) as session:
            reminded = steps.remind(
                session,
                inp.appeal_id,
                notice_seq=inp.notice_seq,
                days_left=inp.days_left,
                notices=self._notices,
            )
        self._send(reminded.to_deliver)
        return StepResult(status=reminded.status)

    @activity.defn(name="record_sla_event")
    def record_sla_event(self, inp: SlaEventInput) -> None:
        with session_scope(self._engine) as session:
            record_sla_event(session, appeal_id=inp.appeal_id, task_id=inp.task_id, kind=inp.kind)

    def all(self) -> list[Any]:
        return [
            self.open_appeal,
            self.check_documents,
            self.start_human_review,
            self.close_after_decline,
            self.decide,
            self.apply_limit,
            self.record_limit_refusal,
            self.withdraw,
            self.expire,
            self.remind,
            self.record_sla_event,
        ]


def _checked(checked: steps.Checked) -> Checked:
    return Checked(
        status=checked.status,
        missing=checked.missing,
        recommendation=checked.recommendation,
        suggested_limit_minor=checked.suggested_limit_minor,
        risk_tier=checked.risk_tier,
        reasons=checked.reasons,
        task_id=checked.task_id,
        task_due_at=checked.task_due_at,
        task_assignee=checked.task_assignee,
        task_version=checked.task_version,
    )
