"""docker-compose.yml is a valid Compose file: after variable interpolation it validates against
the Compose Specification's JSON schema, the one Debian's docker-compose package ships (1.29,
`apt-get install docker-compose`, .ci/run installs it), and that tool's own `config` accepts it
and resolves the variables as tests/test_docker_compose.py's `interpolate` does. No engine is
needed for either."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from core.settings import Settings
from tests.test_docker_compose import COMPOSE_FILE, HOST_ENV, environment_of, interpolate

SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _need(path: Path | None, what: str) -> None:
    if path is None or not path.exists():
        message = f"{what} is missing: apt-get install docker-compose"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def interpolated(node: Any, env: dict[str, str]) -> Any:
    """Every string of the file with its variables resolved, as compose does before validating."""
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    _need(SCHEMA, "the Compose Specification schema")
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def _errors(schema: dict[str, Any], document: Any) -> list[str]:
    # The file says draft 2019-09 (its `$schema` URL has a trailing `#` jsonschema does not know).
    validator = Draft201909Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_compose_file_validates_against_the_compose_spec(schema: dict[str, Any]) -> None:
    document = interpolated(yaml.safe_load(COMPOSE_FILE.read_text()), HOST_ENV)
    assert _errors(schema, document) == []


def test_the_schema_check_sees_a_broken_file(schema: dict[str, Any]) -> None:
    document = interpolated(yaml.safe_load(COMPOSE_FILE.read_text()), HOST_ENV)
    for breakage in (
        lambda d: d["services"]["api"].update(comand=["appeals", "api"]),  # a misspelt key
        lambda d: d["services"]["api"].update(restart=3),
        lambda d: d["services"]["worker"].update(depends_on={"api": {"condition": "service_ready"}}),
    ):
        broken = copy.deepcopy(document)
        breakage(broken)
        assert _errors(schema, broken), "the schema let a broken file through"


def _docker_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    _need(Path(tool) if tool else None, "docker-compose")
    assert tool is not None
    clean = {k: v for k, v in os.environ.items() if k not in HOST_ENV and not k.startswith("APPEALS_")}
    return subprocess.run(
        [tool, "-f", str(COMPOSE_FILE), *args],
        env={**clean, **env},
        cwd=COMPOSE_FILE.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_config_accepts_it_and_resolves_it_as_we_do() -> None:
    quiet = _docker_compose("config", "-q", env=HOST_ENV)
    assert quiet.returncode == 0, quiet.stderr
    resolved = yaml.safe_load(_docker_compose("config", env=HOST_ENV).stdout)
    ours = interpolated(yaml.safe_load(COMPOSE_FILE.read_text()), HOST_ENV)
    for name, service in resolved["services"].items():
        assert environment_of(service) == environment_of(ours["services"][name]), name


def test_docker_compose_config_names_a_missing_secret() -> None:
    missing = {k: v for k, v in HOST_ENV.items() if k != "APPEALS_JWT_SECRET"}
    result = _docker_compose("config", "-q", env=missing)
    assert result.returncode != 0 and "set APPEALS_JWT_SECRET" in result.stderr, result.stderr


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_app_services_get_longer_than_their_graceful_shutdown_before_sigkill() -> None:
    """Docker sends SIGKILL 10 s after SIGTERM unless told otherwise: the app's graceful stop
    (launcher/api_server.py, launcher/worker.py) must fit in the grace period."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]

    def default(field: str) -> float:
        return float(Settings.model_fields[field].default)

    api = default("api_shutdown_drain_seconds") + default("api_graceful_shutdown_seconds")
    needed = max(api, default("worker_graceful_shutdown_seconds"))
    for name, service in services.items():
        if "build" in service:
            grace = _seconds(str(service.get("stop_grace_period", "10s")))
            assert grace > needed, (
                f"{name}: stop_grace_period {grace:g}s, the graceful stop takes up to {needed:g}s"
            )
