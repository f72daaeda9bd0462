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
from pydantic.json_schema import JsonDict
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
# Marks a field whose value is a secret: docs/configuration.md shows no default for it, and a
# refused value is never echoed back.
SECRET: JsonDict = {"secret": True}
REPO_ROOT = Path(__file__).resolve().parents[1]

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
    """Every setting is an environment variable APPEALS_<FIELD NAME> (or a line of `.env`); its
    description here is the one docs/configuration.md shows (`appeals config docs` writes it)."""

    model_config = SettingsConfigDict(env_prefix="APPEALS_", env_file=".env", extra="ignore")

    environment: Environment = Field(
        default=Environment.DEVELOPMENT,
        description="`development` or `production`. Production refuses weak and placeholder secrets "
        "and requires payload keys.",
    )
    data_dir: Path = Field(
        default=Path(".data"),
        description="Local state of `appeals dev`: the SQLite file (without a database URL), "
        "the local sink's mail, payload keys and logs.",
    )

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the database, e.g. `postgresql+psycopg://user:pw@host:5432/db`. "
        "Empty: a SQLite file under the data directory.",
        json_schema_extra=SECRET,
    )

    temporal_address: str = Field(default="127.0.0.1:7233", description="Temporal frontend, host:port.")
    temporal_namespace: str = Field(default="default", description="Temporal namespace.")
    temporal_task_queue: str = Field(
        default="appeals",
        description="The task queue the API starts workflows on and the workers poll (the same on both).",
    )
    temporal_ui_port: int = Field(
        default=8233, description="Port of the local Temporal Web UI (`appeals dev`; the console's links)."
    )
    temporal_request_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long a request waits on Temporal (connect, start, signal) before it answers "
        "without it: the start or signal is recorded in the database and the reconciler sends it later.",
    )
    payload_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Payload encryption keys (gateway/codec.py): a JSON object of key id to base64 of "
        "32 bytes (`appeals payload-key --id ID` makes one). Old ids stay to decrypt. Required in "
        "production: every process that connects to Temporal refuses to start without; "
        "`appeals dev` makes its own in the data directory.",
        json_schema_extra=SECRET,
    )
    payload_key_id: str | None = Field(
        default=None, description="The key id new payloads are encrypted with; unset: the only key."
    )
    codec_server_port: int = Field(
        default=8081, description="Port of the codec server the Temporal Web UI decodes payloads with."
    )
    codec_server_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the codec server (JSON list); empty: the Web UI at the "
        "Temporal web URL, by localhost and by 127.0.0.1.",
    )

    s3_endpoint_url: str | None = Field(
        default="http://127.0.0.1:9000",
        description="S3 endpoint (MinIO, moto); unset: AWS S3 of the region.",
    )
    s3_bucket: str = Field(default="appeal-documents", description="Bucket of the uploaded documents.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    s3_access_key_id: str = Field(default="local", description="S3 access key id.")
    s3_secret_access_key: str = Field(
        default="local-secret", description="S3 secret access key.", json_schema_extra=SECRET
    )
    s3_server_side_encryption: str | None = Field(
        default="AES256",
        description="SSE of every stored document (`AES256`, `aws:kms`); unset: none. moto and some "
        "MinIO setups do not do SSE; AWS S3 and KMS-enabled MinIO do.",
    )

    api_host: str = Field(default="127.0.0.1", description="Interface `appeals api` listens on.")
    api_port: int = Field(default=8000, description="Port `appeals api` listens on.")
    api_workers: int = Field(
        default=1,
        ge=1,
        description="uvicorn worker processes of `appeals api`: one process serves about one core's "
        "worth of requests.",
    )
    api_read_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threads per API process that run its short database reads (an appeal, a "
        "queue page). Few on purpose: more only contend for the interpreter lock; uploads and other "
        "long work keep a pool of their own.",
    )
    api_graceful_shutdown_seconds: int = Field(
        default=30,
        ge=1,
        description="On SIGTERM, after the drain, the API stops accepting connections and lets "
        "requests in flight finish for at most this long (whole seconds).",
    )
    api_shutdown_drain_seconds: float = Field(
        default=0.0,
        ge=0,
        description="On SIGTERM the API first answers readiness 503 for this long while it still "
        "serves, so a load balancer stops sending it requests; set it to the balancer's health "
        "check interval times its failure threshold.",
    )
    worker_graceful_shutdown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM the worker stops polling and lets activities in flight finish for at "
        "most this long; then they are cancelled and Temporal retries them on another worker.",
    )
    s3_port: int = Field(default=9000, description="Port of the local S3 server that `appeals dev` starts.")
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the worker's Prometheus endpoints listen on (0.0.0.0 in a container).",
    )
    worker_metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="The worker's Prometheus endpoint of the Temporal SDK's own metrics "
        "(docs/metrics.md); 0: off. Each worker process on one host needs ports of its own.",
    )
    business_metrics_port: int = Field(
        default=9465,
        ge=0,
        le=65535,
        description="The worker's Prometheus endpoint of the business metrics, counted from the "
        "database at scrape time; 0: off.",
    )
    business_metrics_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long one count of the business metrics is served before the database is "
        "asked again: a count aggregates every appeal ever recorded (bench/business_metrics_bench.py: "
        "0.6 s on PostgreSQL with 100,000 appeals), so each worker process runs it at most this often.",
    )

    jwt_secret: str = Field(
        default=DEV_JWT_SECRET,
        description="HMAC key of the bearer tokens. Production refuses the development one, one under "
        "32 characters, a repeated pattern or too few distinct characters (`openssl rand -hex 32`).",
        json_schema_extra=SECRET,
    )
    jwt_algorithm: str = Field(default="HS256", description="Signature algorithm of the bearer tokens.")
    jwt_issuer: str = Field(default="limit-restore-appeals", description="`iss` of the bearer tokens.")
    jwt_ttl: timedelta = Field(default=timedelta(hours=12), description="Lifetime of a minted token.")

    document_max_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest document a customer may upload."
    )
    json_body_max_bytes: int = Field(
        default=16 * 1024,
        gt=0,
        description="JSON request bodies are capped at this size before they are read "
        "(api/request_guard.py); a multipart upload at the document limit plus its envelope.",
    )
    form_body_max_bytes: int = Field(
        default=32 * 1024, gt=0, description="Form request bodies are capped at this size."
    )
    rate_limit_window: timedelta = Field(
        default=timedelta(minutes=1),
        gt=timedelta(0),
        description="Writes per principal are limited in any window this long (core/rate_limits.py), "
        "counted in the database, so every API process shares them.",
    )
    rate_limit_submissions: int = Field(
        default=10, ge=0, description="Appeals one principal may submit per window; 0: no limit."
    )
    rate_limit_uploads: int = Field(
        default=60, ge=0, description="Documents one principal may upload per window; 0: no limit."
    )
    rate_limit_decisions: int = Field(
        default=120, ge=0, description="Review decisions one principal may make per window; 0: no limit."
    )
    presigned_upload_expiry: timedelta = Field(
        default=timedelta(minutes=10),
        description="Lifetime of a presigned upload. Short on purpose: a leaked link is useless "
        "minutes later.",
    )
    download_link_expiry: timedelta = Field(
        default=timedelta(minutes=5), description="Lifetime of a document download link."
    )
    evidence_lock_days: int = Field(
        default=5 * 365,
        ge=0,
        description="An accepted document's kept copy is locked (S3 Object Lock, GOVERNANCE) this many "
        "days where the bucket has object lock; 0: not locked (core/documents/evidence.py).",
    )
    document_leftover_retention: timedelta = Field(
        default=timedelta(days=30),
        ge=timedelta(0),
        description="The document sweep (workflows/sweep.py) deletes rejected files and uploads never "
        "completed this long after their verdict or expiry.",
    )
    document_sweep_interval: timedelta = Field(
        default=timedelta(hours=1),
        gt=timedelta(0),
        description="How often the document sweep's Temporal Schedule runs.",
    )
    policy_deployment: Path = Field(
        default=REPO_ROOT / "policy" / "deployment.toml",
        description="The policy deployment (core/policy/deployment.py): the champion policy that "
        "decides and an optional challenger scored in shadow.",
    )
    document_deadline: timedelta | None = Field(
        default=None,
        description="Overrides the policy's document collection deadline (tests); unset: the policy's.",
    )
    document_reminders: list[timedelta] | None = Field(
        default=None,
        description="Overrides the policy's document reminders, a JSON list of durations (tests); "
        "unset: the policy's.",
    )
    review_due: timedelta = Field(
        default=timedelta(hours=24), description="How long a review task may wait before it is overdue."
    )
    pdf_child_memory_bytes: int = Field(
        default=256 * 1024 * 1024,
        description="Memory limit of the child process that parses an uploaded PDF.",
    )
    pdf_child_timeout_seconds: float = Field(
        default=5.0, description="Time limit of the child process that parses an uploaded PDF."
    )
    human_review_window: timedelta | None = Field(
        default=None,
        description="How long after an automatic decline the customer may ask for a human review; "
        "unset: the policy's window.",
    )

    smtp_host: str = Field(
        default="127.0.0.1",
        description="SMTP relay for email. The defaults reach the local sink that `appeals dev` starts "
        "(.eml files under the data directory); production points at a real relay.",
    )
    smtp_port: int = Field(default=8025, description="SMTP relay port.")
    smtp_username: str | None = Field(default=None, description="SMTP user; unset: no authentication.")
    smtp_password: str | None = Field(default=None, description="SMTP password.", json_schema_extra=SECRET)
    smtp_starttls: bool = Field(
        default=False,
        description="Use STARTTLS. Credentials are refused without it unless the relay is on this host.",
    )
    smtp_from: str = Field(
        default="Credit Limit Appeals <no-reply@appeals.local>", description="From: of outbound email."
    )
    smtp_timeout_seconds: float = Field(default=10.0, description="SMTP connect and send timeout.")
    webhook_urls: list[str] = Field(
        default_factory=list,
        description="Partner webhooks (JSON list): each URL receives every event, JSON signed with "
        "HMAC-SHA256.",
    )
    webhook_secret: str | None = Field(
        default=None,
        description="HMAC key of the webhooks; required with webhook URLs.",
        json_schema_extra=SECRET,
    )
    webhook_timeout_seconds: float = Field(default=10.0, description="Timeout of one webhook delivery.")
    risk_event_secret: SecretStr | None = Field(
        default=None,
        description="Risk events from the core credit system (`POST /admin/ledger/events`, "
        "docs/lender-loop.md) may be signed with this secret instead of a staff token (the webhooks' "
        "HMAC scheme); unset: staff tokens only. Production refuses a weak one.",
        json_schema_extra=SECRET,
    )
    public_url: str | None = Field(
        default=None,
        description="This site's address as customers reach it: notices link to its portal (/app). "
        "Unset: the API's host and port.",
    )
    credit_line_api_url: str | None = Field(
        default=None,
        description="An external credit-line API that applies decided limits "
        "(core/ledger/credit_line_api.py); unset: limits are applied to our ledger directly.",
    )
    credit_line_api_token: str | None = Field(
        default=None, description="Bearer token for the credit-line API.", json_schema_extra=SECRET
    )
    credit_line_api_timeout_seconds: float = Field(
        default=15.0, description="Timeout of one credit-line API call."
    )

    display_timezone: str = Field(
        default="Asia/Shanghai",
        description="The zone web pages show times in when the browser has not told us its own.",
    )
    temporal_web_url: str | None = Field(
        default=None,
        description="Where a browser reaches the Temporal Web UI: the reviewer console links each case "
        "there, and the codec server lets that origin call it. Unset: the local dev UI.",
    )

    log_format: Literal["json", "text"] = Field(
        default="json",
        description="Logs (core/logs.py): JSON lines on stderr, the same schema for the API, the worker "
        "and the codec server; `text` for a person at a terminal.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The least severe log level written."
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="Traces (core/tracing.py) go by OTLP over HTTP to this collector (its base URL; "
        "/v1/traces is added), or where the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT says; "
        "neither set: no tracing at all.",
    )

    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect sign-in to the web pages (api/pages/oidc.py): the issuer URL, "
        "discovery at `{issuer}/.well-known/openid-configuration`. Unset: no OIDC. https only "
        "(plain http only on this host).",
    )
    oidc_client_id: str | None = Field(default=None, description="OIDC client id (required with the issuer).")
    oidc_client_secret: str | None = Field(
        default=None,
        description="Set: a confidential client (client_secret_basic or _post, as discovery allows); "
        "unset: a public client (PKCE only).",
        json_schema_extra=SECRET,
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        description="OIDC redirect URL; unset: this site's /sign-in/oidc/callback as the request reached it.",
    )
    oidc_scopes: str = Field(default="openid profile", description="OIDC scopes (must include openid).")
    oidc_provider_name: str | None = Field(
        default=None, description="Name on the sign-in button; unset: the issuer's host."
    )
    oidc_role_claim: str = Field(
        default="appeals_roles",
        description="The ID token claim with the role(s): a name, or a dotted path such as "
        "realm_access.roles; one value or a list.",
    )
    oidc_role_map: dict[str, RoleName] = Field(
        default_factory=dict,
        description="JSON object, claim value -> role (customer, reviewer, senior_reviewer, "
        "supervisor, admin); empty: each role's own name.",
    )
    oidc_subject_claim: str = Field(
        default="sub", description="The claim that identifies the person (for customers, their id)."
    )
    oidc_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of discovery, JWKS and token requests."
    )

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
