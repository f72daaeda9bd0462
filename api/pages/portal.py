"""The customer portal (issue 10): my accounts and appeals, a new appeal, the appeal page with
its live status, uploads, withdrawal and the request for a human review.

Pages call the same use cases as the JSON API (api/services.py, api/document_uploads.py) and
read through api/pages/portal_views.py, which uses core's rules; nothing reads Temporal. A
customer sees only their own appeals: another's is a 404 page, as the API answers 404.

URLs:
    GET  /app                              my accounts and my appeals
    GET  /app/appeals/new?account=ID       the new-appeal form (&invitation=TOKEN: the portfolio
                                           review's invitation, the original limit pre-filled)
    POST /app/appeals                      submit it (Idempotency-Key from the form)
    GET  /app/appeals/{id}                 the appeal page
    GET  /app/appeals/{id}/live?v=TOKEN    its changing parts; 204 while nothing changed
    POST /app/appeals/{id}/documents       upload one file (streamed, as the API's)
    GET  /app/appeals/{id}/withdraw        confirm a withdrawal
    POST /app/appeals/{id}/withdraw        withdraw
    POST /app/appeals/{id}/human-review    ask for a person to review an automatic decline
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

from anyio import to_thread
from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response

from api import document_uploads, services
from api.deps import ClockDep, EngineDep, GatewayDep, S3Dep, SettingsDep
from api.pages import portal_text, portal_views
from api.pages.session import CSRF_FIELD, CSRF_HEADER, check_csrf, verify_csrf
from api.pages.viewers import CustomerViewer
from api.pages.web import PageRoute, is_htmx, page_context, redirect, render
from core.appeals.service import NewAppeal
from core.auth import Principal
from core.db import session_scope
from core.db.review_tables import ReviewAction
from core.documents.sniff import ALLOWED_CONTENT_TYPES
from core.documents.types import DocumentType
from core.errors import DomainError
from core.lender.review import invitation_for, record_invitation_accepted
from core.notifications.account_notices import list_account_notices

router = APIRouter(route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)])

AppealId = Annotated[str, Path(max_length=36)]
STATEMENT_MAX: Final = 2000
# What the file picker offers (the upload gate decides: core/documents/sniff.py).
ACCEPT: Final = ",".join(sorted(ALLOWED_CONTENT_TYPES)) + ",.pdf,.png,.jpg,.jpeg,.csv,.txt"
POLL_EVERY: Final = "2500ms"
ACCOUNT_NOTICES_SHOWN: Final = 10


def _values(**values: Any) -> dict[str, Any]:
    """What every portal template gets besides its own values."""
    return {
        "status_words": portal_text.status_words,
        "next_step": portal_text.NEXT_STEP,
        "nothing_more": portal_text.NOTHING_MORE,
        "event_words": portal_text.event_words,
        "doc_label": portal_text.doc_label,
        "checklist_state": portal_text.CHECKLIST_STATE,
        "checklist_reason": portal_text.CHECKLIST_REASON,
        "document_state": portal_text.DOCUMENT_STATE,
        "account_status": portal_text.ACCOUNT_STATUS,
        "poll_every": POLL_EVERY,
        **values,
    }


# -- my accounts and appeals -----------------------------------------------------------------


@router.get("/app")
def my_accounts(
    request: Request,
    viewer: CustomerViewer,
    engine: EngineDep,
    clock: ClockDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    with session_scope(engine, read_only=True) as session:
        home = portal_views.home(session, viewer.subject, clock.today(), cursor)
        # Notices about the accounts themselves: a limit frozen or reduced, and why.
        account_notices = list_account_notices(session, viewer.subject, limit=ACCOUNT_NOTICES_SHOWN)
    return render(
        request,
        "portal/home.html",
        _values(home=home, account_notices=account_notices, nav_current="home"),
        principal=viewer,
    )


# -- a new appeal ----------------------------------------------------------------------------


@dataclass
class AppealForm:
    """What the customer typed, kept as typed, and what was wrong with it."""

    idempotency_key: str
    submitted: bool = False
    requested_limit: str = ""
    statement: str = ""
    field_errors: dict[str, str] = field(default_factory=dict)  # field name -> problem code
    refusal: str | None = None  # a problem code refusing the whole appeal
    refusal_values: dict[str, Any] = field(default_factory=dict)
    invitation: str = ""  # the portfolio review's invitation token the form answers


def _account(engine: Any, viewer: Principal, account_id: str, today: date) -> portal_views.AccountRow:
    with session_scope(engine, read_only=True) as session:
        return portal_views.own_account(session, viewer.subject, account_id, today)


def _render_form(
    request: Request,
    viewer: Principal,
    row: portal_views.AccountRow,
    form: AppealForm,
    *,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "portal/new_appeal.html",
        _values(row=row, form=form, statement_max=STATEMENT_MAX),
        principal=viewer,
        status_code=status_code,
    )


@router.get("/app/appeals/new")
def new_appeal(
    request: Request,
    viewer: CustomerViewer,
    engine: EngineDep,
    clock: ClockDep,
    account: Annotated[str | None, Query(max_length=64)] = None,
    invitation: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if not account:
        return redirect(request, "/app")
    row = _account(engine, viewer, account, clock.today())
    # A fresh key per rendered form: a double click or a resent form creates one appeal.
    form = AppealForm(idempotency_key=str(uuid.uuid4()))
    if invitation and _invitation(engine, viewer, account, invitation) is not None:
        # The review invited this customer for this account: ask for the original limit. A
        # token that is not theirs is ignored; the form is the ordinary one.
        form.invitation = invitation
        form.requested_limit = format_yuan(row.account.original_limit_minor)
    return _render_form(request, viewer, row, form)


def _invitation(engine: Any, viewer: Principal, account_id: str, token: str) -> ReviewAction | None:
    with session_scope(engine, read_only=True) as session:
        return invitation_for(session, token, customer_id=viewer.subject, account_id=account_id)


def _record_invitation(engine: Any, appeal_id: str, invitation: ReviewAction, at: datetime) -> None:
    with session_scope(engine) as session:
        appeal = portal_views.own_appeal(session, appeal_id, invitation.customer_id)
        record_invitation_accepted(session, appeal, invitation, at=at)


def format_yuan(minor: int) -> str:
    """Fen as the form's yuan field takes them (`10000`, `10000.50`)."""
    yuan, fen = divmod(minor, 100)
    return str(yuan) if fen == 0 else f"{yuan}.{fen:02d}"


_YUAN: Final = re.compile(r"^\d{1,12}(?:\.\d{1,2})?$")


def parse_yuan(text: str) -> int:
    """Yuan as typed (`8000`, `8,000.50`, `¥8000`) to fen, with Decimal (never a float).
    Raises ValueError with a problem code: limit_missing, limit_invalid, limit_zero."""
    cleaned = text.strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    if not cleaned:
        raise ValueError("limit_missing")
    if not _YUAN.match(cleaned):
        raise ValueError("limit_invalid")
    minor = int(Decimal(cleaned) * 100)
    if minor <= 0:
        raise ValueError("limit_zero")
    return minor


# Refusals of `create_appeal` shown on the form (anything else is an error page).
_FORM_REFUSALS: Final = frozenset({"open_appeal_exists", "decline_cooldown"})
_FIELD_REFUSALS: Final = {"requested_limit_above_original": "requested_limit"}


@router.post("/app/appeals")
async def submit_appeal(
    request: Request,
    viewer: CustomerViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    clock: ClockDep,
    account_id: Annotated[str, Form(min_length=1, max_length=64)],
    idempotency_key: Annotated[str, Form(min_length=1, max_length=200)],
    requested_limit: Annotated[str, Form()] = "",
    statement: Annotated[str, Form()] = "",
    invitation: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    today = clock.today()
    form = AppealForm(idempotency_key, True, requested_limit, statement, invitation=invitation)
    row = await to_thread.run_sync(_account, engine, viewer, account_id, today)
    await to_thread.run_sync(page_context, request, viewer)  # the viewer's language, read off the loop
    if not row.eligibility.eligible:
        # The workflow would find the account ineligible: say why now, and create nothing.
        form.refusal = "ineligible"
        return _render_form(request, viewer, row, form, status_code=409)
    requested_minor = 0
    try:
        requested_minor = parse_yuan(requested_limit)
    except ValueError as exc:
        form.field_errors["requested_limit"] = str(exc)
    if len(statement) > STATEMENT_MAX:
        form.field_errors["statement"] = "statement_too_long"
    if form.field_errors:
        return _render_form(request, viewer, row, form, status_code=422)
    try:
        appeal, _ = await services.submit_appeal(
            engine,
            gateway,
            viewer,
            NewAppeal(
                customer_id=viewer.subject,
                account_id=account_id,
                requested_limit_minor=requested_minor,
                customer_statement=statement,
                idempotency_key=idempotency_key,
            ),
            today=today,
        )
    except DomainError as exc:
        if exc.code in _FIELD_REFUSALS:
            form.field_errors[_FIELD_REFUSALS[exc.code]] = exc.code
        elif exc.code in _FORM_REFUSALS:
            form.refusal, form.refusal_values = exc.code, dict(exc.extra)
            if "may_appeal_from" in exc.extra:
                form.refusal_values["may_appeal_from"] = date.fromisoformat(exc.extra["may_appeal_from"])
        else:
            raise
        return _render_form(request, viewer, row, form, status_code=exc.status_code)
    invited = (
        await to_thread.run_sync(_invitation, engine, viewer, account_id, invitation) if invitation else None
    )
    if invited is not None:
        # The appeal carries the invitation (what the review knew) on its audit trail.
        await to_thread.run_sync(_record_invitation, engine, appeal.id, invited, clock.now())
    return redirect(request, f"/app/appeals/{appeal.id}")


# -- the appeal page -------------------------------------------------------------------------


def _read_page(
    request: Request, viewer: Principal, engine: Any, settings: Any, clock: Any, appeal_id: str
) -> portal_views.AppealPage:
    locale = page_context(request, viewer)["locale"]
    with session_scope(engine, read_only=True) as session:
        appeal = portal_views.own_appeal(session, appeal_id, viewer.subject)
        return portal_views.appeal_page(session, settings, appeal, locale=locale, now=clock.now())


def _page_values(page: portal_views.AppealPage, settings: Any, **values: Any) -> dict[str, Any]:
    return _values(
        page=page,
        accept=ACCEPT,
        max_bytes=settings.document_max_bytes,
        max_mib=settings.document_max_bytes // (1024 * 1024),
        upload_types=_upload_types(page),
        **values,
    )


def _upload_types(page: portal_views.AppealPage) -> list[str]:
    """The document types to offer: what the checklist still needs first, then the rest."""
    needed = [item.doc_type for item in page.checklist if item.required and item.state != "ACCEPTED"]
    return needed + [t.value for t in DocumentType if t.value not in needed]


_SENT: Final = frozenset({"withdraw", "human-review", "upload"})


@router.get("/app/appeals/{appeal_id}")
def appeal_page(
    request: Request,
    appeal_id: AppealId,
    viewer: CustomerViewer,
    engine: EngineDep,
    settings: SettingsDep,
    clock: ClockDep,
    sent: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    page = _read_page(request, viewer, engine, settings, clock, appeal_id)
    return render(
        request,
        "portal/appeal.html",
        _page_values(page, settings, sent=sent if sent in _SENT else None),
        principal=viewer,
    )


@router.get("/app/appeals/{appeal_id}/live")
def appeal_live(
    request: Request,
    appeal_id: AppealId,
    viewer: CustomerViewer,
    engine: EngineDep,
    settings: SettingsDep,
    clock: ClockDep,
    v: Annotated[str, Query(max_length=60)] = "",
) -> Response:
    """The parts of the appeal page that change, for htmx polling: 204 (htmx swaps nothing)
    while the appeal's change token is the one the page has, two queries."""
    with session_scope(engine, read_only=True) as session:
        appeal = portal_views.own_appeal(session, appeal_id, viewer.subject)
        token = portal_views.change_token(session, appeal)
    if token == v:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    locale = page_context(request, viewer)["locale"]
    with session_scope(engine, read_only=True) as session:
        page = portal_views.appeal_page(
            session, settings, appeal, locale=locale, now=clock.now(), token=token
        )
    return render(
        request, "portal/_live.html", _page_values(page, settings, fragment=True, sent=None), principal=viewer
    )


# -- withdrawing and asking for a human review -----------------------------------------------


@router.get("/app/appeals/{appeal_id}/withdraw")
def confirm_withdrawal(
    request: Request,
    appeal_id: AppealId,
    viewer: CustomerViewer,
    engine: EngineDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    page = _read_page(request, viewer, engine, settings, clock, appeal_id)
    return render(request, "portal/withdraw.html", _page_values(page, settings), principal=viewer)


@router.post("/app/appeals/{appeal_id}/withdraw")
async def withdraw(
    request: Request,
    appeal_id: AppealId,
    viewer: CustomerViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    await services.withdraw_appeal(engine, gateway, viewer, appeal_id, reason.strip())
    return redirect(request, f"/app/appeals/{appeal_id}?sent=withdraw")


@router.post("/app/appeals/{appeal_id}/human-review")
async def ask_for_human_review(
    request: Request,
    appeal_id: AppealId,
    viewer: CustomerViewer,
    engine: EngineDep,
    gateway: GatewayDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    await services.request_human_review(engine, gateway, viewer, appeal_id, reason.strip())
    return redirect(request, f"/app/appeals/{appeal_id}?sent=human-review")


# -- uploads ---------------------------------------------------------------------------------

# The upload reads its own body as it streams to storage, so the router-wide `check_csrf`
# (which parses, and so consumes, a form) must not run first: this route checks the token
# itself, from the header (portal.js) or from the form field sent before the file (a plain
# form), before a byte is stored.
_streaming = APIRouter(route_class=PageRoute, include_in_schema=False)


@_streaming.post("/app/appeals/{appeal_id}/documents")
async def upload_document(
    request: Request,
    appeal_id: AppealId,
    viewer: CustomerViewer,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    gateway: GatewayDep,
) -> Response:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        verify_csrf(request, header)

    def check_fields(fields: dict[str, str]) -> None:
        if header is None:
            verify_csrf(request, fields.get(CSRF_FIELD))

    try:
        uploaded = await document_uploads.upload_request(
            engine, s3, settings, gateway, viewer, request, appeal_id=appeal_id, check_fields=check_fields
        )
    except DomainError as exc:
        raise await _in_viewers_words(request, viewer, settings, exc) from exc
    if is_htmx(request):
        await to_thread.run_sync(page_context, request, viewer)
        return render(
            request,
            "portal/_uploaded.html",
            _values(document=uploaded.document),
            principal=viewer,
            status_code=201,
        )
    return redirect(request, f"/app/appeals/{appeal_id}?sent=upload")


async def _in_viewers_words(
    request: Request, viewer: Principal, settings: Any, exc: DomainError
) -> DomainError:
    """An upload refusal with its text in the viewer's language (same status and code)."""
    words = portal_text.UPLOAD_REFUSALS.get(exc.code)
    if words is None:
        return exc
    context = await to_thread.run_sync(page_context, request, viewer)
    text = words[1] if context["locale"] == "zh-CN" else words[0]
    refusal = type(exc)(text.format(mib=settings.document_max_bytes // (1024 * 1024)), code=exc.code)
    refusal.status_code = exc.status_code
    return refusal


router.routes.extend(_streaming.routes)
