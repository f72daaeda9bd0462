"""The one door to Temporal for the API and the worker's reconciler: start appeals, send
signals, deliver decisions. Callers name appeals by id; the workflow id is `workflow_id_for`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, Interceptor, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from core.appeals.service import workflow_id_for
from core.appeals.timing import collection_timing, human_review_window
from core.db.case_tables import Appeal
from core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, ServiceUnavailable
from core.notifications.rendering import format_money
from core.policy.loader import load_default_policy
from core.settings import Settings
from core.status import AppealStatus
from gateway.codec import payload_codec
from workflows.appeal import AppealWorkflow
from workflows.messages import (
    AppealInput,
    DecisionAccepted,
    DocumentUploaded,
    HumanReviewRequest,
    ReviewClaim,
    ReviewDecision,
    WithdrawRequest,
)
from workflows.search_attributes import APPEAL_CUSTOMER_ID, APPEAL_STATUS

T = TypeVar("T")


def converter_with(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic data converter, with `codec` on every payload and failure messages and stack
    traces moved into an encoded payload too (they can quote what a step was given); without a
    codec, the plain pydantic converter."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    """What every client and worker of this service converts payloads with: encrypted with the
    configured keys (gateway/codec.py); in production, keys are required (PayloadKeyError)."""
    return converter_with(payload_codec(settings))


def core_log_config() -> LoggingConfig:
    """The SDK core's own log (its warnings, errors elsewhere) forwarded to Python logging, so
    that it leaves as the process's other lines do (core/logs.py JSON) instead of as the core's
    text on stderr. Part of any Runtime this service makes (its telemetry's `logging`)."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )


def forward_core_logs() -> None:
    """Once per process, before its first client connects: the default runtime with
    `core_log_config`."""
    global _core_logs_forwarded
    if not _core_logs_forwarded:
        Runtime.set_default(
            Runtime(telemetry=TelemetryConfig(logging=core_log_config())), error_if_already_set=False
        )
        _core_logs_forwarded = True


_core_logs_forwarded = False


async def connect_temporal(
    settings: Settings, interceptors: Sequence[Interceptor] = (), *, runtime: Runtime | None = None
) -> Client:
    """`interceptors`: the tracing one when traces are on (core/tracing.py); a worker on
    this client runs them too. With `runtime`, the client (and a worker on it) reports the SDK's
    metrics through it (launcher/worker_metrics.py); without, through the default runtime."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=interceptors,
        runtime=runtime,
    )


class TemporalGateway:
    def __init__(
        self, settings: Settings, client: Client | None = None, *, interceptors: Sequence[Interceptor] = ()
    ) -> None:
        self._settings = settings
        self._client = client
        self._interceptors = interceptors
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await self._in_time(
                            connect_temporal(self._settings, self._interceptors)
                        )
                    except (RuntimeError, OSError) as exc:
                        raise _unreachable() from exc
        return self._client

    async def _in_time(self, call: Awaitable[T]) -> T:
        """A call on a request's path: an outage answers in seconds (ServiceUnavailable), not
        after the client's own retries; what was not sent is the reconciler's to send."""
        try:
            return await asyncio.wait_for(call, self._settings.temporal_request_timeout_seconds)
        except TimeoutError as exc:
            raise _unreachable() from exc

    async def start_appeal(self, appeal: Appeal) -> None:
        client = await self.client()
        timing = collection_timing(self._settings)
        four_eyes = load_default_policy().policy.four_eyes
        inp = AppealInput(
            appeal_id=appeal.id,
            customer_id=appeal.customer_id,
            account_id=appeal.account_id,
            requested_limit_minor=appeal.requested_limit_minor,
            document_deadline=timing.deadline,
            document_reminders=list(timing.reminders),
            human_review_window=human_review_window(self._settings),
            four_eyes_min_amount_minor=four_eyes.min_amount_minor,
            four_eyes_risk_tiers=[tier.value for tier in four_eyes.risk_tiers],
            review_due=self._settings.review_due,
        )
        try:
            await self._in_time(
                client.start_workflow(
                    AppealWorkflow.run,
                    inp,
                    id=workflow_id_for(appeal.id),
                    task_queue=self._settings.temporal_task_queue,
                    # A retried start (reconciler, client retry) attaches to the running one.
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    # An appeal runs once: a start retried after its run ended (a reconciler that
                    # never heard the first start succeed) must not run it again.
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(APPEAL_STATUS, AppealStatus.SUBMITTED.value),
                            SearchAttributePair(APPEAL_CUSTOMER_ID, appeal.customer_id),
                        ]
                    ),
                    static_summary=(
                        f"Limit-restore appeal {appeal.id} · account {appeal.account_id} · "
                        f"requested {format_money(appeal.requested_limit_minor)}"
                    ),
                    static_details=(
                        f"Customer `{appeal.customer_id}`; case file: `GET /appeals/{appeal.id}`"
                    ),
                )
            )
        except WorkflowAlreadyStartedError:
            return  # a closed run of this appeal: it already ran
        except RPCError as exc:
            if exc.status == RPCStatusCode.ALREADY_EXISTS:
                return
            raise ServiceUnavailable(
                "The workflow service refused the start; please retry.", code="temporal_unavailable"
            ) from exc

    async def start_limit_action(self, *, workflow_id: str, event_id: str, account_id: str) -> None:
        """Starts the limit action of one applied risk event (workflows/limit_action.py). Once per
        event ever (REJECT_DUPLICATE): a redelivered event or a retried start does nothing."""
        from workflows.limit_action import LimitActionInput, LimitActionWorkflow

        client = await self.client()
        try:
            await self._in_time(
                client.start_workflow(
                    LimitActionWorkflow.run,
                    LimitActionInput(event_id=event_id, account_id=account_id),
                    id=workflow_id,
                    task_queue=self._settings.temporal_task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    static_summary=f"Limit action · account {account_id} · risk event {event_id}",
                )
            )
        except WorkflowAlreadyStartedError:
            return
        except RPCError as exc:
            if exc.status == RPCStatusCode.ALREADY_EXISTS:
                return
            raise _unreachable() from exc

    async def _signal(self, appeal_id: str, signal: Any, arg: Any) -> None:
        client = await self.client()
        try:
            await self._in_time(client.get_workflow_handle(workflow_id_for(appeal_id)).signal(signal, arg))
        except RPCError as exc:
            raise _rpc_problem(
                exc, Conflict("The appeal is no longer running.", code="appeal_closed")
            ) from exc

    async def document_uploaded(self, appeal_id: str, document_id: str) -> None:
        await self._signal(
            appeal_id, AppealWorkflow.document_uploaded, DocumentUploaded(document_id=document_id)
        )

    async def withdraw(self, appeal_id: str, request: WithdrawRequest) -> None:
        await self._signal(appeal_id, AppealWorkflow.withdraw, request)

    async def review_claim_changed(self, appeal_id: str, claim: ReviewClaim) -> None:
        await self._signal(appeal_id, AppealWorkflow.review_claim_changed, claim)

    async def request_human_review(
        self, appeal_id: str, request: HumanReviewRequest, *, update_id: str
    ) -> None:
        client = await self.client()
        try:
            await client.get_workflow_handle(workflow_id_for(appeal_id)).execute_update(
                AppealWorkflow.request_human_review, request, id=update_id
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise Conflict(message, code="human_review_not_available") from exc
        except RPCError as exc:
            raise _rpc_problem(
                exc, Conflict("The appeal is no longer running.", code="appeal_closed")
            ) from exc

    async def decide(self, appeal_id: str, decision: ReviewDecision, *, update_id: str) -> DecisionAccepted:
        client = await self.client()
        handle = client.get_workflow_handle(workflow_id_for(appeal_id))
        try:
            return await asyncio.wait_for(
                handle.execute_update(AppealWorkflow.decide, decision, id=update_id),
                timeout=timedelta(seconds=60).total_seconds(),
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            kind = cause.type if isinstance(cause, ApplicationError) else None
            if kind == "NotClaimHolder":
                raise Forbidden(message, code="not_claim_holder") from exc
            if kind == "InvalidDecision":
                raise InvalidInput(message, code="decision_invalid") from exc
            raise Conflict(message, code="decision_rejected") from exc
        except RPCError as exc:
            missing = NotFound("The appeal's workflow was not found.", code="appeal_not_running")
            raise _rpc_problem(exc, missing) from exc
        except TimeoutError as exc:
            raise ServiceUnavailable(
                "The decision was not confirmed in time; retry with the same Idempotency-Key.",
                code="decision_timeout",
            ) from exc


def _unreachable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The workflow service is unreachable; please retry shortly.", code="temporal_unavailable"
    )


def _rpc_problem(exc: RPCError, when_missing: DomainError) -> DomainError:
    """What a failed call about one appeal's workflow means to the API's caller."""
    if exc.status == RPCStatusCode.NOT_FOUND:
        return when_missing
    return ServiceUnavailable(
        "The workflow service is unreachable; please retry.", code="temporal_unavailable"
    )
