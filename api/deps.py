"""Dependencies shared by the routers: settings, the DB engine, Temporal, the caller.

They are coroutines on purpose: none does I/O (the bearer token is checked in memory), and a
plain `def` dependency would cost every request a hop to the thread pool and back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from api.db_reads import DatabaseReads
from api.request_log import note_caller
from core.auth import Principal, Role, missing_bearer, verify_token
from core.clock import Clock
from core.errors import Forbidden
from core.settings import Settings
from gateway.temporal import TemporalGateway

_bearer = HTTPBearer(auto_error=False, description="A JWT minted by `appeals token`.")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_gateway(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.gateway
    return gateway


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_reads(request: Request) -> DatabaseReads:
    reads: DatabaseReads = request.app.state.reads
    return reads


async def get_s3(request: Request) -> Any:
    return request.app.state.s3


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise missing_bearer(request.headers.get("authorization", ""))
    principal = verify_token(request.app.state.settings, credentials.credentials)
    note_caller(request, principal)
    return principal


def principal_from_authorization(settings: Settings, authorization: str) -> Principal:
    """`get_principal` on a raw Authorization header (api/request_guard.py checks the token
    before a body is read): the same answers, from the same checks."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise missing_bearer(authorization)
    return verify_token(settings, token.strip())


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
GatewayDep = Annotated[TemporalGateway, Depends(get_gateway)]
S3Dep = Annotated[Any, Depends(get_s3)]
ReadsDep = Annotated[DatabaseReads, Depends(get_reads)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def _check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"This needs the {' or '.join(r.value for r in roles)} role.", code="role_required"
            )
        return principal

    return _check


CustomerDep = Annotated[Principal, Depends(require_role(Role.CUSTOMER))]
ReviewerDep = Annotated[
    Principal, Depends(require_role(Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SUPERVISOR, Role.ADMIN))
]
