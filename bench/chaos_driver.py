"""The clients of bench/chaos.py: customers and reviewers using the HTTP API as real clients do.

Every request goes to one of the API processes in turn, and is retried with backoff on a
connection error, a timeout or a 5xx answer (with the next API process when there are
several). Every POST carries an `Idempotency-Key` that stays the same across its retries.

- A customer submits an appeal, waits for the checklist, uploads an employment certificate if
  their story has one and then each checklist item (a bank statement generated with their
  ledger, a PDF for the rest), sends a refused item again (twice at most), and follows the
  appeal until it rests: CLOSED, AUTO_DECLINED (waiting out the human-review window),
  INELIGIBLE, ...
- A reviewer desk works the queue as the console's "Claim next" does: finish the tasks it
  holds, else claim the next one, read the case file and decide. Decisions are spread over
  approve in full, approve in part and decline; approvals that need four eyes go to the
  senior reviewers' desks.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.auth import Role, mint_token
from core.clock import Clock
from core.ledger.generator import GeneratedCustomer
from core.settings import Settings
from tests.documents import text_pdf

# Where a customer stops following an appeal: nothing more happens without someone acting.
AT_REST = frozenset({"CLOSED", "AUTO_DECLINED", "INELIGIBLE", "EXPIRED", "WITHDRAWN", "LIMIT_APPLY_FAILED"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_RESENDS = 2  # times a customer sends a refused checklist item again
DECLINE_REASON = "RC_LATE_PAYMENTS"

Sleep = Callable[[float], Awaitable[None]]


class GaveUp(Exception):
    """A client stopped trying: the request kept failing, or the appeal never got there."""


@dataclass
class CallStats:
    """What the clients saw, per kind of request (submit, upload, poll, claim, decision, ...)."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    causes: Counter[str] = field(default_factory=Counter)  # why a try was retried
    answers: Counter[str] = field(default_factory=Counter)  # "upload 201", "upload 200", ...
    ok_at: list[float] = field(default_factory=list)  # monotonic time of every 2xx answer
    gave_up: Counter[str] = field(default_factory=Counter)


@dataclass
class Upload:
    doc_type: str
    key: str
    status: int | None = None  # the final answer's HTTP status
    code: str | None = None  # a problem's code
    document_id: str | None = None
    tries: int = 0


@dataclass
class AppealRun:
    """One customer's appeal, as the client saw it."""

    index: int
    customer: GeneratedCustomer
    appeal_id: str | None = None
    submit_status: int | None = None
    uploads: list[Upload] = field(default_factory=list)
    last_status: str | None = None
    error: str | None = None
    done_at: float | None = None

    @property
    def accepted(self) -> bool:
        return self.appeal_id is not None and self.submit_status in (200, 201)


@dataclass
class DeskLog:
    decisions: Counter[str] = field(default_factory=Counter)  # "stage1 APPROVE", ...
    problems: list[str] = field(default_factory=list)
    given_up_tasks: set[str] = field(default_factory=set)


def _problem_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class ApiClient:
    """Requests spread over the API processes, retried as a well-behaved client retries."""

    def __init__(
        self,
        urls: Sequence[str],
        stats: CallStats,
        *,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        request_timeout: float = 75.0,
        give_up_after: float = 300.0,
    ) -> None:
        self._urls = list(urls)
        self._next = 0
        self._stats = stats
        self._sleep = sleep
        self._monotonic = monotonic
        self._give_up_after = give_up_after
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._http = httpx.AsyncClient(timeout=request_timeout, limits=limits)
        self._rng = random.Random(7)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _base(self) -> str:
        url = self._urls[self._next % len(self._urls)]
        self._next += 1
        return url

    async def request(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        token: str,
        key: str | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        started = self._monotonic()
        delay = 0.25
        self._stats.calls[kind] += 1
        while True:
            cause: str
            try:
                response = await self._http.request(
                    method,
                    self._base() + path,
                    headers=headers,
                    json=json,
                    data=data,
                    files=files,
                    params=params,
                )
            except httpx.TransportError as exc:  # refused, reset, timed out: the answer is lost
                cause = type(exc).__name__
            else:
                if response.status_code not in RETRY_STATUSES:
                    self._stats.answers[f"{kind} {response.status_code}"] += 1
                    if response.is_success:
                        self._stats.ok_at.append(self._monotonic())
                    return response
                cause = f"{response.status_code} {_problem_code(response) or ''}".strip()
            self._stats.retries[kind] += 1
            self._stats.causes[f"{kind}: {cause}"] += 1
            if self._monotonic() - started > self._give_up_after:
                self._stats.gave_up[kind] += 1
                raise GaveUp(f"{method} {path} kept failing for {self._give_up_after:.0f} s (last: {cause})")
            await self._sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, 4.0)


def _index_choice(appeal_id: str, index: int | None) -> int:
    if index is not None:
        return index % 4
    return int(hashlib.sha256(appeal_id.encode()).hexdigest(), 16) % 4


class Driver:
    """Customers and reviewer desks for one run."""

    def __init__(
        self,
        settings: Settings,
        api: ApiClient,
        *,
        run_id: str,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        appeal_timeout: float = 300.0,
        poll_max: float = 1.0,
    ) -> None:
        self.settings = settings
        self.api = api
        self.run_id = run_id
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.appeal_timeout = appeal_timeout
        self.poll_max = poll_max
        self.runs: list[AppealRun] = []
        self.by_appeal: dict[str, AppealRun] = {}
        self.first_approvals: dict[str, int] = {}
        self.desk = DeskLog()
        self.desks_stop = asyncio.Event()
        self._tokens: dict[tuple[Role, str], str] = {}

    def token(self, role: Role, subject: str) -> str:
        found = self._tokens.get((role, subject))
        if found is None:
            found = self._tokens[(role, subject)] = mint_token(
                self.settings, role=role, subject=subject, now=self.clock.now()
            )
        return found

    def key(self, *parts: object) -> str:
        return ":".join(["chaos", self.run_id, *(str(p) for p in parts)])

    # -- customers ----------------------------------------------------------------------------

    async def customer(self, run: AppealRun) -> None:
        try:
            await self._customer(run)
        except GaveUp as exc:
            run.error = str(exc)
        finally:
            run.done_at = self.monotonic()

    async def _customer(self, run: AppealRun) -> None:
        c = run.customer
        token = self.token(Role.CUSTOMER, c.customer_id)
        created = await self.api.request(
            "submit",
            "POST",
            "/appeals",
            token=token,
            key=self.key("submit", run.index),
            json={"account_id": c.account_id, "requested_limit_minor": c.requested_limit_minor},
        )
        run.submit_status = created.status_code
        if created.status_code not in (200, 201):
            run.error = f"submit answered {created.status_code} {_problem_code(created)}"
            return
        run.appeal_id = created.json()["id"]
        self.by_appeal[run.appeal_id] = run
        detail = await self._wait(run, token, lambda d: d["status"] != "SUBMITTED", "its checklist")
        if detail["status"] == "AWAITING_DOCUMENTS":
            for doc_type, name, body, content_type in self.files_for(c, _required(detail)):
                await self._upload(run, token, doc_type, name, body, content_type)
        for copy in range(1, MAX_RESENDS + 1):
            detail = await self._wait(run, token, _resting, "a resting status")
            refused = [item for item in _required(detail) if item["state"] == "REJECTED"]
            if detail["status"] != "AWAITING_DOCUMENTS" or not refused:
                return
            # The customer reads why and sends the item again (these files are valid: the
            # refusal is reported by the checks as a valid document rejected).
            for doc_type, name, body, content_type in self.files_for(
                c, refused, copy=copy, certificate=False
            ):
                await self._upload(run, token, doc_type, name, body, content_type, copy=copy)
        await self._wait(run, token, _resting, "a resting status")

    def files_for(
        self,
        c: GeneratedCustomer,
        checklist: list[dict[str, Any]],
        *,
        copy: int = 0,
        certificate: bool = True,
    ) -> list[tuple[str, str, bytes, str]]:
        """The employment certificate first when the story has one (it is not on the checklist,
        so the checks start only once the checklist's own items are in), then the checklist.
        A copy sent again is a new PDF (the checks flag a file seen before)."""
        now = self.clock.now()
        lines = (c.customer_id,) if not copy else (c.customer_id, f"Copy {copy}")
        files: list[tuple[str, str, bytes, str]] = []
        if c.employment_proof and certificate:
            pdf = text_pdf("Employment certificate", lines, now=now)
            files.append(("EMPLOYMENT_PROOF", "employment.pdf", pdf, "application/pdf"))
        for item in checklist:
            doc_type = item["doc_type"]
            if doc_type == "BANK_STATEMENT":
                files.append((doc_type, "statement.csv", c.statement_csv(), "text/csv"))
            else:
                title = doc_type.replace("_", " ").title()
                pdf = text_pdf(title, lines, now=now)
                files.append((doc_type, f"{doc_type.lower()}.pdf", pdf, "application/pdf"))
        return files

    async def _upload(
        self,
        run: AppealRun,
        token: str,
        doc_type: str,
        name: str,
        body: bytes,
        content_type: str,
        *,
        copy: int = 0,
    ) -> None:
        upload = Upload(doc_type, self.key("upload", run.index, doc_type, copy))
        run.uploads.append(upload)
        response = await self.api.request(
            "upload",
            "POST",
            f"/appeals/{run.appeal_id}/documents",
            token=token,
            key=upload.key,
            data={"doc_type": doc_type},
            files={"file": (name, body, content_type)},
        )
        upload.status = response.status_code
        if response.is_success:
            upload.document_id = response.json()["id"]
        else:
            upload.code = _problem_code(response)

    async def _wait(
        self, run: AppealRun, token: str, until: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        deadline = self.monotonic() + self.appeal_timeout
        delay = 0.3
        while True:
            response = await self.api.request("poll", "GET", f"/appeals/{run.appeal_id}", token=token)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                run.last_status = body["status"]
                if until(body):
                    return body
            if self.monotonic() > deadline:
                raise GaveUp(
                    f"waited {self.appeal_timeout:.0f} s for {what}; last status {run.last_status} "
                    f"(last answer {response.status_code})"
                )
            await self.sleep(delay)
            delay = min(delay * 1.5, self.poll_max)

    # -- reviewers ----------------------------------------------------------------------------

    async def reviewer_desk(self, reviewer: str, role: Role) -> None:
        token = self.token(role, reviewer)
        rounds = 0
        while True:
            rounds += 1
            try:
                held = await self.api.request(
                    "queue", "GET", "/review-tasks", token=token, params={"assignee": "me"}
                )
                mine = [
                    t
                    for t in (held.json()["items"] if held.status_code == 200 else [])
                    if t["id"] not in self.desk.given_up_tasks
                ]
                if mine:
                    for task in mine:
                        await self._work(token, reviewer, task)
                    continue
                claimed = await self.api.request(
                    "claim",
                    "POST",
                    "/review-tasks/claim-next",
                    token=token,
                    key=self.key("next", reviewer, rounds),
                )
            except GaveUp as exc:
                self.desk.problems.append(f"{reviewer}: {exc}")
                if self.desks_stop.is_set():
                    return
                continue
            if claimed.status_code == 200:
                await self._work(token, reviewer, claimed.json())
                continue
            if claimed.status_code != 204:
                self.desk.problems.append(
                    f"{reviewer}: claim-next answered {claimed.status_code} {_problem_code(claimed)}"
                )
            if self.desks_stop.is_set():
                return
            await self.sleep(1.0)

    async def _work(self, token: str, reviewer: str, task: dict[str, Any]) -> None:
        task_id, appeal_id, stage = task["id"], task["appeal_id"], int(task["stage"])
        try:
            case = await self.api.request("case", "GET", f"/review-tasks/{task_id}", token=token)
            if case.status_code != 200:
                self._give_up(task_id, f"{reviewer}: case file of {task_id} answered {case.status_code}")
                return
            requested = int(case.json()["appeal"]["requested_limit_minor"])
            body = self._decision(appeal_id, stage, requested)
            for attempt in (1, 2):
                response = await self.api.request(
                    "decision",
                    "POST",
                    f"/review-tasks/{task_id}/decision",
                    token=token,
                    key=self.key("decide", task_id),
                    json=body,
                )
                if response.status_code == 200:
                    self.desk.decisions[f"stage{stage} {body['outcome']}"] += 1
                    if stage == 1 and body["outcome"] == "APPROVE":
                        self.first_approvals[appeal_id] = body["approved_limit_minor"]
                    return
                code = _problem_code(response)
                if await self._task_done(token, task_id):
                    return  # an earlier try went through; its answer was lost
                if code == "not_claim_holder" and attempt == 1:
                    # The workflow has not heard of the claim: claim again, which tells it anew.
                    self.desk.problems.append(f"{reviewer}: decision on {task_id} refused: not_claim_holder")
                    await self.api.request(
                        "claim",
                        "POST",
                        f"/review-tasks/{task_id}/release",
                        token=token,
                        key=self.key("rel", task_id),
                    )
                    await self.api.request(
                        "claim",
                        "POST",
                        f"/review-tasks/{task_id}/claim",
                        token=token,
                        key=self.key("re", task_id),
                    )
                    continue
                self._give_up(
                    task_id, f"{reviewer}: decision on {task_id} answered {response.status_code} {code}"
                )
                return
        except GaveUp as exc:
            self._give_up(task_id, f"{reviewer}: {exc}")

    async def _task_done(self, token: str, task_id: str) -> bool:
        response = await self.api.request("case", "GET", f"/review-tasks/{task_id}", token=token)
        return response.status_code == 200 and response.json()["task"]["status"] != "CLAIMED"

    def _give_up(self, task_id: str, problem: str) -> None:
        self.desk.problems.append(problem)
        self.desk.given_up_tasks.add(task_id)

    def _decision(self, appeal_id: str, stage: int, requested: int) -> dict[str, Any]:
        if stage >= 2:  # the second pair of eyes confirms the first reviewer's approval
            return {
                "outcome": "APPROVE",
                "approved_limit_minor": self.first_approvals.get(appeal_id, requested),
            }
        run = self.by_appeal.get(appeal_id)
        choice = _index_choice(appeal_id, run.index if run else None)
        if choice == 0:
            return {"outcome": "DECLINE", "reasons": [DECLINE_REASON], "note": "chaos bench"}
        if choice == 1:
            partial = max(requested * 7 // 10 // 10_000 * 10_000, 10_000)
            return {"outcome": "APPROVE", "approved_limit_minor": partial, "note": "chaos bench"}
        return {"outcome": "APPROVE", "approved_limit_minor": requested, "note": "chaos bench"}


def _required(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The checklist items the appeal waits for (a file sent besides them, such as the
    employment certificate, is listed too, as not required)."""
    return [item for item in detail["checklist"] if item.get("required", True)]


def _resting(detail: dict[str, Any]) -> bool:
    if detail["status"] in AT_REST:
        return True
    # A refused required file leaves the appeal waiting for a new one.
    return detail["status"] == "AWAITING_DOCUMENTS" and any(
        item["state"] == "REJECTED" for item in _required(detail)
    )
