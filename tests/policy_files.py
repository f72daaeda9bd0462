"""Policy files for deployment tests: the shipped policy, variants of it, a scorecard alone."""

from __future__ import annotations

from pathlib import Path

from core.policy.loader import default_policy_path

POLICY_TEXT = default_policy_path().read_text(encoding="utf-8")
INPUT_FIELD = "bureau_grade"


def with_bureau_grade(text: str = POLICY_TEXT, *, else_points: int | None = 0) -> str:
    """The policy plus a categorical characteristic read from the input field `bureau_grade`
    (grade A: 200 points). Without `else_points` (and no missing bin) a customer with another
    grade, or none, cannot be scored."""
    lines = [
        "",
        "[[scorecard.characteristics]]",
        f'name = "{INPUT_FIELD}"',
        f'source = "input:{INPUT_FIELD}"',
        'type = "categorical"',
        'reason = "RC_CREDIT_PRODUCTS"',
        'bins = [ { values = ["A"], points = 200, label = "grade A" }, { values = ["B"], points = 100 } ]',
    ]
    if else_points is not None:
        lines.insert(-1, f"else_points = {else_points}")
        lines.insert(-1, "missing_points = 0")
    return text + "\n".join(lines) + "\n"


SCORECARD_ONLY = f"""\
id = "card-only"

[[scorecard.characteristics]]
name = "{INPUT_FIELD}"
source = "input:{INPUT_FIELD}"
type = "categorical"
reason = "RC_GRADE"
else_points = 0
bins = [ {{ values = ["A"], points = 50 }} ]

[reasons.RC_GRADE]
en = "Your grade."
zh-CN = "您的等级。"
"""


def write_policy(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
