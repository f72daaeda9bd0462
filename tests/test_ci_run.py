"""`.ci/run` runs the README's test command as written, then lint, format and type checks,
all under `set -euo pipefail` so any failure (pytest's exit 5 included) fails CI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Run the tests", 1)[1]
    match = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert match, "the README's test section has no bash block"
    return match.group(1).strip()


def test_ci_runs_the_readme_command_then_the_checks() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "set -euo pipefail" in lines
    command = _readme_test_command()
    assert command in lines
    after = lines[lines.index(command) + 1 :]
    assert after == [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy ."]


def test_ci_installs_chromium_for_the_browser_tests_before_running_them() -> None:
    """tests/browser fails with CI=true when Chromium is missing, so CI installs it first."""
    script = (ROOT / ".ci" / "run").read_text()
    install = script.index("apt-get install -y")
    assert "packages+=(chromium)" in script and "/usr/bin/chromium" in script
    assert "DEBIAN_FRONTEND=noninteractive" in script and "apt-get update" in script
    assert install < script.index(_readme_test_command())
