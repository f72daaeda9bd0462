"""The image, checked as data: dependencies from the hash-pinned lock, a non-root user, a
HEALTHCHECK, and a lock that covers every runtime dependency of pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.test_docker_compose import dockerfile_instructions, exec_form

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The image's interpreter: python:3.11-slim on Linux.
IMAGE_ENV: dict[str, str] = {
    **{key: str(value) for key, value in default_environment().items()},
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
}


def locked() -> dict[str, tuple[Version, int]]:
    """Name -> (version, how many hashes) of every package in the lock."""
    entries: dict[str, tuple[Version, int]] = {}
    text = LOCK.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(.*)$", line)
        if match:
            name = canonicalize_name(match.group(1))
            assert name not in entries, f"{name} locked twice"
            entries[name] = (
                Version(match.group(2)),
                len(re.findall(r"--hash=sha256:[0-9a-f]{64}", match.group(3))),
            )
    return entries


def _applies(requirement: Requirement, extra: str = "") -> bool:
    return requirement.marker is None or requirement.marker.evaluate({**IMAGE_ENV, "extra": extra})


def runtime_requirements() -> list[Requirement]:
    """pyproject.toml's dependencies for the image, with what their extras add (psycopg[binary]
    is psycopg-binary too), and the build system that installs the project."""
    found = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    found += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    out = []
    for requirement in found:
        if not _applies(requirement):
            continue
        out.append(requirement)
        for extra in requirement.extras:
            for line in metadata.requires(requirement.name) or []:
                added = Requirement(line)
                if added.marker is not None and _applies(added, extra) and not _applies(added):
                    out.append(added)
    return out


def test_the_lock_covers_every_runtime_dependency_at_a_version_it_allows() -> None:
    entries = locked()
    requirements = runtime_requirements()
    assert {"psycopg-binary", "setuptools", "temporalio"} <= {canonicalize_name(r.name) for r in requirements}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement} is not in requirements.lock: run scripts/lock-requirements.sh"
        version, _ = entries[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, pyproject.toml asks {requirement}"
        )


def test_every_locked_package_is_pinned_with_hashes_and_no_registry_is_named() -> None:
    entries = locked()
    assert len(entries) > 30
    unhashed = [name for name, (_, hashes) in entries.items() if hashes == 0]
    assert unhashed == []
    text = LOCK.read_text()
    assert "://" not in text and not re.search(
        r"^\s*-(-index-url|-extra-index-url|-find-links|i|f)\b", text, re.M
    )


def test_the_image_installs_from_the_lock_with_hashes_only() -> None:
    instructions = dockerfile_instructions()
    copies = [arg.split() for kw, arg in instructions if kw == "COPY"]
    assert any(parts[0] == "requirements.lock" for parts in copies), "the lock is not copied in"
    installs = [
        cmd
        for kw, arg in instructions
        if kw == "RUN"
        for cmd in re.split(r"&&|;", arg)
        if "pip install" in cmd
    ]
    from_lock = [cmd.split() for cmd in installs if "requirements.lock" in cmd]
    assert from_lock, "nothing installs requirements.lock"
    for words in from_lock:
        assert {"--require-hashes", "--no-deps"} <= set(words), words
        assert words[words.index("-r") + 1] == "requirements.lock", words
    # Whatever else pip installs is the project itself, with nothing fetched for it.
    for cmd in installs:
        if "requirements.lock" not in cmd:
            words = cmd.split()
            assert {"--no-deps", "--no-build-isolation", "-e"} <= set(words), cmd
    # The lock is installed before the source arrives (its layer survives code changes).
    order = [kw + " " + arg for kw, arg in instructions]
    lock_at = next(i for i, line in enumerate(order) if "-r requirements.lock" in line)
    assert all(i > lock_at for i, line in enumerate(order) if line.startswith("COPY core"))


def test_the_image_runs_as_a_non_root_user_it_creates() -> None:
    instructions = dockerfile_instructions()
    users = [arg for kw, arg in instructions if kw == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    created = " ".join(arg for kw, arg in instructions if kw == "RUN")
    match = re.search(rf"useradd\b[^&;]*--uid\s+(\d+)[^&;]*\s{re.escape(user)}\b", created)
    assert match and int(match.group(1)) != 0, f"user {user} is not created with a non-zero uid"
    # Nothing after USER switches back.
    last_user = max(i for i, (kw, _) in enumerate(instructions) if kw == "USER")
    assert all(kw != "USER" for kw, _ in instructions[last_user + 1 :])


def test_the_image_has_a_healthcheck_on_the_apis_liveness() -> None:
    checks = [arg for kw, arg in dockerfile_instructions() if kw == "HEALTHCHECK"]
    assert len(checks) == 1 and checks[0] != "NONE"
    command = exec_form(checks[0].split("CMD", 1)[1].strip())
    assert command[0] == "python" and "/health/live" in command[-1] and "APPEALS_API_PORT" in command[-1]
    assert re.search(r"--interval=\d+s", checks[0]) and re.search(r"--timeout=\d+s", checks[0])
