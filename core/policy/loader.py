"""Reading a policy file: TOML -> validated `Policy`, plus the id and content hash to record."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from core.policy.model import Policy, PolicyError, PolicyIssue, ScorecardPolicy, appeal_issues

DEFAULT_POLICY_FILE = "limit-restore-v1.toml"
_P = TypeVar("_P", bound=ScorecardPolicy)

# pydantic's messages for the commonest shape errors, in the words of a policy author.
_FRIENDLY_MESSAGES = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
}


@dataclass(frozen=True, slots=True)
class LoadedScorecard:
    """A valid policy file, possibly only a scorecard (enough to score and backtest), with what
    identifies it in an audit trail."""

    policy: ScorecardPolicy
    content_hash: str  # sha256 hex digest of the file bytes
    source: str  # where it was read from (a path, or a label for in-memory bytes)

    @property
    def policy_id(self) -> str:
        return self.policy.id


@dataclass(frozen=True, slots=True)
class LoadedPolicy:
    """A validated policy deployable for appeals, with what identifies it in an audit trail."""

    policy: Policy
    content_hash: str
    source: str

    @property
    def policy_id(self) -> str:
        return self.policy.id


def default_policy_path() -> Path:
    """`policy/limit-restore-v1.toml` at the repository root."""
    return Path(__file__).resolve().parents[2] / "policy" / DEFAULT_POLICY_FILE


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            [PolicyIssue(path="", message=f"cannot read policy file: {exc}")], source=str(path)
        ) from exc


def load_policy(path: str | Path) -> LoadedPolicy:
    """Read and validate a policy file for appeals: every section an appeal needs must be there.
    Raises `PolicyError` naming each bad or missing key path."""
    path = Path(path)
    return load_policy_bytes(_read(path), source=str(path))


def load_scorecard(path: str | Path) -> LoadedScorecard:
    """Read and validate a policy file for scoring and backtests: only the scorecard is required."""
    path = Path(path)
    return load_scorecard_bytes(_read(path), source=str(path))


def _toml(data: bytes, source: str) -> dict[str, Any]:
    try:
        # Floats become Decimal straight from their text: 0.95 stays exactly 0.95.
        return tomllib.loads(data.decode("utf-8"), parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise PolicyError([PolicyIssue(path="", message=f"not UTF-8 text: {exc}")], source=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError([PolicyIssue(path="", message=f"invalid TOML: {exc}")], source=source) from exc


def load_scorecard_bytes(data: bytes, *, source: str = "<bytes>") -> LoadedScorecard:
    policy = parse_scorecard(_toml(data, source), source=source)
    return LoadedScorecard(policy=policy, content_hash=hashlib.sha256(data).hexdigest(), source=source)


def load_policy_bytes(data: bytes, *, source: str = "<bytes>") -> LoadedPolicy:
    """Like `load_policy` for bytes already in memory; the hash is of exactly these bytes."""
    policy = parse_policy(_toml(data, source), source=source)
    return LoadedPolicy(policy=policy, content_hash=hashlib.sha256(data).hexdigest(), source=source)


def parse_scorecard(raw: dict[str, Any], *, source: str | None = None) -> ScorecardPolicy:
    return _validate(ScorecardPolicy, raw, source)


def parse_policy(raw: dict[str, Any], *, source: str | None = None) -> Policy:
    """Validate an already-parsed mapping for appeals; every error carries its key path. A valid
    scorecard missing what appeals need gets one issue per missing section or reason text."""
    loose = parse_scorecard(raw, source=source)
    issues = appeal_issues(loose)
    if issues:
        raise PolicyError(issues, source=source)
    return _validate(Policy, raw, source)


def _validate(model: type[_P], raw: dict[str, Any], source: str | None) -> _P:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        issues = [
            PolicyIssue(
                path=format_key_path(err["loc"]),
                message=_FRIENDLY_MESSAGES.get(err["type"], err["msg"]),
            )
            for err in exc.errors(include_url=False)
        ]
        raise PolicyError(issues, source=source) from None
    except PolicyError as exc:
        raise PolicyError(exc.issues, source=source) from None


def format_key_path(loc: tuple[int | str, ...]) -> str:
    """('scorecard', 'characteristics', 2, 'bins', 1) -> 'scorecard.characteristics[2].bins[1]'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for "the key itself" of a mapping entry
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


@lru_cache(maxsize=1)
def load_default_policy() -> LoadedPolicy:
    """The deployed champion (core/policy/deployment.py: the configured deployment file, by
    default policy/deployment.toml), read once per process."""
    from core.policy.deployment import load_deployment

    return load_deployment().champion
