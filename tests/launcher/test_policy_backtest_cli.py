"""`appeals policy backtest` end to end: a policy file and CSV files written here."""

from __future__ import annotations

import random
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from launcher.cli import app

runner = CliRunner()

POLICY = """
id = "cli-backtest"

[scorecard]
base_points = 500

[[scorecard.characteristics]]
name = "dpd"
source = "input:worst_dpd"
reason = "RC_DPD"
missing_points = 10
bins = [ { upper = 1, points = 60 }, { lower = 1, upper = 30, points = 30 }, { lower = 30, points = 0 } ]

[[scorecard.characteristics]]
name = "housing"
source = "input:housing"
type = "categorical"
reason = "RC_HOUSING"
bins = [ { values = ["own"], points = 25 }, { values = ["rent", "<script>alert(1)</script>"], points = 5 } ]

[cutoffs]
auto_approve_min = 570
auto_decline_below = 520
"""

DPD_POINTS = ((1, 60), (30, 30), (None, 0))
HOUSING_POINTS = {"own": 25, "rent": 5, "<script>alert(1)</script>": 5}


def score(dpd: str, housing: str) -> int:
    dpd_points = 10 if dpd == "" else next(p for upper, p in DPD_POINTS if upper is None or int(dpd) < upper)
    return 500 + dpd_points + HOUSING_POINTS[housing]


def write_files(tmp_path: Path, seed: int = 1, n: int = 400) -> tuple[Path, Path, list[int], list[int]]:
    rng = random.Random(seed)
    lines = ["worst_dpd,housing,default_flag"]
    scores: list[int] = []
    bads: list[int] = []
    for _ in range(n):
        dpd = rng.choice(["0", "0", "5", "12", "45", "90", ""])
        housing = rng.choice(["own", "rent", "<script>alert(1)</script>"])
        s = score(dpd, housing)
        bad = int(rng.random() < (0.1 if s >= 570 else 0.35))
        lines.append(f"{dpd},{housing},{bad}")
        scores.append(s)
        bads.append(bad)
    lines.append("7,boat,0")  # a housing in no bin, no else_points: not scored
    data = tmp_path / "data.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return policy, data, scores, bads


def test_backtest_prints_the_figures_and_writes_the_report(tmp_path: Path) -> None:
    policy, data, scores, bads = write_files(tmp_path)
    out = tmp_path / "report.html"
    argv = ["policy", "backtest", str(policy), "--data", str(data), "--target", "default_flag"]
    argv += ["--baseline", str(data), "--bands", "530,560,580", "--out", str(out)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    expected_auc = roc_auc_score(bads, [-s for s in scores])
    text = result.output
    assert re.search(rf"^AUC\s+{expected_auc:.4f}$", text, flags=re.MULTILINE)
    assert re.search(rf"^Gini\s+{2 * expected_auc - 1:.4f}$", text, flags=re.MULTILINE)
    assert re.search(r"^scored\s+400$", text, flags=re.MULTILINE)
    assert "housing: category 'boat' is in no bin and there is no else_points" in text
    assert re.search(r"^>= 580\s+\d+", text, flags=re.MULTILINE)
    approved = sum(1 for s in scores if s >= 570)
    assert re.search(rf"^AUTO_APPROVE\s+{approved}\s", text, flags=re.MULTILINE)
    assert re.search(r"PSI of the score .*: 0\.0000 stable", text)
    assert f"Report written to {out}" in text

    page = out.read_text(encoding="utf-8")
    assert f"{expected_auc:.4f}" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    assert len(svgs) == 2
    for svg in svgs:
        ElementTree.fromstring(svg)


def test_backtest_without_report(tmp_path: Path) -> None:
    policy, data, _, _ = write_files(tmp_path, seed=2, n=50)
    result = runner.invoke(
        app, ["policy", "backtest", str(policy), "--data", str(data), "--target", "default_flag"]
    )
    assert result.exit_code == 0, result.output
    assert "Score bands (deciles" in result.output
    assert "Report written" not in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"policy": "absent.toml"}, "absent.toml: no such policy file"),
        ({"data": "absent.csv"}, "absent.csv: no such file"),
        ({"baseline": "absent.csv"}, "absent.csv: no such file"),
        ({"target": "bad"}, "no target column 'bad'"),
        ({"bands": "600,500"}, "edges must increase"),
        ({"data": "unscorable.csv"}, "no scorable row among 2"),
        ({"policy": "invalid.toml"}, "invalid policy: scorecard"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, change: dict[str, str], message: str) -> None:
    policy, data, _, _ = write_files(tmp_path, n=20)
    (tmp_path / "unscorable.csv").write_text(
        "worst_dpd,housing,default_flag\n1,boat,0\n2,,1\n", encoding="utf-8"
    )
    (tmp_path / "invalid.toml").write_text('id = "x"\n', encoding="utf-8")
    args = {"policy": str(policy), "data": str(data), "target": "default_flag"}
    args.update(
        {k: str(tmp_path / v) if k in ("policy", "data", "baseline") else v for k, v in change.items()}
    )
    argv = ["policy", "backtest", args.pop("policy")]
    for key, value in args.items():
        argv += [f"--{key}", value]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert message in lines[0]
