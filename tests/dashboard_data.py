"""A supervisor dashboard's worth of case data built in code, at a fixed instant, with every
number the dashboard should show worked out by hand (tests/core/reviews/test_dashboard.py,
tests/api/pages/test_dashboard_pages.py).

NOW is 2025-03-10 12:00 UTC, 20:00 in Shanghai. Over the last 3 days in Shanghai (8, 9 and 10
March; day starts at 16:00 UTC the evening before) the decisions are:

    appeal  submitted (UTC)   decided (UTC)     Shanghai day  decision                 risk tier
    A1      7 Mar 10:00       7 Mar 15:59       7 Mar (out)   automatic approve        LOW
    A2      7 Mar 14:00       7 Mar 16:00       8 Mar         automatic approve  (2h)  LOW
    A3      8 Mar 06:00       8 Mar 10:00       8 Mar         automatic partial  (4h)  MEDIUM
    A4      8 Mar 09:59       8 Mar 15:59       8 Mar         automatic decline  (6h)  HIGH (run 1)
    A4      (human review)    9 Mar 17:00       10 Mar        manual approve  (31h01)  MEDIUM (run 2)
    A5      6 Mar 03:00       9 Mar 03:00       9 Mar         manual partial    (72h)  HIGH
    A6      9 Mar 11:00       10 Mar 11:00      10 Mar        manual decline    (24h)  LOW
    A7      9 Mar 16:00       10 Mar 16:00      11 Mar (out)  manual decline           LOW
    A8      9 Mar 08:00       9 Mar 20:00       10 Mar        manual approve    (12h)  none

Open tasks at NOW (the SLA warning at 80% of the way from creation to due):

    task  queue          status   created      due          SLA       age band  escalated
    T1    review         OPEN     NOW-1h       NOW+23h      on time   <4h
    T2    review         OPEN     NOW-4h       NOW+20h      on time   4-8h
    T3    review         CLAIMED  NOW-20h      NOW+4h       warning   8-24h
    T4    escalation     CLAIMED  NOW-30h      NOW-6h       breached  1-3d      yes (priority 10)
    T5    review         OPEN     NOW-24h      NOW          breached  1-3d      (due now)
    T6    second-review  OPEN     NOW-4d       NOW-3d       breached  >3d
    T9    escalation     OPEN     NOW-72h      NOW-48h      breached  >3d       yes (priority 10)
    T7, T8: COMPLETED and CANCELLED, not open.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.appeals.audit import append_event
from core.db import session_scope
from core.db.case_tables import Appeal, Assessment, Recommendation, ReviewTask, TaskStatus
from core.db.ledger_tables import AccountStatus, CreditAccount, Customer
from core.status import AppealStatus

S = AppealStatus
NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
WARNING_FRACTION = 0.8
H = timedelta(hours=1)

_ids = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


class CaseBuilder:
    """Appeals, their decisions and assessments, and review tasks, written as they are stored."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.customer_id = f"dash-c-{next(_ids)}-{uuid.uuid4().hex[:6]}"
        session.add(Customer(id=self.customer_id, name="Dashboard Customer", locale="en"))
        session.flush()

    def appeal(
        self,
        *,
        submitted: datetime,
        requested_minor: int = 500_000,
        decided_minor: int | None = None,
        is_open: bool = False,
    ) -> str:
        account_id = f"{self.customer_id}-a{next(_ids)}"
        self.session.add(
            CreditAccount(
                id=account_id,
                customer_id=self.customer_id,
                status=AccountStatus.FROZEN,
                original_limit_minor=800_000,
                current_limit_minor=0,
                opened_on=date(2022, 1, 1),
            )
        )
        self.session.flush()
        appeal_id = str(uuid.uuid4())
        self.session.add(
            Appeal(
                id=appeal_id,
                customer_id=self.customer_id,
                account_id=account_id,
                requested_limit_minor=requested_minor,
                status=S.SUBMITTED,
                is_open=is_open,
                workflow_id=f"appeal-{appeal_id}",
                decided_limit_minor=decided_minor,
                created_at=submitted,
                updated_at=submitted,
            )
        )
        self.session.flush()
        append_event(
            self.session,
            appeal_id=appeal_id,
            at=submitted,
            actor="customer",
            kind="submitted",
            to_status=S.SUBMITTED,
        )
        return appeal_id

    def moved(
        self, appeal_id: str, when: datetime, to_status: AppealStatus, from_status: AppealStatus
    ) -> None:
        append_event(
            self.session,
            appeal_id=appeal_id,
            at=when,
            actor="workflow",
            kind="status_changed",
            from_status=from_status,
            to_status=to_status,
        )

    def assessment(self, appeal_id: str, *, run: int, tier: str, made: datetime) -> None:
        self.session.add(
            Assessment(
                appeal_id=appeal_id,
                run=run,
                rule_id="limit-restore-v1",
                rule_hash="0" * 64,
                score=600,
                risk_tier=tier,
                recommendation=Recommendation.MANUAL_REVIEW,
                suggested_limit_minor=400_000,
                created_at=made,
            )
        )
        self.session.flush()

    def task(
        self,
        *,
        queue: str,
        status: TaskStatus,
        created: datetime,
        due: datetime,
        assignee: str | None = None,
        escalated: bool = False,
        priority: int = 0,
        required_role: str = "reviewer",
        stage: int = 1,
    ) -> str:
        appeal_id = self.appeal(submitted=created - 2 * H, is_open=False)
        task_id = str(uuid.uuid4())
        self.session.add(
            ReviewTask(
                id=task_id,
                appeal_id=appeal_id,
                customer_id=self.customer_id,
                stage=stage,
                risk_tier="MEDIUM",
                queue=queue,
                status=status,
                priority=priority,
                required_role=required_role,
                assignee=assignee,
                escalated=escalated,
                due_at=due,
                claimed_at=created if assignee else None,
                created_at=created,
            )
        )
        self.session.flush()
        return task_id


@dataclass(frozen=True)
class Scenario:
    tasks: dict[str, str]  # T1..T9 -> task id
    appeals: dict[str, str]  # A1..A8 -> appeal id


def build_scenario(engine: Engine) -> Scenario:
    with session_scope(engine) as session:
        b = CaseBuilder(session)
        appeals: dict[str, str] = {}

        def decided(
            name: str,
            submitted: datetime,
            when: datetime,
            status: AppealStatus,
            tier: str | None,
            *,
            requested_minor: int = 500_000,
            decided_minor: int | None = None,
        ) -> str:
            appeal_id = b.appeal(
                submitted=submitted, requested_minor=requested_minor, decided_minor=decided_minor
            )
            if tier is not None:
                b.assessment(appeal_id, run=1, tier=tier, made=when - timedelta(minutes=30))
            before = S.CHECKING if status in (S.AUTO_APPROVED, S.AUTO_DECLINED) else S.IN_REVIEW
            b.moved(appeal_id, submitted + timedelta(minutes=1), S.AWAITING_DOCUMENTS, S.SUBMITTED)
            b.moved(appeal_id, when, status, before)
            appeals[name] = appeal_id
            return appeal_id

        decided(
            "A1",
            at(7, 10),
            at(7, 15, 59),
            S.AUTO_APPROVED,
            "LOW",
            requested_minor=500_000,
            decided_minor=500_000,
        )
        decided(
            "A2", at(7, 14), at(7, 16), S.AUTO_APPROVED, "LOW", requested_minor=500_000, decided_minor=500_000
        )
        decided(
            "A3",
            at(8, 6),
            at(8, 10),
            S.AUTO_APPROVED,
            "MEDIUM",
            requested_minor=500_000,
            decided_minor=300_000,
        )
        a4 = decided(
            "A4",
            at(8, 9, 59),
            at(8, 15, 59),
            S.AUTO_DECLINED,
            None,
            requested_minor=500_000,
            decided_minor=500_000,
        )
        b.assessment(a4, run=1, tier="HIGH", made=at(8, 15))
        b.moved(a4, at(9, 9), S.PENDING_REVIEW, S.AUTO_DECLINED)  # the customer asked for a person
        b.assessment(a4, run=2, tier="MEDIUM", made=at(9, 12))  # after a request for information
        b.moved(a4, at(9, 17), S.APPROVED, S.IN_REVIEW)
        decided(
            "A5",
            at(6, 3),
            at(9, 3),
            S.PARTIALLY_APPROVED,
            "HIGH",
            requested_minor=500_000,
            decided_minor=300_000,
        )
        decided("A6", at(9, 11), at(10, 11), S.DECLINED, "LOW")
        decided("A7", at(9, 16), at(10, 16), S.DECLINED, "LOW")
        decided("A8", at(9, 8), at(9, 20), S.APPROVED, None, requested_minor=500_000, decided_minor=500_000)

        open_, claimed = TaskStatus.OPEN, TaskStatus.CLAIMED
        tasks = {
            "T1": b.task(queue="review", status=open_, created=NOW - H, due=NOW + 23 * H),
            "T2": b.task(queue="review", status=open_, created=NOW - 4 * H, due=NOW + 20 * H),
            "T3": b.task(
                queue="review", status=claimed, created=NOW - 20 * H, due=NOW + 4 * H, assignee="r-1"
            ),
            "T4": b.task(
                queue="escalation",
                status=claimed,
                created=NOW - 30 * H,
                due=NOW - 6 * H,
                assignee="r-2",
                escalated=True,
                priority=10,
            ),
            "T5": b.task(queue="review", status=open_, created=NOW - 24 * H, due=NOW),
            "T6": b.task(
                queue="second-review",
                status=open_,
                created=NOW - 96 * H,
                due=NOW - 72 * H,
                required_role="senior_reviewer",
                stage=2,
            ),
            "T7": b.task(queue="review", status=TaskStatus.COMPLETED, created=NOW - 5 * H, due=NOW - H),
            "T8": b.task(queue="review", status=TaskStatus.CANCELLED, created=NOW - 50 * H, due=NOW - 26 * H),
            "T9": b.task(
                queue="escalation",
                status=open_,
                created=NOW - 72 * H,
                due=NOW - 48 * H,
                escalated=True,
                priority=10,
            ),
        }
        return Scenario(tasks=tasks, appeals=appeals)
