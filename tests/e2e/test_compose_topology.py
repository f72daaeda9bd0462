"""docker-compose.yml's topology brought up without Docker, from the file's own values.

Each service that is not built from ./Dockerfile gets a local stand-in with the same
configuration: PostgreSQL on this machine (a fresh role and database named as the compose
`postgres` service names them), a Temporal dev server with the namespace and the search
attributes the `temporal-setup` job creates (parsed from its command), the S3 server (moto) for
MinIO with the bucket `minio-setup` creates, and an SMTP sink for Mailpit. Every service built
from the Dockerfile then runs as a process, in depends_on order, with its compose `command`
(one-shot jobs run to completion first) and the image's ENV plus its compose `environment`,
in which only host names and ports are swapped for the local ones and the required secrets are
strong test values, so APPEALS_ENVIRONMENT=production holds. A service another waits on as
`service_healthy` is waited on with its own compose healthcheck. Then the walkthrough runs
against that API.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db import make_engine
from core.settings import Environment, Settings
from core.tracing import API_SERVICE, WORKER_SERVICE
from gateway.codec import new_key
from launcher.dev import temporal_ready
from launcher.mail import start_smtp_sink
from launcher.stack import ManagedProcess, free_port, http_ok, s3_server, tcp_open, wait_until
from tests.conftest import PG_URL
from tests.e2e.walkthrough import appeal_end_to_end
from tests.eventually import eventually_sync, patience
from tests.otlp_collector import OtlpCollector, otlp_collector
from tests.test_docker_compose import (
    _INTERPOLATION,
    COMPOSE_FILE,
    command_list,
    command_text,
    created_search_attributes,
    depends_on_of,
    dockerfile_instructions,
    environment_of,
    exec_form,
    interpolate,
    published_ports,
)

pytestmark = pytest.mark.e2e

# The port each stand-in serves inside the compose network (the images' own ports).
CONTAINER_PORTS = {"postgres": 5432, "temporal": 7233, "minio": 9000, "mailpit": 1025, "otel-collector": 4318}
# Variables of a port the process itself listens on: separate containers, one host here.
LISTENS = re.compile(r"^APPEALS_(API|CODEC_SERVER|\w*METRICS\w*)_PORT$")


def strong_host_env() -> dict[str, str]:
    """What the operator must export (every `${NAME:?...}` of the file), as strong random test
    values in the form each one takes."""
    required = {
        match.group("name")
        for match in _INTERPOLATION.finditer(COMPOSE_FILE.read_text())
        if match.group("op") in (":?", "?")
    }
    values = {name: secrets.token_hex(32) for name in required}
    if "APPEALS_PAYLOAD_KEYS" in values:
        values["APPEALS_PAYLOAD_KEYS"] = json.dumps({"k1": new_key()})
    if "MINIO_KMS_SECRET_KEY" in values:  # <key name>:<base64 of 32 bytes>
        values["MINIO_KMS_SECRET_KEY"] = "appeals-key:" + base64.b64encode(secrets.token_bytes(32)).decode()
    return values


def image_env() -> dict[str, str]:
    """The Dockerfile's ENV, which the compose environment overrides."""
    env: dict[str, str] = {}
    for keyword, argument in dockerfile_instructions():
        if keyword == "ENV":
            for pair in shlex.split(argument):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def start_order(services: Mapping[str, Mapping[str, Any]], names: set[str]) -> list[str]:
    """`names` in depends_on order (dependencies first), as compose starts them."""
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in ordered:
            return
        for dependency in depends_on_of(services[name]):
            if dependency in names:
                visit(dependency, (*path, name))
        ordered.append(name)

    for name in sorted(names):
        visit(name, ())
    return ordered


@dataclass
class Topology:
    root: Path
    services: dict[str, dict[str, Any]]
    host_env: dict[str, str]
    local_ports: dict[str, int] = field(default_factory=dict)  # stand-in service -> local port
    database: tuple[str, str] = ("", "")  # the role and database made for this run
    processes: list[ManagedProcess] = field(default_factory=list)
    api_url: str = ""
    api_env: dict[str, str] = field(default_factory=dict)
    collector: OtlpCollector | None = None  # otel-collector's stand-in: what the app sent it
    # Per long-running app service: its environment and its listening ports (container -> local).
    running: dict[str, tuple[dict[str, str], dict[int, int]]] = field(default_factory=dict)

    def resolved(self, name: str) -> dict[str, str]:
        return {k: interpolate(v, self.host_env) for k, v in environment_of(self.services[name]).items()}

    def localise(self, value: str) -> str:
        """`service:port` of a stand-in as its local address; the database URL also names the
        role and database made for this run."""
        for service, port in CONTAINER_PORTS.items():
            value = re.sub(
                rf"(?<![\w.-]){re.escape(service)}:{port}\b", f"127.0.0.1:{self.local_ports[service]}", value
            )
        if value.startswith("postgresql"):
            role, database = self.database
            value = (
                make_url(value).set(username=role, database=database).render_as_string(hide_password=False)
            )
        return value

    def app_env(self, name: str) -> tuple[dict[str, str], dict[int, int]]:
        """The process environment of app service `name` and its listening ports (container
        port -> local port)."""
        env = {**image_env(), **self.resolved(name)}
        referenced = {
            m.group(1) for v in env.values() for m in re.finditer(r"(?<![\w.-])([a-z][\w-]*):\d+", v)
        }
        unknown = (referenced & set(self.services)) - set(CONTAINER_PORTS)
        assert not unknown, f"{name} reaches services this test has no stand-in for: {unknown}"
        env = {k: self.localise(v) for k, v in env.items()}
        ports: dict[int, int] = {}
        for key, value in env.items():
            if LISTENS.match(key) and value.isdigit():
                ports.setdefault(int(value), free_port())
                env[key] = str(ports[int(value)])
        for key, value in env.items():  # every interface of a container: the loopback one here
            if key.startswith("APPEALS_") and key.endswith("_HOST") and value == "0.0.0.0":
                env[key] = "127.0.0.1"
        return env, ports

    def argv(self, command: list[str], ports: dict[int, int]) -> list[str]:
        """The compose command as a local process: `appeals` is the image's entry point (this
        interpreter's), a listening port a free one, every interface the loopback one."""
        assert command[0] == "appeals", command
        out = [sys.executable, "-m", "launcher.cli"]
        for previous, arg in itertools.pairwise(command):
            if previous == "--port":
                arg = str(ports.setdefault(int(arg), free_port()))
            elif previous == "--host" and arg == "0.0.0.0":
                arg = "127.0.0.1"
            out.append(arg)
        return out

    def process_env(self, env: dict[str, str]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
        if "faketime" in base.get("LD_PRELOAD", ""):
            # Under libfaketime a timed wait on a Python lock never times out, so the span
            # processor's export timer never fires: export each span as it ends instead.
            base["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "1"
        return {**base, **env, "PYTHONPATH": str(self.root), "PYTHONUNBUFFERED": "1"}


def _one_shot(service: Mapping[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def _exit_code(argv: list[str]) -> int:
    return subprocess.run(argv, capture_output=True, timeout=60).returncode


def _healthcheck(service: Mapping[str, Any], ports: dict[int, int]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] == "CMD", f"healthcheck {test!r}: CMD form expected"
    return _local_command(test[1:], ports)


def _local_command(command: list[str], ports: dict[int, int]) -> list[str]:
    """A command of the image (a healthcheck) as run here: this Python, the local ports."""
    argv = [sys.executable if part == "python" else str(part) for part in command]
    for container, local in ports.items():
        argv = [re.sub(rf":{container}\b", f":{local}", part) for part in argv]
    return argv


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    root = Path(__file__).resolve().parents[2]
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    top = Topology(root=root, services=services, host_env=strong_host_env())
    work = tmp_path_factory.mktemp("compose")
    logs = work / "logs"
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    started: list[ManagedProcess] = top.processes
    stack = contextlib.ExitStack()
    try:
        # postgres: the role and database its environment names, fresh for this run.
        pg = top.resolved("postgres")
        suffix = uuid.uuid4().hex[:8]
        top.database = (f"{pg['POSTGRES_USER']}_{suffix}", f"{pg['POSTGRES_DB']}_{suffix}")
        with admin.connect() as connection:
            password = pg["POSTGRES_PASSWORD"].replace("'", "''")
            connection.execute(text(f"CREATE ROLE \"{top.database[0]}\" LOGIN PASSWORD '{password}'"))
            connection.execute(text(f'CREATE DATABASE "{top.database[1]}" OWNER "{top.database[0]}"'))
        top.local_ports["postgres"] = make_url(PG_URL).port or 5432

        # temporal + temporal-setup: the namespace and the search attributes the job creates.
        setup_script = command_text(services["temporal-setup"])
        namespaces = set(re.findall(r"--namespace\s+(\S+)", setup_script))
        assert len(namespaces) == 1, namespaces
        namespace = namespaces.pop()
        attributes = created_search_attributes(setup_script)
        assert attributes, "temporal-setup creates no search attribute"
        port = top.local_ports["temporal"] = free_port()
        args = [
            str(Path(sys.executable).parent / "temporal"), "server", "start-dev", "--ip", "127.0.0.1",
            "--port", str(port), "--ui-port", str(free_port()), "--headless", "--namespace", namespace,
            "--log-level", "warn",
        ]  # fmt: skip
        for name, kind in attributes.items():
            args += ["--search-attribute", f"{name}={kind}"]
        temporal = ManagedProcess("temporal", args, logs / "temporal.log").start()
        started.append(temporal)
        wait_until(lambda: temporal_ready(f"127.0.0.1:{port}", namespace), temporal, patience(60))

        # minio + minio-setup: the bucket (with object lock, as `mc mb --with-lock`).
        s3_port = top.local_ports["minio"] = free_port()
        s3 = s3_server(host="127.0.0.1", port=s3_port, log_path=logs / "s3.log").start()
        started.append(s3)
        wait_until(lambda: tcp_open("127.0.0.1", s3_port) and http_ok(f"http://127.0.0.1:{s3_port}/"), s3, 30)
        setup = top.resolved("minio-setup")
        boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            region_name="us-east-1",
            aws_access_key_id=setup["MINIO_ROOT_USER"],
            aws_secret_access_key=setup["MINIO_ROOT_PASSWORD"],
        ).create_bucket(Bucket=setup["BUCKET"], ObjectLockEnabledForBucket=True)

        # mailpit: an SMTP sink.
        smtp_port = top.local_ports["mailpit"] = free_port()
        started.append(
            start_smtp_sink(
                host="127.0.0.1", port=smtp_port, mail_dir=work / "mail", log_path=logs / "smtp.log"
            )
        )

        # otel-collector: an OTLP/HTTP receiver that keeps the spans.
        top.collector = stack.enter_context(otlp_collector())
        top.local_ports["otel-collector"] = top.collector.port

        # The app's services, built from the Dockerfile, in depends_on order.
        apps = {name for name, service in services.items() if "build" in service}
        assert {"api", "worker"} <= apps
        listening: dict[str, dict[int, int]] = {}
        for name in start_order(services, apps):
            service = services[name]
            for dependency, condition in depends_on_of(service).items():
                if dependency in apps and condition == "service_healthy":
                    check = _healthcheck(services[dependency], listening[dependency])
                    eventually_sync(
                        functools.partial(_exit_code, check),
                        lambda code: code == 0,
                        what=f"{dependency}'s compose healthcheck, before {name}",
                    )
            env, ports = top.app_env(name)
            argv = top.argv(command_list(service), ports)
            listening[name] = ports
            # Its own working directory: nothing of this checkout's .env or .data.
            cwd = work / name
            cwd.mkdir()
            proc = ManagedProcess(name, argv, logs / f"{name}.log", env=top.process_env(env), cwd=cwd)
            proc.log_path.parent.mkdir(parents=True, exist_ok=True)
            if _one_shot(service):
                with proc.log_path.open("ab") as log:
                    done = subprocess.run(
                        argv, env=proc.env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=300
                    )
                assert done.returncode == 0, f"one-shot {name} failed:\n{proc.tail(40)}"
                continue
            started.append(proc.start())
            top.running[name] = (env, ports)
            if name == "api":
                top.api_env = env
                [container_port] = published_ports(service).values()
                top.api_url = f"http://127.0.0.1:{ports[container_port]}"
        wait_until(lambda: http_ok(f"{top.api_url}/health/ready"), started[-1], patience(60))
        yield top
    finally:
        for proc in reversed(started):
            proc.stop()
        stack.close()
        with admin.connect() as connection:
            if top.database[1]:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{top.database[1]}" WITH (FORCE)'))
            if top.database[0]:
                connection.execute(text(f'DROP ROLE IF EXISTS "{top.database[0]}"'))
        admin.dispose()


def _settings(env: Mapping[str, str]) -> Settings:
    """The settings the API process runs with, read from its environment alone."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("APPEALS_"):
                mp.delenv(name)
        for name, value in env.items():
            if name.startswith("APPEALS_"):
                mp.setenv(name, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


def test_every_healthcheck_passes(topology: Topology) -> None:
    """Each app service's compose healthcheck (unless disabled), and the image's own HEALTHCHECK
    run in the API's environment (it reads the port from APPEALS_API_PORT)."""
    checked = []
    for name, (_env, ports) in topology.running.items():
        healthcheck = topology.services[name].get("healthcheck") or {}
        if healthcheck.get("disable"):
            continue
        assert healthcheck, f"{name} has no healthcheck and does not disable the image's"
        # Retried, as compose does, while the process comes up.
        check = _healthcheck(topology.services[name], ports)
        eventually_sync(
            functools.partial(_exit_code, check), lambda code: code == 0, what=f"{name}'s healthcheck"
        )
        checked.append(name)
    assert {"api", "worker"} <= set(checked)
    [image_check] = [arg for kw, arg in dockerfile_instructions() if kw == "HEALTHCHECK"]
    api_env, api_ports = topology.running["api"]
    command = _local_command(exec_form(image_check.split("CMD", 1)[1].strip()), api_ports)
    result = subprocess.run(command, env=topology.process_env(api_env), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_walkthrough_on_the_compose_topology(topology: Topology, tmp_path: Path) -> None:
    settings = _settings(topology.api_env)
    assert settings.environment is Environment.PRODUCTION
    # The demo customers, loaded as an operator would: `docker compose run --rm api appeals seed`.
    seeded = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "seed", "--customers", "0"],
        env=topology.process_env(topology.api_env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    ready = eventually_sync(
        lambda: httpx.get(f"{topology.api_url}/health/ready", timeout=30),
        lambda r: r.status_code == 200,
        what="the API to be ready",
    )
    assert ready.json()["checks"] == {"database": "ok", "object_store": "ok", "temporal": "ok"}
    appeal_end_to_end(topology.api_url, settings)

    # Traces reached the stack's collector: from both the API and the worker, and one trace
    # running through both (a request that started a workflow).
    collector = topology.collector
    assert collector is not None

    def traces_through_both() -> set[bytes]:
        by_service: dict[str, set[bytes]] = {}
        for service, span in collector.spans():
            by_service.setdefault(service, set()).add(span.trace_id)
        return by_service.get(API_SERVICE, set()) & by_service.get(WORKER_SERVICE, set())

    eventually_sync(
        traces_through_both, bool, what="a trace from the API through the worker at the collector"
    )
