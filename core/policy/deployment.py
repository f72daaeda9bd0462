"""Which policies are deployed: the champion that decides every appeal, and an optional
challenger that scores the same input snapshots in shadow (never used to decide).

The deployment file (`policy/deployment.toml` by default, `APPEALS_POLICY_DEPLOYMENT` elsewhere)
names them by path, relative to the file:

    champion = "limit-restore-v1.toml"
    challenger = "limit-restore-v2.toml"   # optional

`appeals policy deploy` validates the policies and writes the file; the API and workers read it
once per process (`load_deployment`, and `load_default_policy` for the champion).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from core.policy.loader import LoadedPolicy, LoadedScorecard, load_policy, load_scorecard
from core.policy.model import Policy, PolicyError, PolicyIssue, appeal_issues

DEPLOYMENT_KEYS = ("champion", "challenger")

HEADER = """\
# The policies this service uses (core/policy/deployment.py); written by `appeals policy deploy`.
# champion: the policy that scores and routes every appeal; it must be complete for appeals.
# challenger (optional): scores the same input snapshot of every appeal in shadow; its results
# are stored apart (table shadow_assessment) and never used to decide; `appeals policy compare`
# reports how the two agree. Paths are relative to this file.
"""


class DeploymentError(Exception):
    """A deployment file, or a policy it names, that cannot be used."""


@dataclass(frozen=True, slots=True)
class Deployment:
    champion: LoadedPolicy
    challenger: LoadedPolicy | None
    source: str  # the deployment file


@dataclass(frozen=True, slots=True)
class DeploymentFile:
    """The deployment file as written: the policy paths it names, resolved against it."""

    path: Path
    champion: Path
    challenger: Path | None


def default_deployment_path() -> Path:
    """The configured deployment file (setting `policy_deployment`)."""
    from core.settings import get_settings

    return Path(get_settings().policy_deployment)


def read_deployment_file(path: Path) -> DeploymentFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeploymentError(f"{path}: cannot read the deployment file: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DeploymentError(f"{path}: not a valid TOML file: {exc}") from exc
    unknown = sorted(set(raw) - set(DEPLOYMENT_KEYS))
    if unknown:
        raise DeploymentError(f"{path}: unknown key(s) {', '.join(unknown)} (expected champion, challenger)")
    champion = raw.get("champion")
    challenger = raw.get("challenger")
    if not isinstance(champion, str) or not champion:
        raise DeploymentError(f"{path}: champion: required, the path of the policy file that decides appeals")
    if challenger is not None and (not isinstance(challenger, str) or not challenger):
        raise DeploymentError(f"{path}: challenger: must be the path of a policy file")
    base = path.parent
    return DeploymentFile(
        path=path,
        champion=base / champion,
        challenger=None if challenger is None else base / challenger,
    )


def load_champion(path: Path) -> LoadedPolicy:
    """A policy valid for appeals: every section an appeal needs (raises `DeploymentError`
    naming what is missing)."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise DeploymentError(f"champion {path} cannot decide appeals: {_issues(exc)}") from exc


def challenger_issues(loaded: LoadedScorecard) -> list[PolicyIssue]:
    """What stops a valid scorecard from producing a recommendation for an appeal's snapshot:
    the sections routing needs (cut-offs, tiers, limit sizing, four-eyes, the features'
    parameters, ...). Placeholder reason texts are fine: no customer reads a challenger's."""
    return [
        issue for issue in appeal_issues(loaded.policy) if not issue.message.startswith("placeholder text")
    ]


def load_challenger(path: Path) -> LoadedPolicy:
    """A scorecard that can produce a recommendation for an appeal's snapshot (raises
    `DeploymentError` naming the missing routing sections)."""
    try:
        loose = load_scorecard(path)
    except PolicyError as exc:
        raise DeploymentError(f"challenger {path} is not a valid scorecard: {_issues(exc)}") from exc
    issues = challenger_issues(loose)
    if issues:
        raise DeploymentError(
            f"challenger {path} cannot produce a recommendation for an appeal: "
            + "; ".join(str(i) for i in issues)
        )
    try:
        policy = Policy.model_validate(loose.policy.model_dump())
    except (ValidationError, PolicyError) as exc:  # pragma: no cover - the checks above cover it
        raise DeploymentError(
            f"challenger {path} cannot produce a recommendation for an appeal: {exc}"
        ) from exc
    return LoadedPolicy(policy=policy, content_hash=loose.content_hash, source=loose.source)


def _issues(exc: PolicyError) -> str:
    return "; ".join(str(issue) for issue in exc.issues)


def load_deployment_file(file: DeploymentFile) -> Deployment:
    champion = load_champion(file.champion)
    challenger = None if file.challenger is None else load_challenger(file.challenger)
    return Deployment(champion=champion, challenger=challenger, source=str(file.path))


def load_deployment(path: str | Path | None = None) -> Deployment:
    """The deployed policies, read once per process per file (None: the configured file)."""
    resolved = Path(path) if path is not None else default_deployment_path()
    return _load_deployment_cached(resolved.resolve())


@lru_cache(maxsize=8)
def _load_deployment_cached(path: Path) -> Deployment:
    return load_deployment_file(read_deployment_file(path))


def clear_cache() -> None:
    """Forget the deployments read so far (tests; a process that redeploys)."""
    _load_deployment_cached.cache_clear()


def _relative(policy: Path, deployment: Path) -> str:
    return Path(os.path.relpath(policy.resolve(), deployment.resolve().parent)).as_posix()


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_deployment(path: Path, deployment: Deployment) -> str:
    """The deployment file's text: paths relative to `path`, each policy's id and hash noted."""
    lines = [HEADER]
    champion = deployment.champion
    lines.append(f"# champion as deployed: {champion.policy_id}, sha256 {champion.content_hash}")
    lines.append(f"champion = {_toml_string(_relative(Path(champion.source), path))}")
    if deployment.challenger is not None:
        challenger = deployment.challenger
        lines.append(f"# challenger as deployed: {challenger.policy_id}, sha256 {challenger.content_hash}")
        lines.append(f"challenger = {_toml_string(_relative(Path(challenger.source), path))}")
    return "\n".join(lines) + "\n"


def deploy(path: Path, champion: Path, challenger: Path | None = None) -> Deployment:
    """Validate the policies (champion for appeals, challenger for shadow scoring) and record
    them in the deployment file at `path`, atomically (a temporary file renamed over it).
    Nothing is written when either is refused."""
    deployment = Deployment(
        champion=load_champion(champion),
        challenger=None if challenger is None else load_challenger(challenger),
        source=str(path),
    )
    text = render_deployment(path, deployment)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; the API and workers read it
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    clear_cache()
    return deployment
