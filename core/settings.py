"""Service settings: environment variables with the APPEALS_ prefix, optionally from `.env`.

Defaults describe the embedded local stack that `appeals dev` starts; production overrides
them (see docker-compose.yml).
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
# The mark of a placeholder secret (docker-compose.yml's examples, the development secret):
# refused in production wherever a secret is set.
PLACEHOLDER_MARK = "change-me"
MIN_SECRET_CHARS = 32
# Bits per character, measured on the secret itself: 32 random hex characters have 2.8 to 4,
# base64 more; a word repeated, or one character, far less.
MIN_SECRET_BITS_PER_CHAR = 2.75

# The roles of core/auth.py's Role, by name (core.auth imports this module, not the reverse).
RoleName = Literal["customer", "reviewer", "senior_reviewer", "supervisor", "admin"]


def weak_secret(secret: str) -> str | None:
    """Why `secret` is too weak to sign tokens with, or None: shorter than 32 characters, a
    placeholder, a repeated pattern (`abcabc...`) or too few bits per character (`aaaa...`)."""
    if PLACEHOLDER_MARK in secret.lower():
        return "it is a placeholder (contains 'change-me')"
    if len(secret) < MIN_SECRET_CHARS:
        return f"it is shorter than {MIN_SECRET_CHARS} characters"
    for period in range(1, len(secret) // 2 + 1):
        if len(secret) % period == 0 and secret == secret[:period] * (len(secret) // period):
            return "it repeats a short pattern"
    counts = Counter(secret).values()
    bits = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts)
    if bits < MIN_SECRET_BITS_PER_CHAR:
        return f"it has {bits:.1f} bits per character (random hex has 4)"
    return None


def is_loopback_host(host: str | None) -> bool:
    """localhost or a loopback address: plain http to it never leaves this machine."""
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APPEALS_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".data")

    database_url: str = ""  # empty: SQLite file under data_dir

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "appeals"
    temporal_ui_port: int = 8233
    # How long a request waits on Temporal (connect, start, signal) before it answers without
    # it: the start or signal is recorded in the database and the reconciler sends it later.
    temporal_request_timeout_seconds: float = Field(default=2.0, gt=0)
    # Payload encryption (gateway/codec.py, which checks them): key id -> base64 of 32 bytes (a
    # JSON object), and the id new payloads are encrypted with (default: the only key). Old ids
    # stay to decrypt. Required in production: every process that connects to Temporal refuses
    # to start without; `appeals dev` makes its own in data_dir.
    payload_keys: dict[str, SecretStr] = Field(default_factory=dict)
    payload_key_id: str | None = None
    # The codec server the Temporal Web UI decodes payloads with (`appeals codec-server`), and
    # the origins allowed to call it (empty: the Web UI at temporal_ui_url, by localhost and
    # by 127.0.0.1).
    codec_server_port: int = 8081
    codec_server_cors_origins: list[str] = Field(default_factory=list)

    s3_endpoint_url: str | None = "http://127.0.0.1:9000"
    s3_bucket: str = "appeal-documents"
    s3_region: str = "us-east-1"
    s3_access_key_id: str = "local"
    s3_secret_access_key: str = "local-secret"
    # moto and some MinIO setups do not do SSE; AWS S3 and KMS-enabled MinIO do.
    s3_server_side_encryption: str | None = "AES256"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # uvicorn worker processes of `appeals api`: one process serves ~1 core's worth of requests.
    api_workers: int = Field(default=1, ge=1)
    s3_port: int = 9000
    # Prometheus endpoints of the worker process (docs/metrics.md): the Temporal SDK's own
    # metrics on worker_metrics_port, the business metrics (counted from the database at scrape
    # time) on business_metrics_port; 0 turns one off. Each worker process needs ports of its
    # own: run several on one host with different ports. worker_metrics_host is the interface
    # both listen on (0.0.0.0 in a container).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    business_metrics_port: int = Field(default=9465, ge=0, le=65535)
    # How long one count of the business metrics is served before the database is asked again.
    # A count aggregates every appeal ever recorded (bench/business_metrics_bench.py: 0.6 s on
    # PostgreSQL with 100,000 appeals, growing with them), so however often and by however many
    # it is scraped, each worker process runs it at most this often.
    business_metrics_cache_seconds: float = Field(default=30.0, ge=0)

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "limit-restore-appeals"
    jwt_ttl: timedelta = timedelta(hours=12)

    document_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Request bodies are capped before they are read (api/request_guard.py): JSON and form
    # bodies at these sizes, a multipart upload at document_max_bytes plus its envelope.
    json_body_max_bytes: int = Field(default=16 * 1024, gt=0)
    form_body_max_bytes: int = Field(default=32 * 1024, gt=0)
    # Writes per principal (core/rate_limits.py): at most this many in any window of
    # rate_limit_window, counted in the database, so every API process shares them; 0: no limit.
    rate_limit_window: timedelta = Field(default=timedelta(minutes=1), gt=timedelta(0))
    rate_limit_submissions: int = Field(default=10, ge=0)
    rate_limit_uploads: int = Field(default=60, ge=0)
    rate_limit_decisions: int = Field(default=120, ge=0)
    # Short on purpose: a leaked presigned POST or download link is useless minutes later.
    presigned_upload_expiry: timedelta = timedelta(minutes=10)
    download_link_expiry: timedelta = timedelta(minutes=5)
    # An accepted document's kept copy is locked (S3 Object Lock, GOVERNANCE) for this many days
    # where the bucket has object lock; 0: not locked (core/documents/evidence.py).
    evidence_lock_days: int = Field(default=5 * 365, ge=0)
    # The document sweep (workflows/sweep.py, a Temporal Schedule every document_sweep_interval)
    # deletes rejected files and uploads never completed this long after their verdict or expiry.
    document_leftover_retention: timedelta = Field(default=timedelta(days=30), ge=timedelta(0))
    document_sweep_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    # The policy deployment (core/policy/deployment.py): the champion policy that decides and an
    # optional challenger scored in shadow. Default: the repository's policy/deployment.toml.
    policy_deployment: Path = Path(__file__).resolve().parents[1] / "policy" / "deployment.toml"
    # Collection deadline and reminders come from the policy file; these override it (tests).
    document_deadline: timedelta | None = None
    document_reminders: list[timedelta] | None = None
    review_due: timedelta = timedelta(hours=24)
    pdf_child_memory_bytes: int = 256 * 1024 * 1024
    pdf_child_timeout_seconds: float = 5.0
    # How long after an automatic decline the customer may ask for a human review;
    # None: the policy's window.
    human_review_window: timedelta | None = None

    # Email over SMTP. The defaults reach the local sink that `appeals dev` starts (it writes
    # .eml files under data_dir/mail); production points these at a real relay with STARTTLS
    # and credentials (refused without STARTTLS unless the relay is on this host).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "Credit Limit Appeals <no-reply@appeals.local>"
    smtp_timeout_seconds: float = 10.0
    # Partner webhooks: each URL receives every event, JSON signed with HMAC-SHA256
    # (APPEALS_WEBHOOK_URLS is a JSON list).
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = 10.0
    # Risk events from the core credit system (`POST /admin/ledger/events`, docs/lender-loop.md)
    # may be signed with this secret instead of a staff token (the webhooks' HMAC scheme); unset:
    # staff tokens only. Production refuses a weak one.
    risk_event_secret: SecretStr | None = None
    # This site's address as customers reach it: notices about an account link to the portal
    # (`portal_url`, /app). Default: the API's host and port.
    public_url: str | None = None
    # An external credit-line API that applies decided limits (core/ledger/credit_line_api.py);
    # None: limits are applied to our ledger directly.
    credit_line_api_url: str | None = None
    credit_line_api_token: str | None = None
    credit_line_api_timeout_seconds: float = 15.0

    # Web pages: the zone times are shown in when the browser has not told us its own, and the
    # Temporal Web UI the reviewer console links each case to (default: the local dev UI).
    display_timezone: str = "Asia/Shanghai"
    temporal_web_url: str | None = None

    # Logs (core/logs.py): JSON lines on stderr by default, the same schema for the API, the
    # worker and the codec server; `text` for a person at a terminal.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Traces (core/tracing.py) go by OTLP over HTTP to this collector (its base URL; /v1/traces
    # is added), or where the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT says; neither set:
    # no tracing at all.
    otel_exporter_otlp_endpoint: str | None = None

    # Sign-in to the web pages with an OpenID Connect provider (api/pages/oidc.py): unset
    # issuer, no OIDC. Discovery at `{issuer}/.well-known/openid-configuration`. With a client
    # secret the client is confidential (client_secret_basic or _post, as discovery allows);
    # without one it is public (PKCE only). The redirect URL defaults to this site's
    # /sign-in/oidc/callback as the request reached it. The role claim (a name, or a dotted path
    # such as realm_access.roles) holds one value or a list; the role map (JSON object, claim
    # value -> role) translates them, by default each role's own name.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_url: str | None = None
    oidc_scopes: str = "openid profile"
    oidc_provider_name: str | None = None  # on the sign-in button; default: the issuer's host
    oidc_role_claim: str = "appeals_roles"
    oidc_role_map: dict[str, RoleName] = Field(default_factory=dict)
    oidc_subject_claim: str = "sub"
    oidc_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> Settings:
        if self.environment is not Environment.PRODUCTION:
            return self
        why = "it is the development secret" if self.jwt_secret == DEV_JWT_SECRET else None
        why = why or weak_secret(self.jwt_secret)
        if why:
            raise ValueError(
                f"APPEALS_JWT_SECRET is refused in production: {why}. Use at least "
                f"{MIN_SECRET_CHARS} random characters, e.g. `openssl rand -hex 32`"
            )
        if self.risk_event_secret is not None:
            why = weak_secret(self.risk_event_secret.get_secret_value())
            if why:
                raise ValueError(
                    f"APPEALS_RISK_EVENT_SECRET is refused in production: {why}. Use at least "
                    f"{MIN_SECRET_CHARS} random characters, e.g. `openssl rand -hex 32`"
                )
        secrets = {
            "APPEALS_DATABASE_URL": self.database_url,
            "APPEALS_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "APPEALS_SMTP_PASSWORD": self.smtp_password,
            "APPEALS_WEBHOOK_SECRET": self.webhook_secret,
            "APPEALS_CREDIT_LINE_API_TOKEN": self.credit_line_api_token,
            "APPEALS_OIDC_CLIENT_SECRET": self.oidc_client_secret,
        }
        placeholders = [name for name, value in secrets.items() if PLACEHOLDER_MARK in (value or "").lower()]
        if placeholders:
            raise ValueError(
                f"{', '.join(placeholders)} still hold a '{PLACEHOLDER_MARK}' placeholder; "
                "set real secrets in production"
            )
        return self

    @model_validator(mode="after")
    def _webhooks_need_a_secret(self) -> Settings:
        if self.webhook_urls and not self.webhook_secret:
            raise ValueError("APPEALS_WEBHOOK_SECRET must be set when APPEALS_WEBHOOK_URLS is set")
        return self

    @model_validator(mode="after")
    def _oidc_is_complete(self) -> Settings:
        if not self.oidc_issuer:
            return self
        if not self.oidc_client_id:
            raise ValueError("APPEALS_OIDC_CLIENT_ID must be set when APPEALS_OIDC_ISSUER is set")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError("APPEALS_OIDC_SCOPES must include openid")
        issuer = urlsplit(self.oidc_issuer)
        if issuer.scheme != "https" and not (issuer.scheme == "http" and is_loopback_host(issuer.hostname)):
            raise ValueError("APPEALS_OIDC_ISSUER must be an https URL (plain http only on this host)")
        return self

    @property
    def oidc_display_name(self) -> str | None:
        """The identity provider's name on the sign-in button; None without OIDC sign-in."""
        if not self.oidc_issuer:
            return None
        return self.oidc_provider_name or urlsplit(self.oidc_issuer).hostname or self.oidc_issuer

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'appeals.db').resolve()}"

    @property
    def portal_url(self) -> str:
        """The customer portal's home (/app), as linked from notices."""
        base = self.public_url or f"http://{self.api_host}:{self.api_port}"
        return f"{base.rstrip('/')}/app"

    @property
    def temporal_ui_url(self) -> str:
        if self.temporal_web_url:
            return self.temporal_web_url.rstrip("/")
        host = self.temporal_address.rsplit(":", 1)[0]
        return f"http://{host}:{self.temporal_ui_port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
