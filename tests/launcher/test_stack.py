from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from launcher.dev import DevStack, settings_env
from launcher.stack import (
    ManagedProcess,
    PortInUse,
    StackError,
    check_port_free,
    free_port,
    wait_until,
)


def test_taken_port_is_named_in_the_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse, match=rf"Port {port} .*\(API\).*--api-port"):
            check_port_free("127.0.0.1", port, "API", "--api-port")


def test_dev_stack_refuses_to_start_on_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        stack = DevStack(
            Settings(data_dir=tmp_path),
            temporal_port=free_port(),
            ui_port=free_port(),
            s3_port=taken,
            api_port=free_port(),
        )
        with pytest.raises(PortInUse, match="S3 server"):
            stack.start()
        assert stack.processes == []


def test_a_part_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "broken part",
        [sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"],
        tmp_path / "broken.log",
    ).start()
    with pytest.raises(StackError, match=r"broken part exited while starting(.|\n)*cannot bind"):
        wait_until(lambda: False, proc, 10)


def test_child_settings_round_trip(tmp_path: Path) -> None:
    from datetime import timedelta

    original = Settings(
        data_dir=tmp_path, document_deadline=timedelta(seconds=90), review_due=timedelta(hours=2)
    )
    env = settings_env(original)
    rebuilt = Settings(**{k.removeprefix("APPEALS_").lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    assert rebuilt.document_deadline == timedelta(seconds=90)
    assert rebuilt.review_due == timedelta(hours=2)
    assert rebuilt.effective_database_url == original.effective_database_url


def test_the_banner_ends_by_pointing_at_the_web_pages(tmp_path: Path) -> None:
    from launcher.cli import banner

    stack = DevStack(
        Settings(data_dir=tmp_path), temporal_port=7233, ui_port=8233, s3_port=9000, api_port=8000
    )
    text = banner(stack)
    assert text.rstrip().endswith("Open http://localhost:8000/ in a browser.")
    for page in (
        "http://localhost:8000/app",
        "http://localhost:8000/review",
        "http://localhost:8000/dashboard",
    ):
        assert page in text
    # Where Prometheus scrapes each part (docs/metrics.md).
    for metrics in (
        "http://127.0.0.1:8000/metrics",
        "http://127.0.0.1:9464/metrics",
        "http://127.0.0.1:9465/metrics",
    ):
        assert metrics in text


def test_the_stack_encrypts_with_its_own_key_kept_in_its_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.codec import PayloadKeys

    def stack() -> DevStack:
        return DevStack(
            Settings(data_dir=tmp_path),
            temporal_port=7233,
            ui_port=8233,
            s3_port=9000,
            api_port=8000,
            codec_port=8081,
        )

    settings = stack()._with_payload_keys(stack().settings)
    keys = PayloadKeys.from_settings(settings)
    assert keys is not None and (tmp_path / "payload-keys.json").exists()
    # A restarted stack encrypts with the same key, so it reads the histories it wrote.
    assert PayloadKeys.from_settings(stack()._with_payload_keys(stack().settings)) == keys
    assert settings.temporal_web_url == "http://localhost:8233"  # the codec server's site
    assert stack().codec_url == "http://localhost:8081"
    # The worker, the API and the codec server get the same keys through their environment.
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    child = Settings(_env_file=None)  # type: ignore[call-arg]
    assert PayloadKeys.from_settings(child) == keys
    assert (child.codec_server_port, child.temporal_ui_port) == (8081, 8233)
    assert child.temporal_ui_url == "http://localhost:8233"


def test_keys_configured_for_the_stack_are_used_as_they_are(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from gateway.codec import new_key

    configured = Settings(data_dir=tmp_path, payload_keys={"ops-1": SecretStr(new_key())})
    headless = DevStack.on_free_ports(tmp_path)
    settings = headless._with_payload_keys(configured)
    assert settings.payload_keys == configured.payload_keys
    assert not (tmp_path / "payload-keys.json").exists()
    assert settings.temporal_web_url is None  # headless: no Web UI to point at
