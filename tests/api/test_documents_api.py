"""Document uploads and reads on the real app, database (SQLite and PostgreSQL), S3 server and
Temporal dev server: presigned POST + complete, the streamed multipart path, download links."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.client import Client

from api.app import create_app
from core.auth import Role
from core.clock import SYSTEM_CLOCK
from core.settings import Settings
from core.storage import make_s3_client
from gateway.temporal import TemporalGateway
from launcher.stack import free_port
from tests.api.conftest import Api
from tests.api.test_appeals_api import _assert_problem, _wait_status
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSV = b"date,description,amount,balance\n2026-09-01,Salary,8000.00,8000.00\n"
MiB = 1024 * 1024


async def _collecting_appeal(api: Api) -> tuple[str, dict[str, str]]:
    """A fresh customer's appeal, waiting in AWAITING_DOCUMENTS."""
    customer = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, customer.customer_id)
    response = await api.http.post(
        "/appeals",
        json={"account_id": customer.account_id, "requested_limit_minor": 1000},
        headers=me,
    )
    assert response.status_code == 201, response.text
    appeal_id: str = response.json()["id"]
    await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    return appeal_id, me


def _keys(api: Api, appeal_id: str) -> list[str]:
    listing = make_s3_client(api.settings).list_objects_v2(
        Bucket=api.settings.s3_bucket, Prefix=f"appeals/{appeal_id}/"
    )
    return [item["Key"] for item in listing.get("Contents", [])]


def _head(api: Api, key: str) -> dict[str, Any]:
    response: dict[str, Any] = make_s3_client(api.settings).head_object(
        Bucket=api.settings.s3_bucket, Key=key
    )
    return response


async def _documents(api: Api, appeal_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.http.get(f"/appeals/{appeal_id}/documents", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _start_upload(api: Api, appeal_id: str, me: dict[str, str], **overrides: Any) -> httpx.Response:
    body = {
        "doc_type": "BANK_STATEMENT",
        "content_type": "text/csv",
        "size_bytes": len(CSV),
        "filename": "statement.csv",
        **overrides,
    }
    return await api.http.post(f"/appeals/{appeal_id}/documents/uploads", json=body, headers=me)


async def _post_to_store(upload: dict[str, Any], content: bytes, filename: str) -> httpx.Response:
    """What a browser does with the presigned POST: the fields, then the file last."""
    async with httpx.AsyncClient(timeout=30) as store:
        return await store.post(
            upload["url"],
            data=upload["fields"],
            files={"file": (filename, content, upload["fields"]["Content-Type"])},
        )


async def test_presigned_upload_end_to_end(api: Api) -> None:
    appeal_id, me = await _collecting_appeal(api)
    started = await _start_upload(api, appeal_id, me, filename="../../我的 statement.csv")
    assert started.status_code == 201, started.text
    upload = started.json()
    document_id = upload["document_id"]
    expires_at = datetime.fromisoformat(upload["expires_at"])
    remaining = expires_at - SYSTEM_CLOCK.now()
    assert timedelta(minutes=9) < remaining <= api.settings.presigned_upload_expiry

    # The key is the server's, whatever the client called its file.
    key = upload["fields"]["key"]
    assert key == f"appeals/{appeal_id}/{document_id}" and "statement" not in key
    assert upload["fields"]["Content-Type"] == "text/csv"
    assert upload["fields"]["x-amz-server-side-encryption"] == "AES256"
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions and {"Content-Type": "text/csv"} in conditions
    # Exactly the declared size (issue 13): not 1 byte to the document limit.
    assert ["content-length-range", len(CSV), len(CSV)] in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions

    # Not uploaded yet: completing is a clear conflict, and the document is awaiting its file.
    _assert_problem(
        await api.http.post(f"/appeals/{appeal_id}/documents/{document_id}/complete", headers=me),
        409,
        "upload_missing",
    )
    [pending] = await _documents(api, appeal_id, me)
    assert pending["state"] == "AWAITING_UPLOAD" and pending["upload_method"] == "presigned"

    stored = await _post_to_store(upload, CSV, "我的 statement.csv")
    assert stored.status_code in (200, 201, 204), stored.text
    completed = await api.http.post(f"/appeals/{appeal_id}/documents/{document_id}/complete", headers=me)
    assert completed.status_code == 200, completed.text
    document = completed.json()
    assert document["id"] == document_id and document["state"] != "AWAITING_UPLOAD"
    assert document["size_bytes"] == len(CSV)
    assert document["filename"] == "我的 statement.csv"

    # Stored encrypted, under the server's key only.
    assert _keys(api, appeal_id) == [key]
    head = _head(api, key)
    assert head["ServerSideEncryption"] == "AES256" and head["ContentType"] == "text/csv"

    # The workflow verifies it: the document leaves UPLOADED with a verdict.
    async def document_state() -> str:
        state: str = next(d for d in await _documents(api, appeal_id, me) if d["id"] == document_id)["state"]
        return state

    state = await eventually(
        document_state,
        lambda s: s in ("ACCEPTED", "REJECTED"),
        what=f"a verdict (ACCEPTED or REJECTED) on document {document_id}",
    )

    # Completing again changes nothing and says so with the same document.
    again = await api.http.post(f"/appeals/{appeal_id}/documents/{document_id}/complete", headers=me)
    assert again.status_code == 200 and again.json()["id"] == document_id
    assert again.json()["state"] == state
    assert _keys(api, appeal_id) == [key]


async def test_presigned_upload_requests_are_validated(api: Api) -> None:
    appeal_id, me = await _collecting_appeal(api)
    _assert_problem(
        await _start_upload(api, appeal_id, me, content_type="application/x-msdownload"),
        415,
        "unsupported_document_type",
    )
    body = _assert_problem(
        await _start_upload(api, appeal_id, me, size_bytes=api.settings.document_max_bytes + 1),
        413,
        "document_too_large",
    )
    assert body["max_bytes"] == api.settings.document_max_bytes
    _assert_problem(
        await _start_upload(api, appeal_id, me, doc_type="PASSPORT"), 422, "unknown_document_type"
    )
    _assert_problem(await _start_upload(api, appeal_id, me, size_bytes=0), 422, "validation_failed")
    _assert_problem(await _start_upload(api, appeal_id, me, filename=None), 422, "validation_failed")
    # Another customer's appeal does not exist for them; reviewers do not upload.
    stranger = api.auth(Role.CUSTOMER, make_customer(api.engine).customer_id)
    _assert_problem(await _start_upload(api, appeal_id, stranger), 404, "appeal_not_found")
    _assert_problem(await _start_upload(api, appeal_id, api.auth(Role.REVIEWER, "r-1")), 403, "role_required")
    # Completing someone else's (or no) document is a 404 too.
    upload = (await _start_upload(api, appeal_id, me)).json()
    _assert_problem(
        await api.http.post(
            f"/appeals/{appeal_id}/documents/{upload['document_id']}/complete", headers=stranger
        ),
        404,
        "appeal_not_found",
    )
    _assert_problem(
        await api.http.post(f"/appeals/{appeal_id}/documents/nope/complete", headers=me),
        404,
        "document_not_found",
    )
    # Once the appeal stops collecting, no new uploads start.
    await api.http.post(f"/appeals/{appeal_id}/withdraw", headers=me)
    await _wait_status(api, appeal_id, me, "WITHDRAWN")
    _assert_problem(await _start_upload(api, appeal_id, me), 409, "not_collecting_documents")
    assert _keys(api, appeal_id) == []


class TestExpiredPresignedUpload:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"presigned_upload_expiry": timedelta(seconds=1)})

    async def test_expired_upload_is_gone_and_not_accepted(self, api: Api) -> None:
        appeal_id, me = await _collecting_appeal(api)
        upload = (await _start_upload(api, appeal_id, me)).json()
        document_id = upload["document_id"]
        expires_at = datetime.fromisoformat(upload["expires_at"])

        # The customer is late: the file reaches the store after the link expired, as the
        # store's own clock records it (Last-Modified, in whole seconds). The local store
        # enforces no policy, so a late file lands; until then each try just replaces it.
        async def store_late_file() -> datetime:
            stored = await _post_to_store(upload, CSV, "statement.csv")
            assert stored.status_code in (200, 201, 204), stored.text
            modified: datetime = _head(api, upload["fields"]["key"])["LastModified"]
            return modified

        await eventually(
            store_late_file,
            lambda modified: modified > expires_at,
            what=f"the store to record the file after the link expired at {expires_at}",
        )
        # The API refuses the late file.
        body = _assert_problem(
            await api.http.post(f"/appeals/{appeal_id}/documents/{document_id}/complete", headers=me),
            410,
            "upload_expired",
        )
        assert "new upload" in body["detail"]
        assert _keys(api, appeal_id) == []  # the late object is removed
        [document] = await _documents(api, appeal_id, me)
        assert document["state"] == "AWAITING_UPLOAD"
        # Still gone on a retry; the appeal keeps waiting for documents.
        _assert_problem(
            await api.http.post(f"/appeals/{appeal_id}/documents/{document_id}/complete", headers=me),
            410,
            "upload_expired",
        )
        detail = (await api.http.get(f"/appeals/{appeal_id}", headers=me)).json()
        assert detail["status"] == "AWAITING_DOCUMENTS"
        assert all(d["state"] != "ACCEPTED" for d in detail["documents"])


def _multipart(
    file_size: int, *, chunk: int = 512 * 1024, doc_type: str = "BANK_STATEMENT"
) -> tuple[str, list[bytes]]:
    boundary = "streamed-boundary-7f3a"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="doc_type"\r\n\r\n'
        f"{doc_type}\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
        "%PDF-1.4\n"
    ).encode()
    filler = file_size - len(b"%PDF-1.4\n")
    chunks = [head] + [b"0" * min(chunk, filler - i) for i in range(0, filler, chunk)]
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", chunks


class _CountingBody:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk


async def test_streamed_oversize_upload_stops_early_and_leaves_nothing(api: Api) -> None:
    appeal_id, me = await _collecting_appeal(api)
    limit = api.settings.document_max_bytes
    # Larger than boto3's multipart threshold (8 MiB) before the limit is crossed, so a
    # multipart upload is under way when the stream is cut: it must be aborted.
    assert limit > 8 * MiB
    content_type, chunks = _multipart(limit + 4 * MiB)
    body = _CountingBody(chunks)
    response = await api.http.post(
        f"/appeals/{appeal_id}/documents",
        headers={**me, "Content-Type": content_type},
        content=body.__aiter__(),  # no Content-Length: chunked, size unknown upfront
    )
    problem = _assert_problem(response, 413, "document_too_large")
    assert problem["max_bytes"] == limit
    assert body.sent < len(chunks) - 4  # reading stopped soon after the limit
    assert await _documents(api, appeal_id, me) == []
    assert _keys(api, appeal_id) == []
    uploads = make_s3_client(api.settings).list_multipart_uploads(
        Bucket=api.settings.s3_bucket, Prefix=f"appeals/{appeal_id}/"
    )
    assert uploads.get("Uploads", []) == []

    # A declared Content-Length far above the limit is refused before any byte is read.
    content_type, chunks = _multipart(2 * limit)
    body = _CountingBody(chunks)
    response = await api.http.post(
        f"/appeals/{appeal_id}/documents",
        headers={**me, "Content-Type": content_type, "Content-Length": str(3 * limit)},
        content=body.__aiter__(),
    )
    _assert_problem(response, 413, "document_too_large")
    assert body.sent == 0


async def test_streamed_upload_refusals(api: Api) -> None:
    appeal_id, me = await _collecting_appeal(api)
    url = f"/appeals/{appeal_id}/documents"
    for declared in ("image/gif", "text/html", "application/octet-stream"):
        _assert_problem(
            await api.http.post(url, headers=me, files={"file": ("a.pdf", b"%PDF-1.4", declared)}),
            415,
            "unsupported_document_type",
        )
    _assert_problem(
        await api.http.post(url, headers=me, json={"file": "not a file"}), 415, "multipart_required"
    )
    # A urlencoded form cannot carry a file; a multipart form without one misses it.
    _assert_problem(
        await api.http.post(url, headers=me, data={"doc_type": "BANK_STATEMENT"}),
        415,
        "multipart_required",
    )
    missing = _assert_problem(
        await api.http.post(
            url,
            headers={**me, "Content-Type": "multipart/form-data; boundary=x"},
            content=b'--x\r\nContent-Disposition: form-data; name="doc_type"\r\n\r\n'
            b"BANK_STATEMENT\r\n--x--\r\n",
        ),
        422,
        "validation_failed",
    )
    assert missing["errors"][0]["location"] == ["body", "file"]
    _assert_problem(
        await api.http.post(
            url,
            headers={**me, "Content-Type": "multipart/form-data; boundary=x"},
            content=b'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n',
        ),
        422,
        "malformed_multipart",
    )
    # A document type sent after the file is still checked, and the stored file not kept.
    boundary = "after-the-file"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="s.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + CSV
        + (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="doc_type"\r\n\r\n'
            f"PASSPORT\r\n--{boundary}--\r\n"
        ).encode()
    )
    _assert_problem(
        await api.http.post(
            url,
            headers={**me, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=body,
        ),
        422,
        "unknown_document_type",
    )
    assert await _documents(api, appeal_id, me) == []
    assert _keys(api, appeal_id) == []


async def test_download_links_for_reviewers_only(api: Api) -> None:
    appeal_id, me = await _collecting_appeal(api)
    content = b"date,amount\n2026-01-01,1.00\n"
    uploaded = await api.http.post(
        f"/appeals/{appeal_id}/documents",
        headers=me,
        data={"doc_type": "INCOME_PROOF"},
        files={"file": ("报表 2026.csv", content, "text/csv")},
    )
    assert uploaded.status_code == 201, uploaded.text
    document_id = uploaded.json()["id"]
    # The multipart path stores under the server's key, encrypted, too.
    key = f"appeals/{appeal_id}/{document_id}"
    assert _keys(api, appeal_id) == [key]
    assert _head(api, key)["ServerSideEncryption"] == "AES256"

    # Links are issued for verified files only: wait for the verdict.
    await eventually(
        lambda: _documents(api, appeal_id, me),
        lambda items: items[0]["state"] == "ACCEPTED",
        what=f"document {document_id} to be accepted",
    )
    # The customer lists their own documents, without links.
    [own] = await _documents(api, appeal_id, me)
    assert own["id"] == document_id and own["doc_type"] == "INCOME_PROOF"
    assert own["filename"] == "报表 2026.csv" and own["upload_method"] == "multipart"
    assert own["download_url"] is None and own["download_expires_at"] is None
    # Nobody else's customer sees them at all.
    stranger = api.auth(Role.CUSTOMER, make_customer(api.engine).customer_id)
    _assert_problem(
        await api.http.get(f"/appeals/{appeal_id}/documents", headers=stranger),
        404,
        "appeal_not_found",
    )
    _assert_problem(await api.http.get(f"/appeals/{appeal_id}/documents"), 401, "missing_token")

    for role in (Role.REVIEWER, Role.ADMIN):
        [item] = await _documents(api, appeal_id, api.auth(role, "staff-1"))
        link_expiry = datetime.fromisoformat(item["download_expires_at"])
        remaining = link_expiry - SYSTEM_CLOCK.now()
        assert timedelta(minutes=4) < remaining <= api.settings.download_link_expiry
        async with httpx.AsyncClient(timeout=30) as store:
            download = await store.get(item["download_url"])
        assert download.status_code == 200 and download.content == content
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment;")
        assert f"filename*=UTF-8''{quote('报表 2026.csv', safe='')}" in disposition
    _assert_problem(
        await api.http.get("/appeals/nope/documents", headers=api.auth(Role.REVIEWER, "r-1")),
        404,
        "appeal_not_found",
    )


async def test_unreachable_store_is_503_and_stores_nothing(
    api: Api, settings: Settings, temporal_client: Client
) -> None:
    appeal_id, me = await _collecting_appeal(api)
    upload = (await _start_upload(api, appeal_id, me)).json()
    # The same app, but its object store has gone away.
    down = settings.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}"})
    app = create_app(
        down,
        engine=api.engine,
        s3_client=make_s3_client(down),
        gateway=TemporalGateway(down, temporal_client),
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
        ) as http,
    ):
        _assert_problem(
            await http.post(
                f"/appeals/{appeal_id}/documents",
                headers=me,
                files={"file": ("s.csv", CSV, "text/csv")},
            ),
            503,
            "document_store_unavailable",
        )
        _assert_problem(
            await http.post(f"/appeals/{appeal_id}/documents/{upload['document_id']}/complete", headers=me),
            503,
            "document_store_unavailable",
        )
    [document] = await _documents(api, appeal_id, me)
    assert document["id"] == upload["document_id"] and document["state"] == "AWAITING_UPLOAD"
    assert _keys(api, appeal_id) == []


async def test_an_upload_retried_with_its_key_is_saved_once(api: Api) -> None:
    """The answer to a saved upload is lost and the client retries with the same
    Idempotency-Key: it gets the saved document (200), also once the appeal has moved on; two
    attempts racing each other store one file."""
    appeal_id, me = await _collecting_appeal(api)
    url = f"/appeals/{appeal_id}/documents"

    async def upload(key: str, content: bytes = CSV) -> httpx.Response:
        return await api.http.post(
            url,
            headers={**me, "Idempotency-Key": key},
            data={"doc_type": "INCOME_PROOF"},
            files={"file": ("statement.csv", content, "text/csv")},
        )

    first = await upload("upload-1")
    assert first.status_code == 201, first.text
    again = await upload("upload-1")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert len(await _documents(api, appeal_id, me)) == 1
    assert _keys(api, appeal_id) == [f"appeals/{appeal_id}/{first.json()['id']}"]

    racing = await asyncio.gather(*(upload("upload-2", CSV + b"2026-09-02,x,1.00,1.00\n") for _ in range(3)))
    assert sorted(r.status_code for r in racing) == [200, 200, 201], [r.text for r in racing]
    assert len({r.json()["id"] for r in racing}) == 1
    documents = await _documents(api, appeal_id, me)
    assert len(documents) == 2
    assert len(_keys(api, appeal_id)) == 2  # the losers' objects are gone

    withdrawn = await api.http.post(f"/appeals/{appeal_id}/withdraw", json={"reason": "x"}, headers=me)
    assert withdrawn.status_code in (200, 202), withdrawn.text
    await _wait_status(api, appeal_id, me, "WITHDRAWN")
    late = await upload("upload-1")
    assert late.status_code == 200, late.text
    assert late.json()["id"] == first.json()["id"]
    # A new file, under a new key, is refused as before.
    _assert_problem(await upload("upload-3"), 409, "not_collecting_documents")
    # The key is the appeal's: another customer cannot reach this appeal with it.
    stranger = api.auth(Role.CUSTOMER, make_customer(api.engine).customer_id)
    foreign = await api.http.post(
        url,
        headers={**stranger, "Idempotency-Key": "upload-1"},
        data={"doc_type": "INCOME_PROOF"},
        files={"file": ("statement.csv", CSV, "text/csv")},
    )
    _assert_problem(foreign, 404, "appeal_not_found")
