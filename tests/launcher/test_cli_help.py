"""`appeals --help` texts: every option says what it is and what it defaults to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from core.auth import Role
from core.settings import Settings
from launcher.cli import app

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"


def _help(*command: str) -> str:
    # Wide and plain, so a help line is not wrapped or coloured mid-word.
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def _option_line(output: str, option: str) -> str:
    lines = [line for line in output.splitlines() if re.search(rf"{re.escape(option)}\b", line)]
    assert lines, f"{option} is not in the help:\n{output}"
    return lines[0]


def _command(name: str) -> Any:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


@pytest.mark.parametrize(
    ("option", "default"),
    [
        ("--api-port", Settings().api_port),
        ("--temporal-port", 7233),
        ("--ui-port", Settings().temporal_ui_port),
        ("--s3-port", Settings().s3_port),
        ("--smtp-port", Settings().smtp_port),
    ],
)
def test_dev_shows_every_port_default(option: str, default: int) -> None:
    line = _option_line(_help("dev"), option)
    assert "[default:" in line and str(default) in line, line


def test_settings_backed_defaults_name_their_variable() -> None:
    output = _help("dev")
    for option, variable in (
        ("--api-port", "APPEALS_API_PORT"),
        ("--ui-port", "APPEALS_TEMPORAL_UI_PORT"),
        ("--s3-port", "APPEALS_S3_PORT"),
        ("--smtp-port", "APPEALS_SMTP_PORT"),
    ):
        assert variable in _option_line(output, option), option


def test_token_help_names_every_role() -> None:
    line = _option_line(_help("token"), "--role")
    help_text = line.split(">", 1)[1]  # what follows the choices column
    for role in Role:
        assert role.value in help_text, role
    assert "customer, reviewer or admin" not in line


@pytest.mark.parametrize("name", ["dev", "api", "worker", "token", "seed", "demo-documents"])
def test_every_option_has_help(name: str) -> None:
    command = _command(name)
    assert command.help, name
    for param in command.params:
        if isinstance(param, TyperOption) and param.name != "help":
            assert param.help, f"appeals {name} {param.opts[0]} has no help"


def test_api_help_shows_defaults_and_where_settings_come_from() -> None:
    output = _help("api")
    assert "APPEALS_API_HOST" in _option_line(output, "--host")
    assert str(Settings().api_host) in _option_line(output, "--host")
    assert str(Settings().api_port) in _option_line(output, "--port")
    assert "APPEALS_" in output and ".env" in output


def test_worker_help_says_how_it_is_configured() -> None:
    output = _help("worker")
    assert "APPEALS_TEMPORAL_TASK_QUEUE" in output
    assert "APPEALS_DATABASE_URL" in output


def test_readme_lists_every_dev_port_option() -> None:
    readme = README.read_text()
    ports = [
        opt
        for param in _command("dev").params
        if isinstance(param, TyperOption)
        for opt in param.opts
        if opt.endswith("-port")
    ]
    assert len(ports) == 6
    for option in ports:
        assert f"`{option}`" in readme, option
