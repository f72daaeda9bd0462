"""A small OpenID Connect provider for tests: a real HTTP server on a free port of 127.0.0.1.

It serves discovery, the JWKS (RSA keys generated once per test session), an authorize endpoint
that signs in the test-configured person at once (no login UI) and redirects back with a code,
and a token endpoint that checks the client, the redirect URI, the PKCE verifier and that the
code is used once, and answers with a signed ID token. Tests make it misbehave on purpose
(`login_as(..., error=..., claims=..., sign_with=...)`) to see the service refuse.

    with LocalOidcProvider() as provider:
        provider.login_as({"sub": "r-7", "appeals_roles": ["reviewer"]})
        ...  # the app, configured with provider.issuer, signs r-7 in
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

OMIT: Any = object()  # a claim value that removes the claim from the ID token

SignWith = Literal["own", "other_key_same_kid", "unknown_kid", "none"]


@functools.cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    """The test session's RSA keys, generated once each."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Login:
    """Who the authorize endpoint signs in next, and how the provider misbehaves."""

    claims: dict[str, Any]
    error: str | None = None  # answer the authorize request with this error instead
    sign_with: SignWith = "own"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    login: Login
    used: bool = False


@dataclass
class TokenRequest:
    """What the token endpoint received (tests check how the client authenticated)."""

    form: dict[str, str]
    authorization: str | None


@dataclass
class LocalOidcProvider:
    client_id: str = "appeals-web"
    # None: a public client (PKCE only).
    client_secret: str | None = "test-client-secret"
    redirect_uris: tuple[str, ...] = (
        "http://testserver/sign-in/oidc/callback",
        "https://appeals.example/sign-in/oidc/callback",
    )
    auth_methods: list[str] = field(default_factory=lambda: ["client_secret_basic", "client_secret_post"])
    login: Login | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    discovery_fetches: int = 0
    jwks_fetches: int = 0
    key_index: int = 0  # the key it signs with (rsa_key(key_index), kid "key-<n>")

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # Running.

    def __enter__(self) -> LocalOidcProvider:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # Test controls.

    def reset(self, *, client_secret: str | None = "test-client-secret") -> None:
        with self._lock:
            self.client_secret = client_secret
            self.auth_methods = ["client_secret_basic", "client_secret_post"]
            self.login = None
            self.grants.clear()
            self.token_requests.clear()
            self.authorize_requests.clear()
            self.discovery_fetches = self.jwks_fetches = 0
            self.key_index = 0

    def login_as(
        self, claims: dict[str, Any], *, error: str | None = None, sign_with: SignWith = "own"
    ) -> None:
        self.login = Login(claims=claims, error=error, sign_with=sign_with)

    def rotate_key(self) -> None:
        """Publishes a new key next to the old one and signs with it from now on."""
        self.key_index += 1

    # Endpoints.

    def discovery(self) -> dict[str, Any]:
        self.discovery_fetches += 1
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile"],
        }

    def jwks(self) -> dict[str, Any]:
        self.jwks_fetches += 1
        keys = []
        for index in range(self.key_index + 1):
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key(index).public_key(), as_dict=True)
            keys.append({**jwk, "kid": f"key-{index}", "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """(status, headers, body) for an authorization request."""
        self.authorize_requests.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            return 400, {}, "unknown client or redirect_uri"
        problems = [
            query.get("response_type") != "code",
            "openid" not in query.get("scope", "").split(),
            query.get("code_challenge_method") != "S256",
            len(query.get("code_challenge", "")) != 43,
        ]
        state = query.get("state")
        if any(problems):
            return self._back(redirect_uri, {"error": "invalid_request", "state": state})
        if self.login is None:
            return self._back(redirect_uri, {"error": "login_required", "state": state})
        if self.login.error:
            return self._back(redirect_uri, {"error": self.login.error, "state": state})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.grants[code] = Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=query["code_challenge"],
                nonce=query.get("nonce"),
                login=self.login,
            )
        return self._back(redirect_uri, {"code": code, "state": state})

    @staticmethod
    def _back(redirect_uri: str, params: dict[str, str | None]) -> tuple[int, dict[str, str], str]:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return 302, {"Location": f"{redirect_uri}?{query}"}, ""

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(TokenRequest(form=form, authorization=authorization))
        client_id, secret, method = form.get("client_id"), form.get("client_secret"), "none"
        if authorization and authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = (unquote_plus(part) for part in decoded.partition(":"))
            method = "client_secret_basic"
        elif secret is not None:
            method = "client_secret_post"
        if client_id != self.client_id:
            return 401, {"error": "invalid_client"}
        if self.client_secret is None:
            if secret is not None:
                return 401, {"error": "invalid_client"}
        elif method not in self.auth_methods or secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self.grants.get(form.get("code", ""))
            if grant is None or grant.used:
                return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
            grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
        if not 43 <= len(verifier) <= 128 or challenge.decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(grant),
        }

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": OMIT if grant.nonce is None else grant.nonce,
            **grant.login.claims,
        }
        claims = {k: v for k, v in claims.items() if v is not OMIT}
        sign_with = grant.login.sign_with
        if sign_with == "none":
            header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            return f"{header}.{body}."
        kid = f"key-{self.key_index}"
        key = rsa_key(self.key_index)
        if sign_with == "other_key_same_kid":
            key = rsa_key(99)
        elif sign_with == "unknown_kid":
            key, kid = rsa_key(99), "key-99"
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _handler_for(provider: LocalOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(
            self, status: int, body: str | dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(status)
            kind = "application/json" if isinstance(body, dict) else "text/plain"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._answer(200, provider.discovery())
            elif url.path == "/jwks":
                self._answer(200, provider.jwks())
            elif url.path == "/authorize":
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, headers, body = provider.authorize(query)
                self._answer(status, body, headers)
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._answer(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            status, body = provider.token(form, self.headers.get("Authorization"))
            self._answer(status, body)

    return Handler
