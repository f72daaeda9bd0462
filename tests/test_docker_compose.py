"""docker-compose.yml and the Dockerfile, checked as data (no Docker engine needed).

The compose file is for users' machines; these tests keep it in step with the code it
configures: the settings fields, the search attributes, and the service wiring.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from core.settings import Environment, Settings
from gateway.temporal import data_converter
from launcher.codec_server import cors_origins
from workflows.search_attributes import ALL_KEYS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# The packages pyproject.toml installs, each a directory the image must carry.
PACKAGES = [
    pattern.rstrip("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]["include"]
]

PREFIX = "APPEALS_"
SETTINGS_ENV_NAMES = {PREFIX + name.upper() for name in Settings.model_fields}
DUMMY_JWT_SECRET = "3f9c0a7e5b21d84c6e0f9a3b7d2c18e4"  # 32 hex characters, as `openssl rand -hex 16`
DUMMY_PAYLOAD_KEYS = json.dumps({"k1": base64.b64encode(b"k" * 32).decode()})
# What the host must export (the file's header says how).
HOST_ENV = {
    "APPEALS_JWT_SECRET": DUMMY_JWT_SECRET,
    "APPEALS_PAYLOAD_KEYS": DUMMY_PAYLOAD_KEYS,
    "POSTGRES_PASSWORD": "9d1e4b7a2c6f0e8d3b5a7c9e1f2d4b6a",
    "MINIO_ROOT_PASSWORD": "0b8e6d4c2a1f3e5d7c9b2a4f6e8d0c1b",
    "APPEALS_S3_SECRET_ACCESS_KEY": "5c7e9a1b3d5f7e9c2b4d6f8a0c2e4a6b",
    "MINIO_KMS_SECRET_KEY": "appeals-key:" + base64.b64encode(b"m" * 32).decode(),
    "GRAFANA_ADMIN_PASSWORD": "7e1c3a5b9d2f4e6a8c0b1d3f5a7c9e2b",
}
# Variables that hold a secret: each must come from the host, never from a default in the file.
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEYS?)$|SECRET_KEY")


def without(*names: str) -> dict[str, str]:
    return {name: value for name, value in HOST_ENV.items() if name not in names}


CLI_SA_TYPES = {
    "TEXT": "Text",
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}

# Compose interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Resolves compose variables as `docker compose` would, given the host environment."""

    def _one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        if op in (":?", "?"):
            raise KeyError(f"required variable {name} is not set: {arg}")
        return ""

    return _INTERPOLATION.sub(_one, value)


def referenced_variables(value: str) -> set[str]:
    return {m.group("name") or m.group("bare") for m in _INTERPOLATION.finditer(value) if m.group(0) != "$$"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict) and services
    return services


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        pairs = (item.split("=", 1) for item in env)
        return {key: value for key, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def depends_on_of(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published_ports(service: Mapping[str, Any]) -> dict[int, int]:
    """Host port -> container port."""
    published: dict[int, int] = {}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            published[int(port["published"])] = int(port["target"])
            continue
        parts = str(port).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {port!r} is not published on a fixed host port"
        published[int(parts[-2])] = int(parts[-1])
    return published


def command_text(service: Mapping[str, Any]) -> str:
    command = service.get("command")
    if isinstance(command, list):
        return "\n".join(str(part) for part in command)
    return str(command or "")


def command_list(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    return [str(part) for part in command] if isinstance(command, list) else shlex.split(command)


def created_search_attributes(script: str) -> dict[str, str]:
    """Name -> type of every `temporal operator search-attribute create` in a shell script."""
    created: dict[str, str] = {}
    for line in script.replace("\\\n", " ").splitlines():
        if "search-attribute create" not in line:
            continue
        words = shlex.split(line.split("#", 1)[0])
        names = [words[i + 1] for i, word in enumerate(words) if word in ("--name", "-n")]
        types = [words[i + 1] for i, word in enumerate(words) if word in ("--type", "-t")]
        assert len(names) == len(types) > 0, line
        for name, sa_type in zip(names, types, strict=True):
            assert name not in created, f"{name} created twice"
            created[name] = sa_type
    return created


def api_settings(services: Mapping[str, Mapping[str, Any]], host_env: dict[str, str]) -> Settings:
    raw = environment_of(services["api"])
    resolved = {key: interpolate(value, host_env) for key, value in raw.items()}
    # Only the compose environment counts: no .env file, no APPEALS_* from the test machine.
    settings_env = {name: value for name, value in resolved.items() if name.startswith(PREFIX)}
    with pytest.MonkeyPatch.context() as mp:
        for name in SETTINGS_ENV_NAMES:
            mp.delenv(name, raising=False)
        for name, value in settings_env.items():
            mp.setenv(name, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


# --- images and builds -------------------------------------------------------------------


def test_every_service_has_a_pinned_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service.get("image")
        assert image, f"{name}: neither image nor build"
        assert "${" not in image, f"{name}: image {image!r} depends on the environment"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: image {image!r} is not pinned"


def test_api_and_worker_share_one_build(services: dict[str, dict[str, Any]]) -> None:
    api, worker = services["api"], services["worker"]
    assert api.get("build") and api["build"] == worker.get("build")
    assert api.get("image") == worker.get("image")
    build = api["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (COMPOSE_FILE.parent / context / dockerfile).resolve() == DOCKERFILE


def test_api_and_worker_commands(services: dict[str, dict[str, Any]]) -> None:
    assert command_list(services["api"]) == [
        "appeals", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2",
    ]  # fmt: skip
    assert command_list(services["worker"]) == ["appeals", "worker"]


def test_the_api_healthcheck_asks_for_readiness(services: dict[str, dict[str, Any]]) -> None:
    """Readiness, not liveness: the API is healthy when it can reach what it needs."""
    assert "/health/ready" in json.dumps(services["api"]["healthcheck"]["test"])


# --- application settings ------------------------------------------------------------------


def test_every_appeals_variable_is_a_settings_field(services: dict[str, dict[str, Any]]) -> None:
    used: set[str] = set()
    for service in services.values():
        env = environment_of(service)
        used |= {key for key in env if key.startswith(PREFIX)}
        for value in env.values():
            used |= {name for name in referenced_variables(value) if name.startswith(PREFIX)}
    assert used, "no APPEALS_* variables at all"
    unknown = used - SETTINGS_ENV_NAMES
    assert not unknown, f"not fields of core.settings.Settings: {sorted(unknown)}"


def test_api_and_worker_get_the_same_production_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    api_env, worker_env = environment_of(services["api"]), environment_of(services["worker"])
    assert api_env == worker_env
    assert api_env["APPEALS_ENVIRONMENT"] == Environment.PRODUCTION.value
    for required in (
        "APPEALS_DATABASE_URL",
        "APPEALS_TEMPORAL_ADDRESS",
        "APPEALS_S3_ENDPOINT_URL",
        "APPEALS_S3_BUCKET",
        "APPEALS_S3_ACCESS_KEY_ID",
        "APPEALS_S3_SECRET_ACCESS_KEY",
        "APPEALS_JWT_SECRET",
    ):
        assert required in api_env, f"{required} missing"
    assert api_env["APPEALS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert api_env["APPEALS_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert api_env["APPEALS_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_jwt_secret_is_required_from_the_host(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        value = environment_of(services[name])["APPEALS_JWT_SECRET"]
        assert re.fullmatch(r"\$\{APPEALS_JWT_SECRET:\?[^}]+\}", value), value
    with pytest.raises(KeyError, match="APPEALS_JWT_SECRET"):
        api_settings(services, host_env=without("APPEALS_JWT_SECRET"))


def test_every_secret_is_required_from_the_host(compose: dict[str, Any]) -> None:
    """No secret has a default in the file (`${NAME:?...}`): compose stops instead of starting
    with a `*-change-me` value, and none is left anywhere in the file."""
    text = COMPOSE_FILE.read_text()
    secrets = set()
    for match in _INTERPOLATION.finditer(text):
        name = match.group("name") or match.group("bare")
        if name and SECRET_NAME.search(name):
            secrets.add(name)
            assert match.group("op") == ":?", f"{match.group(0)}: a secret must be required (:?)"
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "APPEALS_S3_SECRET_ACCESS_KEY"} <= secrets
    assert {"APPEALS_JWT_SECRET", "APPEALS_PAYLOAD_KEYS", "MINIO_KMS_SECRET_KEY"} <= secrets
    assert not re.search(r"\$\{[^}]*change-me[^}]*\}", text)
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "APPEALS_S3_SECRET_ACCESS_KEY"):
        with pytest.raises(KeyError, match=name):
            for service in compose["services"].values():
                for value in environment_of(service).values():
                    interpolate(value, without(name))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APPEALS_JWT_SECRET", "a" * 32),
        ("APPEALS_JWT_SECRET", "abcd" * 10),
        ("APPEALS_JWT_SECRET", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
        ("APPEALS_JWT_SECRET", "my-jwt-secret-change-me-please-0123"),
        ("APPEALS_S3_SECRET_ACCESS_KEY", "appeals-app-secret-change-me"),
        ("POSTGRES_PASSWORD", "appeals-db-change-me"),
    ],
)
def test_production_refuses_weak_and_placeholder_secrets(
    services: dict[str, dict[str, Any]], name: str, value: str
) -> None:
    """The compose file's old defaults and a JWT secret of 32 x 'a' stop the API at start."""
    with pytest.raises(
        ValidationError, match=name if name.startswith("APPEALS_") else "APPEALS_DATABASE_URL"
    ):
        api_settings(services, host_env={**HOST_ENV, name: value})


def test_api_environment_validates_in_production(services: dict[str, dict[str, Any]]) -> None:
    settings = api_settings(services, host_env=HOST_ENV)
    assert settings.environment is Environment.PRODUCTION
    assert settings.jwt_secret == DUMMY_JWT_SECRET
    assert settings.effective_database_url.startswith("postgresql+psycopg://appeals:")
    assert settings.effective_database_url.endswith("@postgres:5432/appeals")
    assert settings.temporal_address == "temporal:7233"
    assert settings.s3_endpoint_url == "http://minio:9000"


def test_production_mode_is_enforced_on_that_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    """The production check really runs: a short secret in the same environment is refused."""
    with pytest.raises(ValidationError, match="APPEALS_JWT_SECRET"):
        api_settings(services, host_env={**HOST_ENV, "APPEALS_JWT_SECRET": "too-short"})


def test_minio_setup_creates_the_bucket_and_user_the_app_uses(
    services: dict[str, dict[str, Any]],
) -> None:
    host_env = HOST_ENV
    settings = api_settings(services, host_env)
    setup = services["minio-setup"]
    env = {k: interpolate(v, host_env) for k, v in environment_of(setup).items()}
    assert env["BUCKET"] == settings.s3_bucket
    assert env["APP_ACCESS_KEY"] == settings.s3_access_key_id
    assert env["APP_SECRET_KEY"] == settings.s3_secret_access_key
    script = command_text(setup)
    # With object lock (versions pinned, kept evidence locked), and the app may use versions.
    assert re.search(r"mc mb --ignore-existing --with-lock \"?local/\$\$BUCKET", script)
    for action in (
        "s3:ListBucketVersions",
        "s3:GetObjectVersion",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
    ):
        assert action in script
    assert "mc admin user add local" in script
    assert depends_on_of(setup) == {"minio": "service_healthy"}
    # SSE (AES256 by default in the app) needs a KMS key on MinIO.
    if settings.s3_server_side_encryption:
        assert "MINIO_KMS_SECRET_KEY" in environment_of(services["minio"])


def test_payload_keys_are_required_from_the_host_and_the_codec_server_shares_them(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("api", "worker", "codec"):
        value = environment_of(services[name])["APPEALS_PAYLOAD_KEYS"]
        assert re.fullmatch(r"\$\{APPEALS_PAYLOAD_KEYS:\?[^}]+\}", value), value
    with pytest.raises(KeyError, match="APPEALS_PAYLOAD_KEYS"):
        api_settings(services, host_env=without("APPEALS_PAYLOAD_KEYS"))
    settings = api_settings(services, HOST_ENV)
    assert data_converter(settings).payload_codec is not None  # production accepts them
    assert environment_of(services["codec"]) == environment_of(services["api"])
    assert command_list(services["codec"]) == [
        "appeals",
        "codec-server",
        "--host",
        "0.0.0.0",
        "--port",
        "8081",
    ]
    # The UI calls the codec server where the browser finds it, with the pages' cookie, and the
    # codec server allows the UI's origin.
    ui = environment_of(services["temporal-ui"])
    assert published_ports(services["codec"]) == {8081: 8081}
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert 8233 in published_ports(services["temporal-ui"])
    assert "http://localhost:8233" in cors_origins(settings)


# --- Temporal ---------------------------------------------------------------------------


def test_temporal_runs_on_the_postgres_service(services: dict[str, dict[str, Any]]) -> None:
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    env = environment_of(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_USER"] == environment_of(services["postgres"])["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == environment_of(services["postgres"])["POSTGRES_PASSWORD"]
    assert depends_on_of(temporal) == {"postgres": "service_healthy"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in json.dumps(services["postgres"]["healthcheck"]["test"])


def test_setup_service_creates_exactly_the_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    setup = services["temporal-setup"]
    assert setup["image"].startswith("temporalio/admin-tools:")
    assert environment_of(setup)["TEMPORAL_ADDRESS"] == "temporal:7233"
    created = created_search_attributes(command_text(setup))
    expected = {key.name: CLI_SA_TYPES[key.indexed_value_type.name] for key in ALL_KEYS}
    assert created == expected


def test_search_attribute_parser_sees_a_missing_or_mistyped_attribute() -> None:
    script = (
        "temporal operator search-attribute create --name AppealStatus --type Keyword\n"
        "temporal operator search-attribute create --name AppealSlaDueAt --type Keyword\n"
    )
    expected = {key.name: CLI_SA_TYPES[key.indexed_value_type.name] for key in ALL_KEYS}
    assert created_search_attributes(script) != expected
    assert created_search_attributes(script)["AppealSlaDueAt"] == "Keyword"


def test_temporal_ui_points_at_the_cluster(services: dict[str, dict[str, Any]]) -> None:
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert environment_of(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert published_ports(ui).get(8233) == 8080


# --- wiring ----------------------------------------------------------------------------


def test_depends_on_references_exist(services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, condition in depends_on_of(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name
            assert condition in conditions, f"{name} -> {dependency}: {condition}"
            target = services[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{dependency} has no healthcheck"
            if condition == "service_completed_successfully":
                assert str(target.get("restart", "no")) == "no", f"{dependency} is not one-shot"


def test_api_and_worker_wait_for_the_one_shot_setups(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        deps = depends_on_of(services[name])
        assert deps.get("temporal-setup") == "service_completed_successfully", name
        assert deps.get("minio-setup") == "service_completed_successfully", name
        assert deps.get("postgres") == "service_healthy", name


def test_migrations_run_once_before_the_api_and_worker(services: dict[str, dict[str, Any]]) -> None:
    """A one-shot `appeals db upgrade` on the app's own build and environment; the API and
    worker start only after it succeeded (they refuse an older schema, core/db/migrate.py)."""
    migrate = services["migrate"]
    assert command_list(migrate) == ["appeals", "db", "upgrade"]
    assert migrate.get("build") == services["api"].get("build")
    assert environment_of(migrate) == environment_of(services["api"])
    assert str(migrate.get("restart")) == "no"
    assert depends_on_of(migrate) == {"postgres": "service_healthy"}
    for name in ("api", "worker"):
        assert depends_on_of(services[name]).get("migrate") == "service_completed_successfully", name
    # Nothing else orders the worker after the API any more: migrations are not the API's job.
    assert "api" not in depends_on_of(services["worker"])


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    published: dict[int, str] = {}
    for name, service in services.items():
        for host_port in published_ports(service):
            assert host_port not in published, f"port {host_port} published twice"
            published[host_port] = name
    assert published.get(8000) == "api"
    assert published_ports(services["api"])[8000] == 8000
    assert published.get(8233) == "temporal-ui"


def test_stateful_services_keep_their_data_in_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("minio", "/data")):
        mounts = [str(v) for v in compose["services"][name].get("volumes") or []]
        volume = next(m.split(":")[0] for m in mounts if m.split(":")[1] == path)
        assert volume in declared, f"{name}: {volume} is not a named volume"


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(argument: str) -> list[str]:
    try:
        parsed = json.loads(argument)
    except json.JSONDecodeError:
        return shlex.split(argument)
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


def test_dockerfile_runs_appeals() -> None:
    assert DOCKERFILE.is_file()
    instructions = dockerfile_instructions()
    entrypoints = [exec_form(arg) for kw, arg in instructions if kw == "ENTRYPOINT"]
    cmds = [exec_form(arg) for kw, arg in instructions if kw == "CMD"]
    assert cmds or entrypoints
    command = (entrypoints[-1] if entrypoints else []) + (cmds[-1] if cmds else [])
    assert command[0] == "appeals"
    assert command == ["appeals", "api"]


def test_dockerfile_base_user_and_source_tree() -> None:
    instructions = dockerfile_instructions()
    froms = [arg for kw, arg in instructions if kw == "FROM"]
    assert froms and froms[-1].split()[0].startswith("python:3.11-slim")
    users = [arg for kw, arg in instructions if kw == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    copied = " ".join(arg for kw, arg in instructions if kw in ("COPY", "ADD"))
    # templates/ and policy/ are read relative to the source tree, which must be what runs.
    for directory in (*PACKAGES, "templates", "policy"):
        assert re.search(rf"(^|\s){directory}(/|\s)", copied), f"{directory}/ is not copied"
    runs = " ".join(arg for kw, arg in instructions if kw == "RUN")
    assert re.search(r"pip install[^&;]*\s-e\s+\.", runs), "the project is not installed editable"


def test_dockerfile_writes_the_bytecode_of_every_package() -> None:
    """The image sets PYTHONDONTWRITEBYTECODE and runs as a user who cannot write /app: without
    bytecode built into it, the workflow sandbox compiles the workflow module on every run."""
    runs = " ".join(arg for kw, arg in dockerfile_instructions() if kw == "RUN")
    compiled = re.search(r"python -m compileall((?:\s+-\w+)*)((?:\s+[\w/]+)+)", runs)
    assert compiled, "no compileall in the image"
    assert set(compiled.group(2).split()) >= set(PACKAGES)


def test_dockerfile_appeals_variables_are_settings_fields() -> None:
    names: set[str] = set()
    for keyword, argument in dockerfile_instructions():
        if keyword == "ENV":
            names |= set(re.findall(r"\b(APPEALS_[A-Z0-9_]+)=", argument))
    assert names <= SETTINGS_ENV_NAMES, sorted(names - SETTINGS_ENV_NAMES)
