"""The limit-action activities (docs/lender-loop.md, "Limit actions"): evaluate and apply the
limit action for one risk event (core/lender/limit_actions.py, once per event), then send the
notices it planned (core/notifications/account_notices.py, at most once per channel).

Synchronous (SQLAlchemy, SMTP): they run in the worker's thread pool, like the appeal steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.lender.limit_actions import LimitActionResult, act_on_event
from core.notifications.account_notices import send_account_notices
from core.notifications.channels import senders_from_settings
from core.notifications.channels.base import Sender, SendError
from core.policy.loader import LoadedPolicy, load_default_policy
from core.settings import Settings


class LimitActionInput(BaseModel):
    event_id: str
    account_id: str


class LimitActionDone(LimitActionResult):
    """What the limit action for the event did, and whether its notices went out."""

    notices_sent: bool | None = None  # set by the workflow once the notices were sent (or not)


class SendNoticesInput(BaseModel):
    notice_ids: list[int]


class LimitActionActivities:
    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        senders: Mapping[str, Sender] | None = None,
        policy: Callable[[], LoadedPolicy] = load_default_policy,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._senders = senders
        self._policy = policy

    @activity.defn(name="apply_limit_action")
    def apply_limit_action(self, inp: LimitActionInput) -> LimitActionDone:
        with session_scope(self._engine) as session:
            result = act_on_event(
                session,
                event_id=inp.event_id,
                policy=self._policy().policy,
                today=self._clock.today(),
                now=self._clock.now(),
            )
        return LimitActionDone.model_validate(result.model_dump())

    @activity.defn(name="send_account_notices")
    def send_account_notices(self, inp: SendNoticesInput) -> None:
        if self._senders is None:
            self._senders = senders_from_settings(self._settings)
        try:
            send_account_notices(self._engine, inp.notice_ids, self._senders, raise_errors=True)
        except SendError as exc:
            raise ApplicationError(
                str(exc), type=type(exc).__name__, non_retryable=not exc.retryable
            ) from exc

    def all(self) -> list[Any]:
        return [self.apply_limit_action, self.send_account_notices]
