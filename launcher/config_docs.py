"""docs/configuration.md, generated from core/settings.py (`appeals config docs`), and the one
line per refused setting that every command prints instead of a traceback."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined

from core.settings import REPO_ROOT, Settings

PREFIX = "APPEALS_"
REFERENCE = REPO_ROOT / "docs" / "configuration.md"
# EX_CONFIG (sysexits.h): what a command exits with when its configuration is refused.
EXIT_CONFIG = 78

HEADER = """# Configuration reference

<!-- Generated from core/settings.py by `appeals config docs`; do not edit by hand
     (tests/launcher/test_config_docs.py fails when this file differs from the settings). -->

Every setting is an environment variable with the `APPEALS_` prefix, or a line of a `.env` file
in the working directory. Durations are ISO 8601 (`PT10M`, `P30D`) or `HH:MM:SS`; lists and maps are
JSON. A secret's default is not shown. A command given a setting it refuses prints one line per
bad setting and exits with code 78 (`appeals config check` checks the environment alone).

| variable | type | default | description |
|---|---|---|---|
"""


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def is_secret(field: str) -> bool:
    info = Settings.model_fields[field]
    extra = info.json_schema_extra
    return (isinstance(extra, dict) and extra.get("secret") is True) or _mentions(info.annotation, SecretStr)


def _mentions(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_mentions(arg, kind) for arg in typing.get_args(annotation))


def type_name(annotation: Any) -> str:
    """A type as an operator reads it: `int`, `duration`, `list of duration`, `str, optional`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(named) + (", optional" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    if origin is typing.Literal:
        return "one of " + ", ".join(str(arg) for arg in args)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(str(member.value) for member in annotation)
    names = {timedelta: "duration", SecretStr: "str", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(info: FieldInfo) -> list[str]:
    symbols = {Ge: (">=", "ge"), Gt: (">", "gt"), Le: ("<=", "le"), Lt: ("<", "lt")}
    found = []
    for item in info.metadata:
        for kind, (symbol, attribute) in symbols.items():
            if isinstance(item, kind):
                found.append(f"{symbol} {_shown(getattr(item, attribute))}")
    return found


def _shown(value: Any) -> str:
    if isinstance(value, timedelta):
        return str(TypeAdapter(timedelta).dump_python(value, mode="json"))
    return str(value)


def default_text(field: str) -> str:
    info = Settings.model_fields[field]
    if is_secret(field):
        return "(secret)"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if value is None:
        return "(unset)"
    if isinstance(value, Path) and value.is_absolute() and value.is_relative_to(REPO_ROOT):
        value = value.relative_to(REPO_ROOT)  # the repository's file, wherever it is checked out
    dumped = TypeAdapter(info.annotation or object).dump_python(value, mode="json")
    text = dumped if isinstance(dumped, str) else json.dumps(dumped)
    return f"`{text}`" if text != "" else '`""` (empty)'


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference() -> str:
    """The whole of docs/configuration.md."""
    rows = []
    for field, info in Settings.model_fields.items():
        kind = ", ".join([type_name(info.annotation), *_bounds(info)])
        description = info.description or ""
        rows.append(
            f"| `{env_name(field)}` | {_cell(kind)} | {_cell(default_text(field))} | {_cell(description)} |"
        )
    return HEADER + "\n".join(rows) + "\n"


def write_reference(path: Path = REFERENCE) -> bool:
    """Writes the reference; whether the file changed."""
    text = reference()
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


# --- refused settings ------------------------------------------------------------------------

_BOUND_WORDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _problem(error: ErrorDetails) -> str:
    if error["type"] in _BOUND_WORDS:
        symbol, key = _BOUND_WORDS[error["type"]]
        return f"must be {symbol} {error.get('ctx', {}).get(key)}"
    message = error["msg"]
    for prefix in ("Input should be ", "Value error, "):
        if message.startswith(prefix):
            return ("must be " if prefix.startswith("Input") else "") + message[len(prefix) :]
    return message[:1].lower() + message[1:]


def refused_settings(exc: ValidationError) -> list[str]:
    """One line per refused setting: `APPEALS_API_WORKERS: must be >= 1 (got "0")`; a secret's
    value is never shown, and a rule across settings is its own sentence."""
    lines = []
    for error in exc.errors():
        loc = error["loc"]
        field = str(loc[0]) if loc else ""
        if field not in Settings.model_fields:
            lines.append(_problem(error))
            continue
        got = "a secret value" if is_secret(field) else json.dumps(_raw(error["input"]))
        lines.append(f"{env_name(field)}: {_problem(error)} (got {got})")
    return lines


def _raw(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def unparseable_setting(message: str, names: Iterable[str] = Settings.model_fields) -> str:
    """pydantic-settings' `error parsing value for field "x" from source ...` (a list or map that
    is not JSON) as the variable it means."""
    for field in names:
        if f'"{field}"' in message:
            return f"{env_name(field)}: must be JSON ({type_name(Settings.model_fields[field].annotation)})"
    return message
