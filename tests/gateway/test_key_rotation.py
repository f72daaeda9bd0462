"""Rotating the payload key while an appeal runs (gateway/codec.py): the appeal is started by a
client that encrypts with k1; a worker that encrypts with k2 and still knows k1 carries it to
its end on the real dev server. Its history then holds payloads under both ids, and reads with
both keys; without k1 it does not."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.appeals.service import NewAppeal, create_appeal, workflow_id_for
from core.db import session_scope
from core.settings import Settings
from core.status import AppealStatus
from core.storage import make_s3_client
from gateway.codec import (
    KEY_ID_METADATA,
    PayloadKeys,
    UnknownPayloadKey,
    decode_history,
    new_key,
    payload_codec,
)
from gateway.temporal import TemporalGateway, data_converter
from tests.eventually import patience
from tests.factories import make_customer
from tests.gateway.test_encrypted_history import payloads_in
from tests.workflows.conftest import running_worker
from workflows.messages import AppealResult


def keyed(settings: Settings, keys: dict[str, str], encrypt_with: str) -> Settings:
    return settings.model_copy(
        update={"payload_keys": {k: SecretStr(v) for k, v in keys.items()}, "payload_key_id": encrypt_with}
    )


async def test_an_appeal_started_under_k1_ends_under_k2_and_reads_with_both(
    temporal_address: str, settings: Settings, sqlite_engine: Engine
) -> None:
    k1, k2 = new_key(), new_key()
    before = keyed(settings, {"k1": k1}, "k1")
    after = keyed(settings, {"k1": k1, "k2": k2}, "k2")
    old_client = await Client.connect(temporal_address, data_converter=data_converter(before))
    new_client = await Client.connect(temporal_address, data_converter=data_converter(after))

    # Still owes on its last bill: the appeal is INELIGIBLE after its first step, then closes.
    customer = make_customer(sqlite_engine, unpaid_minor=12_345)
    with session_scope(sqlite_engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 700_000))
    await TemporalGateway(before, old_client).start_appeal(appeal)  # no worker yet: only k1 so far
    s3: Any = make_s3_client(settings)
    async with running_worker(new_client, after, sqlite_engine, s3):
        handle = new_client.get_workflow_handle(workflow_id_for(appeal.id), result_type=AppealResult)
        result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status is AppealStatus.INELIGIBLE

    raw_client = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    raw = await raw_client.get_workflow_handle(handle.id).fetch_history()
    key_ids = [p.metadata[KEY_ID_METADATA] for p in await payloads_in(raw)]
    assert key_ids[0] == b"k1"  # the input, from the old client
    assert set(key_ids) == {b"k1", b"k2"}, key_ids  # the worker's commands, under k2
    both = payload_codec(after)
    assert both is not None
    decoded = await decode_history(raw, both)
    started = decoded.events[0].workflow_execution_started_event_attributes
    assert customer.account_id.encode() in started.input.payloads[0].data
    # A process still on the old keys cannot read what the new key wrote: roll the new key out
    # to every client, worker and codec server (k1 kept) before any encrypts with it.
    with pytest.raises(UnknownPayloadKey, match="'k2'"):
        await old_client.get_workflow_handle(handle.id, result_type=AppealResult).result()
    k2_only = payload_codec(keyed(settings, {"k2": k2}, "k2"))
    assert k2_only is not None
    with pytest.raises(UnknownPayloadKey, match="'k1'"):
        await decode_history(raw, k2_only)
    assert PayloadKeys.from_settings(after) == PayloadKeys(
        {"k1": base64.b64decode(k1), "k2": base64.b64decode(k2)}, "k2"
    )
