"""Signing in to the web pages with an OpenID Connect provider (docs/architecture.md section 6).

The authorization code flow with PKCE (S256), `state` and `nonce`:

1. `GET /sign-in/oidc?next=...` redirects to the provider's authorization endpoint. The state,
   the nonce, the PKCE verifier, the redirect URI and `next` travel in a short-lived cookie,
   encrypted and authenticated (Fernet) under a key derived from the service secret: HttpOnly,
   SameSite=Lax (the provider's redirect back is a top-level GET, so the browser sends it),
   Secure outside development, path /sign-in/oidc, ten minutes.
2. `GET /sign-in/oidc/callback` checks the state against that cookie (and the answer's `iss`
   when the provider sends one, RFC 9207), exchanges the code at the token endpoint with the
   verifier (and the client secret of a confidential client), verifies the ID token (its
   signature against the provider's JWKS with an algorithm its discovery advertises, never
   `none` nor a shared-secret HMAC; `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`), maps the role
   claim to exactly one role, starts the page session (api/pages/session.py) and redirects to
   `next` (a path on this site) or the viewer's home.

Every failure ends on an error page in the viewer's language, clears the state cookie and starts
no session. The discovery document and the JWKS are fetched with async httpx (with timeouts)
and cached per app for an hour; a `kid` the cached JWKS lacks refetches it once (the provider
rotated its keys). The ID token comes from the token endpoint over the back channel, never from
the browser, so only the provider itself can make us refetch.

Roles: the claim `APPEALS_OIDC_ROLE_CLAIM` holds one value or a list, translated by
`APPEALS_OIDC_ROLE_MAP` (by default each role's own name). Values the map does not know are
ignored. Several staff roles give the most privileged (admin, supervisor, senior_reviewer,
reviewer, in that order); customer together with a staff role, or no role of ours, is refused
(403): one sign-in is either a customer or a member of staff.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

import httpx
import jwt
from anyio import to_thread
from cryptography.fernet import Fernet, InvalidToken
from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import SettingsDep
from api.pages.session import check_csrf, start_session
from api.pages.sign_in import _safe_next, directory_sign_in
from api.pages.viewers import home_for
from api.pages.web import PageRoute, error_page, redirect, viewer_locale
from core.auth import Principal, Role
from core.errors import DomainError, Forbidden, Gone, NotFound, ServiceUnavailable, Unauthorized
from core.settings import Environment, Settings, is_loopback_host

log = logging.getLogger(__name__)

router = APIRouter(route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)])

STATE_COOKIE: Final = "appeals_oidc"
STATE_COOKIE_PATH: Final = "/sign-in/oidc"
STATE_TTL_SECONDS: Final = 600
CACHE_SECONDS: Final = 3600
# Clock skew allowed between the provider and this service when checking exp and iat.
LEEWAY_SECONDS: Final = 60
# Public-key signatures only: `none` and the HMAC algorithms (keyed with the client secret,
# which this service would then have to trust as a signing key) are never accepted.
ACCEPTED_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
_KEY_TYPE: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
# A person with several staff roles gets the first of these they hold.
STAFF_RANK: Final = (Role.ADMIN, Role.SUPERVISOR, Role.SENIOR_REVIEWER, Role.REVIEWER)
_ERROR_CODE: Final = re.compile(r"[a-z_]{1,64}")


class SignInFailed(Exception):
    """Why a sign-in cannot go on, for a person in both languages; `code` is stable."""

    def __init__(self, error: type[DomainError], code: str, en: str, zh: str, reason: str = "") -> None:
        super().__init__(f"{code}: {reason or en}")
        self.error, self.code, self.en, self.zh, self.reason = error, code, en, zh, reason

    def for_viewer(self, request: Request) -> DomainError:
        """The core error this failure is, its detail in the viewer's language."""
        log.info("OIDC sign-in refused: %s%s", self.code, f" ({self.reason})" if self.reason else "")
        detail = self.zh if viewer_locale(request, None) == "zh-CN" else self.en
        return self.error(detail, code=self.code, reason=self.reason or None)


def _unavailable(what: str) -> SignInFailed:
    return SignInFailed(
        ServiceUnavailable,
        "oidc_provider_unavailable",
        "The identity provider cannot be reached right now. Please try again in a few minutes.",
        "暂时无法连接身份提供方，请几分钟后重试。",
        what,
    )


def _misconfigured(what: str) -> SignInFailed:
    return SignInFailed(
        ServiceUnavailable,
        "oidc_misconfigured",
        "Sign-in with the identity provider is not set up correctly. Please tell the service desk.",
        "身份提供方登录配置有误，请联系服务台。",
        what,
    )


def _bad_id_token(reason: str) -> SignInFailed:
    return SignInFailed(
        Unauthorized,
        "oidc_invalid_id_token",
        "The identity provider's answer could not be verified, so you are not signed in. Please start again.",
        "无法验证身份提供方的答复，您尚未登录。请重新开始。",
        reason,
    )


@dataclass(frozen=True)
class Discovery:
    """What this service uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    pkce_methods: tuple[str, ...] | None

    @classmethod
    def parse(cls, document: dict[str, Any], configured_issuer: str) -> Discovery:
        issuer = document.get("issuer")
        # The document must name the issuer it was fetched for (OpenID Connect Discovery 4.3).
        if not isinstance(issuer, str) or issuer.rstrip("/") != configured_issuer.rstrip("/"):
            raise _misconfigured(f"discovery names issuer {issuer!r}, not {configured_issuer!r}")
        urls = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str) or not _acceptable_url(value):
                raise _misconfigured(f"discovery has no usable {name}")
            urls[name] = value
        advertised = _strings(document.get("id_token_signing_alg_values_supported")) or ("RS256",)
        algorithms = tuple(a for a in advertised if a in ACCEPTED_ALGORITHMS)
        if not algorithms:
            raise _misconfigured(f"ID tokens signed only with {advertised}")
        return cls(
            issuer=issuer,
            algorithms=algorithms,
            # The default when the document is silent (Discovery 3).
            token_auth_methods=_strings(document.get("token_endpoint_auth_methods_supported"))
            or ("client_secret_basic",),
            pkce_methods=_strings(document.get("code_challenge_methods_supported")),
            **urls,
        )


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _acceptable_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))


class OidcProvider:
    """The configured provider: its cached discovery document and keys, the token exchange and
    ID token verification. One per app (`provider_for`)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id
        self.settings = settings
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self._timeout = httpx.Timeout(settings.oidc_timeout_seconds)
        self._discovery: tuple[float, Discovery] | None = None
        self._keys: tuple[float, list[tuple[dict[str, Any], jwt.PyJWK]]] | None = None
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                answer = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unavailable(f"{what}: {type(exc).__name__}") from exc
        if answer.status_code != 200:
            raise _unavailable(f"{what}: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError as exc:
            raise _unavailable(f"{what}: not JSON") from exc
        if not isinstance(body, dict):
            raise _unavailable(f"{what}: not a JSON object")
        return body

    async def discovery(self) -> Discovery:
        cached = self._discovery
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        async with self._lock:
            if self._discovery is not cached and self._discovery is not None:
                return self._discovery[1]  # another request fetched it meanwhile
            url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
            found = Discovery.parse(await self._get_json(url, "discovery"), self.issuer)
            self._discovery = (time.monotonic(), found)
            return found

    async def _jwks(self, *, refresh: bool) -> list[tuple[dict[str, Any], jwt.PyJWK]]:
        cached = self._keys
        if cached and not refresh and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        discovery = await self.discovery()
        async with self._lock:
            if self._keys is not cached and self._keys is not None:
                return self._keys[1]
            document = await self._get_json(discovery.jwks_uri, "jwks")
            keys = []
            for jwk in document.get("keys") or []:
                if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                    continue
                try:
                    keys.append((jwk, jwt.PyJWK(jwk)))
                except jwt.PyJWTError:
                    continue  # a key type this service does not use
            self._keys = (time.monotonic(), keys)
            return keys

    @staticmethod
    def _pick(keys: list[tuple[dict[str, Any], jwt.PyJWK]], kid: object, alg: str) -> jwt.PyJWK | None:
        fitting = [
            key for jwk, key in keys if jwk.get("kty") == _KEY_TYPE[alg[:2]] and jwk.get("alg", alg) == alg
        ]
        if kid is not None:
            return next((key for key in fitting if key.key_id == kid), None)
        return fitting[0] if len(fitting) == 1 else None

    async def signing_key(self, kid: object, alg: str) -> jwt.PyJWK:
        key = self._pick(await self._jwks(refresh=False), kid, alg)
        if key is None:  # the provider may have rotated its keys since we fetched them
            key = self._pick(await self._jwks(refresh=True), kid, alg)
        if key is None:
            raise _bad_id_token(f"no {alg} key {kid!r} in the provider's JWKS")
        return key

    def _client_authentication(self, discovery: Discovery) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, form fields) that authenticate this client at the token endpoint."""
        secret = self.settings.oidc_client_secret
        if not secret:  # a public client: PKCE alone binds the code to this browser's flow
            return {}, {"client_id": self.client_id}
        if "client_secret_basic" in discovery.token_auth_methods:
            # RFC 6749 2.3.1: both parts form-encoded before Base64.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(secret)}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}, {}
        if "client_secret_post" in discovery.token_auth_methods:
            return {}, {"client_id": self.client_id, "client_secret": secret}
        raise _misconfigured(f"token endpoint takes only {discovery.token_auth_methods}")

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for `code`."""
        discovery = await self.discovery()
        headers, fields = self._client_authentication(discovery)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            **fields,
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                answer = await http.post(
                    discovery.token_endpoint, data=form, headers={"Accept": "application/json", **headers}
                )
        except httpx.HTTPError as exc:
            raise _unavailable(f"token endpoint: {type(exc).__name__}") from exc
        if answer.status_code >= 500:
            raise _unavailable(f"token endpoint: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise SignInFailed(
                Unauthorized,
                "oidc_token_refused",
                "The identity provider refused to complete this sign-in (the link may have been "
                "used already). Please start again.",
                "身份提供方拒绝完成此次登录（链接可能已被使用）。请重新开始。",
                f"HTTP {answer.status_code} {error or ''}".strip(),
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise _bad_id_token("the token answer has no id_token")
        return id_token

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token issued to this client for this sign-in."""
        discovery = await self.discovery()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise _bad_id_token("malformed") from exc
        alg = header.get("alg")
        if alg not in discovery.algorithms:
            raise _bad_id_token(f"algorithm {alg!r} (accepted: {', '.join(discovery.algorithms)})")
        key = await self.signing_key(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=discovery.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _bad_id_token("expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise _bad_id_token("bad signature") from exc
        except jwt.InvalidAudienceError as exc:
            raise _bad_id_token("issued to another client") from exc
        except jwt.InvalidIssuerError as exc:
            raise _bad_id_token("another issuer") from exc
        except jwt.PyJWTError as exc:
            raise _bad_id_token(f"{type(exc).__name__}: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.client_id:
            raise _bad_id_token("authorized party is another client")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise _bad_id_token("missing nonce" if sent is None else "nonce does not match")
        return claims


def provider_for(request: Request) -> OidcProvider:
    settings: Settings = request.app.state.settings
    if not settings.oidc_issuer:
        raise SignInFailed(
            NotFound,
            "oidc_not_configured",
            "Sign-in with an identity provider is not set up here.",
            "此处未配置身份提供方登录。",
        )
    provider: OidcProvider | None = getattr(request.app.state, "oidc_provider", None)
    if provider is None or provider.settings is not settings:
        provider = OidcProvider(settings)
        request.app.state.oidc_provider = provider
    return provider


# The state cookie.


def _cookie_key(settings: Settings) -> Fernet:
    # Its own key, derived from the service secret: never the key that signs sessions.
    digest = hmac.new(settings.jwt_secret.encode(), b"appeals oidc state cookie", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


_FLOW_KEYS: Final = frozenset({"state", "nonce", "verifier", "redirect_uri", "next"})


def seal_state(settings: Settings, flow: dict[str, str], *, at: float | None = None) -> str:
    payload = json.dumps(flow, separators=(",", ":")).encode()
    return _cookie_key(settings).encrypt_at_time(payload, int(time.time() if at is None else at)).decode()


def open_state(settings: Settings, sealed: str | None) -> dict[str, str] | None:
    """The flow a state cookie carries; None if it is missing, altered or too old."""
    if not sealed:
        return None
    try:
        flow = json.loads(_cookie_key(settings).decrypt(sealed.encode(), ttl=STATE_TTL_SECONDS))
    except (InvalidToken, ValueError):
        return None
    if (
        not isinstance(flow, dict)
        or set(flow) != _FLOW_KEYS
        or not all(isinstance(v, str) for v in flow.values())
    ):
        return None
    return flow


def _secure(settings: Settings) -> bool:
    return settings.environment is not Environment.DEVELOPMENT


def _set_state_cookie(response: Response, settings: Settings, flow: dict[str, str]) -> None:
    response.set_cookie(
        STATE_COOKIE,
        seal_state(settings, flow),
        max_age=STATE_TTL_SECONDS,
        httponly=True,
        secure=_secure(settings),
        samesite="lax",
        path=STATE_COOKIE_PATH,
    )


def _clear_state_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        STATE_COOKIE, path=STATE_COOKIE_PATH, httponly=True, secure=_secure(settings), samesite="lax"
    )


def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


# Claims to a principal.


def _claim(claims: dict[str, Any], name: str) -> object:
    """A claim by name, or by a dotted path into nested objects (realm_access.roles) when no
    claim has that exact name (namespaced claims are URLs with dots)."""
    if name in claims:
        return claims[name]
    value: object = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def roles_from_claims(settings: Settings, claims: dict[str, Any]) -> set[Role]:
    """Every role of ours the claims give the person, through the role map."""
    raw = _claim(claims, settings.oidc_role_claim)
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    mapping: dict[str, str] = dict(settings.oidc_role_map) or {role.value: role.value for role in Role}
    return {Role(mapping[value]) for value in values if isinstance(value, str) and value in mapping}


def role_from_claims(settings: Settings, claims: dict[str, Any]) -> Role:
    """Exactly one role for the person these claims describe (module docstring)."""
    roles = roles_from_claims(settings, claims)
    provider = settings.oidc_display_name
    if not roles:
        raise SignInFailed(
            Forbidden,
            "oidc_no_role",
            f"You signed in at {provider}, but your account there has no role in this service. "
            "Ask your administrator to grant you one.",
            f"您已在 {provider} 登录，但该账号在本服务中没有任何角色。请联系管理员为您开通。",
            f"claim {settings.oidc_role_claim!r}",
        )
    if Role.CUSTOMER in roles and len(roles) > 1:
        raise SignInFailed(
            Forbidden,
            "oidc_ambiguous_role",
            f"Your account at {provider} is both a customer and a member of staff; this service "
            "cannot tell which you are. Ask your administrator to keep them apart.",
            f"您在 {provider} 的账号同时是客户和员工，本服务无法判断您的身份。请联系管理员将两者分开。",
        )
    if roles == {Role.CUSTOMER}:
        return Role.CUSTOMER
    return next(role for role in STAFF_RANK if role in roles)


def principal_from_claims(settings: Settings, claims: dict[str, Any]) -> Principal:
    subject = _claim(claims, settings.oidc_subject_claim)
    if not isinstance(subject, str) or not subject or len(subject) > 200 or any(c.isspace() for c in subject):
        raise SignInFailed(
            Forbidden,
            "oidc_no_subject",
            "The identity provider did not say who you are in a form this service can use. "
            "Please tell the service desk.",
            "身份提供方未以本服务可用的方式提供您的身份信息。请联系服务台。",
            f"claim {settings.oidc_subject_claim!r}",
        )
    return Principal(subject=subject, role=role_from_claims(settings, claims))


# Routes.


@router.get("/sign-in/oidc")
async def oidc_sign_in(
    request: Request, settings: SettingsDep, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    try:
        provider = provider_for(request)
        discovery = await provider.discovery()
        if discovery.pkce_methods is not None and "S256" not in discovery.pkce_methods:
            raise _misconfigured(f"PKCE methods {discovery.pkce_methods}")
    except SignInFailed as failure:
        raise failure.for_viewer(request) from failure
    flow = {
        "state": secrets.token_urlsafe(32),
        "nonce": secrets.token_urlsafe(32),
        "verifier": secrets.token_urlsafe(64),
        "redirect_uri": settings.oidc_redirect_url or str(request.url_for("oidc_callback")),
        "next": _safe_next(next) or "",
    }
    target = _with_query(
        discovery.authorization_endpoint,
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": flow["redirect_uri"],
            "scope": settings.oidc_scopes,
            "state": flow["state"],
            "nonce": flow["nonce"],
            "code_challenge": _pkce_challenge(flow["verifier"]),
            "code_challenge_method": "S256",
        },
    )
    response = redirect(request, target)
    _set_state_cookie(response, settings, flow)
    return response


async def _complete(
    request: Request,
    settings: Settings,
    code: str | None,
    state: str | None,
    error: str | None,
    iss: str | None,
) -> tuple[Principal, str, list[Role]]:
    """The person signing in, where to go next, and every role the claims give them."""
    provider = provider_for(request)
    flow = open_state(settings, request.cookies.get(STATE_COOKIE))
    if flow is None:
        raise SignInFailed(
            Gone,
            "oidc_sign_in_expired",
            "This sign-in took too long or was started in another browser. Please start again.",
            "此次登录耗时过长，或是在其他浏览器中发起的。请重新开始。",
        )
    if not state or not hmac.compare_digest(state.encode(), flow.get("state", "").encode()):
        raise SignInFailed(
            DomainError,
            "oidc_state_mismatch",
            "This sign-in answer does not belong to the sign-in this browser started. Please start again.",
            "此登录答复与本浏览器发起的登录不符。请重新开始。",
        )
    if iss is not None and iss != (await provider.discovery()).issuer:
        # RFC 9207: an answer naming another issuer is another provider's (a mix-up attack).
        raise SignInFailed(
            DomainError,
            "oidc_wrong_issuer",
            "This sign-in answer came from another identity provider. Please start again.",
            "此登录答复来自其他身份提供方。请重新开始。",
        )
    if error:
        shown = error if _ERROR_CODE.fullmatch(error) else "error"
        provider_name = settings.oidc_display_name
        raise SignInFailed(
            Unauthorized,
            "oidc_provider_error",
            f"{provider_name} did not sign you in ({shown}). You can try again.",
            f"{provider_name} 未能让您登录（{shown}）。您可以重试。",
            shown,
        )
    if not code:
        raise SignInFailed(
            DomainError,
            "oidc_missing_code",
            "The identity provider sent you back without a sign-in code. Please start again.",
            "身份提供方返回时未附带登录代码。请重新开始。",
        )
    id_token = await provider.exchange(code, flow["verifier"], flow["redirect_uri"])
    claims = await provider.verify_id_token(id_token, flow["nonce"])
    principal = principal_from_claims(settings, claims)
    return principal, flow.get("next", ""), sorted(roles_from_claims(settings, claims))


@router.get("/sign-in/oidc/callback", name="oidc_callback")
async def oidc_callback(
    request: Request,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    iss: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    try:
        principal, next_url, roles = await _complete(request, settings, code, state, error, iss)
    except SignInFailed as failure:
        refused = failure.for_viewer(request)
        response: Response = error_page(request, refused.status_code, refused.detail, refused.code)
        _clear_state_cookie(response, settings)  # one answer per sign-in started
        return response
    # A member of staff is recorded in the staff directory from these claims (unless an admin
    # keeps their entry), and the session acts with the role the directory gives them.
    try:
        principal = await to_thread.run_sync(directory_sign_in, request, principal, roles)
    except DomainError as refused:  # an inactive member of staff
        response = error_page(request, refused.status_code, refused.detail, refused.code)
        _clear_state_cookie(response, settings)
        return response
    log.info("OIDC sign-in: %s", principal.actor)
    response = redirect(request, _safe_next(next_url) or home_for(principal))
    _clear_state_cookie(response, settings)
    start_session(response, settings, principal)
    return response
