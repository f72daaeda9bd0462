from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.appeal import AppealActivities
from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.settings import Settings
from launcher.worker import build_worker
from workflows.appeal import AppealWorkflow
from workflows.messages import AppealInput
from workflows.search_attributes import ALL_KEYS


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, engine: Engine, s3: Any = None
) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        activities = AppealActivities(engine=engine, s3_client=s3, settings=settings)
        async with build_worker(client, settings, activities, executor) as worker:
            yield worker


async def start_appeal(
    client: Client,
    settings: Settings,
    engine: Engine,
    customer_id: str,
    account_id: str,
    *,
    requested_limit_minor: int = 800_000,
    deadline: timedelta = timedelta(days=7),
    review_due: timedelta = timedelta(hours=24),
    reminders: tuple[timedelta, ...] = (),
) -> WorkflowHandle[AppealWorkflow, Any]:
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer_id, account_id, requested_limit_minor))
    return await client.start_workflow(
        AppealWorkflow.run,
        AppealInput(
            appeal_id=appeal.id,
            customer_id=customer_id,
            account_id=account_id,
            requested_limit_minor=requested_limit_minor,
            document_deadline=deadline,
            document_reminders=list(reminders),
            review_due=review_due,
        ),
        id=appeal.workflow_id,
        task_queue=settings.temporal_task_queue,
    )


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server starts without them; the dev server gets them at start."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in ALL_KEYS
            },
        )
    )


def unique_queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


Factory = Callable[..., Any]
