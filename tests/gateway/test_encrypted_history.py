"""With the codec on (tests/conftest.py's client encrypts as every deployed client does), an
appeal runs on the real dev server, and its history is read as anyone with access to Temporal
but not the key reads it: a client without the codec. No customer field is in it in plain text,
except the customer id in the search attributes, which carry IDs and codes only; with the codec
the history decodes, and the codec server decodes it for staff and for no one else.

The appeal takes the request-information path (tests/workflows/appeal_paths.py): submitted,
documents uploaded, claimed by a reviewer who asks for more with a note, the new document, then
an approval; so its history holds the input, activity results, signals, updates with free text
and every search attribute the workflow sets."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads, SearchAttributes
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from core.auth import Role, mint_token
from core.db import make_engine, session_scope
from core.db.case_tables import Appeal
from core.db.ledger_tables import Customer
from core.db.migrate import create_all_at_head
from core.settings import Settings
from core.status import AppealStatus
from core.storage import ensure_bucket, make_s3_client
from gateway.codec import AesGcmCodec, decode_history, is_encrypted, transform_payloads
from launcher.codec_server import create_codec_app
from tests.conftest import make_settings
from tests.workflows.appeal_paths import TerminalPath, path_runner
from workflows.messages import AppealInput, AppealResult
from workflows.search_attributes import ALL_KEYS

NOTE = "Please add a letter from your employer."  # the reviewer's request (appeal_paths.py)
RISK_TIERS = {"LOW", "MEDIUM", "HIGH"}
# No spaces, no @ or +: no names, addresses or sentences. Empty: an attribute cleared.
ID_OR_CODE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.:-]*)?")


@dataclass(frozen=True)
class Ran:
    appeal_id: str
    workflow_id: str
    customer_id: str
    account_id: str
    name: str
    email: str
    phone: str
    settings: Settings
    codec: AesGcmCodec
    raw: WorkflowHistory  # as stored: read by a client without the codec
    raw_client: Client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ran(
    temporal_client: Client, temporal_address: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Ran]:
    codec = temporal_client.data_converter.payload_codec
    assert isinstance(codec, AesGcmCodec), "the test client encrypts, as deployed clients do"
    settings = make_settings(tmp_path_factory.mktemp("encrypted"), s3_endpoint_url=s3_endpoint)
    s3 = make_s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    engine = make_engine(f"sqlite:///{settings.data_dir / 'appeals.db'}")
    create_all_at_head(engine)
    try:
        async with path_runner(temporal_client, settings, engine, s3) as runner:
            run = await runner.run_terminal(TerminalPath.REQUEST_INFO)
        with session_scope(engine, read_only=True) as session:
            appeal = session.get(Appeal, run.appeal_id)
            assert appeal is not None
            customer = session.get(Customer, appeal.customer_id)
            assert customer is not None and customer.email and customer.phone
            facts = (appeal.customer_id, appeal.account_id, customer.name, customer.email, customer.phone)
        raw_client = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
        raw = await raw_client.get_workflow_handle(run.workflow_id).fetch_history()
        yield Ran(run.appeal_id, run.workflow_id, *facts, settings, codec, raw, raw_client)
    finally:
        engine.dispose()


def _without_search_attributes(history: WorkflowHistory) -> bytes:
    """The stored history's bytes with the search attributes (not encrypted by design) taken out."""
    events = []
    for event in history.events:
        copy = type(event)()
        copy.CopyFrom(event)
        # Only where present: touching another event's attributes would replace its own.
        if copy.HasField("workflow_execution_started_event_attributes"):
            copy.workflow_execution_started_event_attributes.ClearField("search_attributes")
        if copy.HasField("upsert_workflow_search_attributes_event_attributes"):
            copy.upsert_workflow_search_attributes_event_attributes.ClearField("search_attributes")
        events.append(copy.SerializeToString())
    return b"".join(events)


async def payloads_in(history: WorkflowHistory) -> list[Payload]:
    """Every payload of the history but its search attributes, in order."""
    seen: list[Payload] = []

    async def collect(payloads: Any) -> list[Payload]:
        seen.extend(payloads)
        return list(payloads)

    for event in history.events:
        await transform_payloads(event, collect)
    return seen


async def test_what_temporal_stores_has_no_customer_field_in_plain_text(ran: Ran) -> None:
    stored = _without_search_attributes(ran.raw)
    as_json = ran.raw.to_json().encode()
    for field in (ran.account_id, ran.name, ran.email, ran.phone, NOTE):
        assert field.encode() not in stored and field.encode() not in as_json, field
    # The customer id is a search attribute (AppealCustomerId) and nowhere else.
    assert ran.customer_id.encode() not in stored
    assert ("AppealCustomerId", ran.customer_id) in _search_attribute_values(ran.raw)
    # Every payload of the history (input, activity arguments and results, signals, updates and
    # their results, the summary, failures) is ciphertext under the session's key.
    payloads = await payloads_in(ran.raw)
    kinds = {event.event_type for event in ran.raw.events}
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED in kinds
    assert len(payloads) > 20
    assert all(is_encrypted(p) for p in payloads), [p.metadata for p in payloads if not is_encrypted(p)]
    # A client without the key sees the summary as ciphertext too.
    description = await ran.raw_client.get_workflow_handle(ran.workflow_id).describe()
    summary = description.raw_description.execution_config.user_metadata.summary
    assert is_encrypted(summary) and ran.account_id.encode() not in summary.SerializeToString()


async def test_with_the_codec_the_history_decodes(ran: Ran, temporal_client: Client) -> None:
    decoded = await decode_history(ran.raw, ran.codec)
    assert not any(is_encrypted(p) for p in await payloads_in(decoded))
    started = decoded.events[0].workflow_execution_started_event_attributes
    (inp,) = pydantic_data_converter.payload_converter.from_payloads(started.input.payloads, [AppealInput])
    assert (inp.appeal_id, inp.customer_id, inp.account_id) == (
        ran.appeal_id,
        ran.customer_id,
        ran.account_id,
    )
    assert NOTE.encode() in _without_search_attributes(decoded)  # the decision's note, in the update
    # The service's own client reads it all: the summary, the result.
    handle = temporal_client.get_workflow_handle(ran.workflow_id, result_type=AppealResult)
    assert ran.account_id in (await (await handle.describe()).static_summary() or "")
    assert (await handle.result()).status is AppealStatus.CLOSED


async def test_the_codec_server_decodes_the_history_for_staff_only(ran: Ran) -> None:
    started = ran.raw.events[0].workflow_execution_started_event_attributes
    body = json_format.MessageToJson(Payloads(payloads=started.input.payloads))
    app = create_codec_app(ran.settings, ran.codec)
    headers = {"Content-Type": "application/json", "X-Namespace": "default"}

    def bearer(role: Role, subject: str) -> dict[str, str]:
        return {**headers, "Authorization": f"Bearer {mint_token(ran.settings, role=role, subject=subject)}"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        for role in (Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SUPERVISOR, Role.ADMIN):
            answer = await http.post("/decode", content=body, headers=bearer(role, "staff-1"))
            assert answer.status_code == 200, (role, answer.text)
            (payload,) = json_format.Parse(answer.content, Payloads()).payloads
            assert not is_encrypted(payload)
            assert json.loads(payload.data)["account_id"] == ran.account_id
        refused = {
            "customer": await http.post(
                "/decode", content=body, headers=bearer(Role.CUSTOMER, ran.customer_id)
            ),
            "none": await http.post("/decode", content=body, headers=headers),
        }
    assert refused["customer"].status_code == 403 and refused["customer"].json()["code"] == "staff_only"
    assert refused["none"].status_code == 401 and refused["none"].json()["code"] == "missing_token"
    for answer in refused.values():
        assert ran.account_id not in answer.text


def _search_attribute_values(history: WorkflowHistory) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for event in history.events:
        if event.HasField("workflow_execution_started_event_attributes"):
            found += _pairs(event.workflow_execution_started_event_attributes.search_attributes)
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            found += _pairs(event.upsert_workflow_search_attributes_event_attributes.search_attributes)
    return found


def _pairs(attributes: SearchAttributes) -> list[tuple[str, Any]]:
    """Each value set (an attribute unset is sent as null); datetimes parsed."""
    pairs: list[tuple[str, Any]] = []
    for name, payload in attributes.indexed_fields.items():
        value = pydantic_data_converter.payload_converter.from_payloads([payload])[0]
        for item in value if isinstance(value, list) else [value]:
            if item is not None and payload.metadata.get("type") == b"Datetime":
                item = datetime.fromisoformat(item)
            if item is not None:
                pairs.append((name, item))
    return pairs


async def test_search_attributes_carry_ids_and_codes_only(ran: Ran) -> None:
    ours = {key.name for key in ALL_KEYS}
    described = await ran.raw_client.get_workflow_handle(ran.workflow_id).describe()
    now = _pairs(described.raw_description.workflow_execution_info.search_attributes)
    pairs = _search_attribute_values(ran.raw) + [(name, value) for name, value in now if name in ours]
    names = {name for name, _ in pairs}
    assert {"AppealStatus", "AppealCustomerId", "AppealReviewer"} <= names, names
    assert names <= ours, names
    # Beside ours, only Temporal's own (the worker's build id), never set by the service.
    assert {name for name, _ in now} - ours <= {"BuildIds"}, now
    personal = (ran.name, ran.email, ran.phone, ran.account_id, NOTE, *NOTE.split())
    for name, value in pairs:
        if name == "AppealSlaDueAt":
            assert isinstance(value, datetime), value
            continue
        assert isinstance(value, str) and ID_OR_CODE.fullmatch(value), (name, value)
        assert not any(text.lower() in value.lower() for text in personal if len(text) > 3), (name, value)
        if name == "AppealStatus":
            assert value in {status.value for status in AppealStatus}
        elif name == "AppealRiskTier":
            assert value in RISK_TIERS, value
        elif name == "AppealCustomerId":
            assert value == ran.customer_id
        elif name == "AppealReviewer":
            assert value in ("r-paths-1", "")  # the reviewer's id, never a name; "" once released


def test_the_id_pattern_refuses_names_addresses_and_sentences() -> None:
    for value in ("c-1002", "r-1", "tc-12-345", "PENDING_REVIEW", str(uuid.uuid4())):
        assert ID_OR_CODE.fullmatch(value)
    for value in ("Li Wei", "li.wei@example.com", "+8613800000000", NOTE):
        assert not ID_OR_CODE.fullmatch(value)
