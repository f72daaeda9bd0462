"""docs/configuration.md is generated from core/settings.py, and a refused setting stops a
command with one clear line and exit 78, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import DEV_JWT_SECRET, Settings
from launcher.cli import app
from launcher.config_docs import EXIT_CONFIG, REFERENCE, env_name, is_secret, reference

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_the_checked_in_reference_is_the_generated_one() -> None:
    assert REFERENCE == ROOT / "docs" / "configuration.md"
    assert REFERENCE.read_text() == reference(), "docs/configuration.md is stale: run `appeals config docs`"


def test_every_setting_is_documented_once_in_the_model() -> None:
    text = reference()
    for field, info in Settings.model_fields.items():
        assert info.description, f"{field}: no Field(description=...)"
        row = next(line for line in text.splitlines() if line.startswith(f"| `{env_name(field)}` |"))
        assert info.description.split()[0] in row


def test_secrets_show_no_default() -> None:
    text = reference()
    secrets = [field for field in Settings.model_fields if is_secret(field)]
    assert {"jwt_secret", "payload_keys", "s3_secret_access_key", "database_url", "smtp_password"} <= set(
        secrets
    )
    for field in secrets:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{env_name(field)}` |"))
        assert "| (secret) |" in row, row
    assert DEV_JWT_SECRET not in text and "local-secret" not in text


def test_docs_check_fails_on_a_stale_file_and_docs_rewrites_it(tmp_path: Path) -> None:
    out = tmp_path / "configuration.md"
    out.write_text(reference().replace("APPEALS_API_WORKERS", "APPEALS_API_WORKERZ"))
    stale = runner.invoke(app, ["config", "docs", "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert runner.invoke(app, ["config", "docs", "--out", str(out)]).exit_code == 0
    assert out.read_text() == reference()
    assert runner.invoke(app, ["config", "docs", "--out", str(out), "--check"]).exit_code == 0


def _appeals(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command as its own process, with only `env` as settings (no APPEALS_* of this
    machine, no .env: the working directory is empty)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", *args],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "env", "line"),
    [
        (["api"], {"APPEALS_API_WORKERS": "0"}, 'error: APPEALS_API_WORKERS: must be >= 1 (got "0")'),
        (
            ["worker"],
            {"APPEALS_RATE_LIMIT_SUBMISSIONS": "-1", "APPEALS_SMTP_PORT": "twenty-five"},
            'error: APPEALS_RATE_LIMIT_SUBMISSIONS: must be >= 0 (got "-1")',
        ),
        (
            ["codec-server"],
            {"APPEALS_PAYLOAD_KEYS": "{not json"},
            "error: APPEALS_PAYLOAD_KEYS: must be JSON (map of str to str)",
        ),
        (["dev"], {"APPEALS_ENVIRONMENT": "staging"}, "error: APPEALS_ENVIRONMENT: must be 'development' or"),
    ],
)
def test_a_refused_setting_is_one_line_and_exit_78(
    tmp_path: Path, command: list[str], env: dict[str, str], line: str
) -> None:
    result = _appeals(command, env, tmp_path)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert line in result.stderr, result.stderr
    if "APPEALS_SMTP_PORT" in env:  # every bad setting is named, each on its own line
        assert "error: APPEALS_SMTP_PORT: must be a valid integer" in result.stderr, result.stderr


def test_a_refused_secret_is_not_echoed(tmp_path: Path) -> None:
    weak = "my-secret-change-me-0123456789abcdef"
    result = _appeals(["worker"], {"APPEALS_ENVIRONMENT": "production", "APPEALS_JWT_SECRET": weak}, tmp_path)
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "error: APPEALS_JWT_SECRET is refused in production: it is a placeholder" in result.stderr
    assert weak not in result.stderr + result.stdout


def test_config_check_accepts_good_settings_and_tools_run_without_them(tmp_path: Path) -> None:
    assert _appeals(["config", "check"], {}, tmp_path).stdout.strip() == "settings accepted (development)"
    # Printing a payload key needs no settings: a bad one does not stop it.
    key = _appeals(["payload-key", "--id", "k2"], {"APPEALS_API_WORKERS": "0"}, tmp_path)
    assert key.returncode == 0 and '"k2"' in key.stdout, key.stderr
