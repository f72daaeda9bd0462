"""The population generator: deterministic, the intended mix, statements that parse and add up,
ledger rows consistent with each story, and the outcome each population was designed for."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.db import make_engine, session_scope
from core.db.ledger_tables import AccountStatus, LimitEventKind
from core.db.migrate import create_all_at_head
from core.documents.statements import (
    covers_last_full_months,
    parse_csv_statement,
    statement_red_flags,
)
from core.ledger.eligibility import check_eligibility
from core.ledger.exporter import export_ledger
from core.ledger.generator import (
    DEFAULT_MIX,
    Expected,
    GeneratedCustomer,
    Population,
    generate_population,
    population_counts,
    seed_population,
    write_statements,
)
from core.ledger.importer import LEDGER_FILES
from core.policy import inputs as snapshot
from core.policy.characteristics import employment_verified
from core.policy.loader import LoadedPolicy, load_default_policy
from core.policy.scorecard import assess
from tests.core.policy.factories import from_statement

TODAY = date(2026, 3, 18)
# Month ends, a leap day and the first of a month: the statement window and bill days move.
OTHER_DAYS = (date(2024, 2, 29), date(2025, 12, 31), date(2026, 3, 1), date(2025, 7, 31))


@pytest.fixture(scope="module")
def population() -> list[GeneratedCustomer]:
    return generate_population(600, 42, today=TODAY)


@pytest.fixture(scope="module")
def policy() -> LoadedPolicy:
    return load_default_policy()


def _rows(customers: list[GeneratedCustomer]) -> list[tuple[object, ...]]:
    return [
        (c.customer, c.account, c.bills, c.limit_events, c.loan_applications, c.population, c.expected)
        for c in customers
    ]


# --------------------------------------------------------------------------------------------
# Determinism and shape


def test_same_seed_same_people(population: list[GeneratedCustomer]) -> None:
    again = generate_population(600, 42, today=TODAY)
    assert _rows(again) == _rows(population)
    assert [c.statement_csv() for c in again[:40]] == [c.statement_csv() for c in population[:40]]
    other = generate_population(600, 43, today=TODAY)
    assert _rows(other) != _rows(population)
    assert other[0].customer_id == "g-43-00001"


def test_same_seed_same_rows_in_the_database(engine: Engine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    create_all_at_head(other)
    try:
        for target, out in ((engine, "a"), (other, "b")):
            with session_scope(target) as session:
                seed_population(session, 150, 9, today=TODAY)
            with target.connect() as connection:
                export_ledger(connection, tmp_path / out)
    finally:
        other.dispose()
    for name in LEDGER_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_ids_are_stable_and_numbered(population: list[GeneratedCustomer]) -> None:
    assert [c.customer_id for c in population[:3]] == ["g-42-00001", "g-42-00002", "g-42-00003"]
    assert population[-1].customer_id == "g-42-00600" and population[-1].account_id == "ga-42-00600"
    assert len({c.customer_id for c in population}) == 600
    # A customer does not depend on how many others were generated with it.
    small = generate_population(60, 42, today=TODAY)
    by_population = {c.customer_id: c for c in population}
    same = [c for c in small if by_population[c.customer_id].population is c.population]
    assert all(_rows([c]) == _rows([by_population[c.customer_id]]) for c in same)


@pytest.mark.parametrize("n", [60, 600, 1000])
def test_population_shares_are_exact(n: int) -> None:
    counts = population_counts(generate_population(n, 1, today=TODAY))
    total = sum(DEFAULT_MIX.values())
    for population, weight in DEFAULT_MIX.items():
        assert abs(counts[population] - n * weight / total) < 1, (population, counts)
    assert sum(counts.values()) == n


def test_custom_mix() -> None:
    only = generate_population(10, 1, today=TODAY, mix={Population.THIN_FILE: 1})
    assert {c.population for c in only} == {Population.THIN_FILE}
    with pytest.raises(ValueError):
        generate_population(10, 1, today=TODAY, mix={Population.STEADY: 0})


def test_locales_statuses_and_stories(population: list[GeneratedCustomer]) -> None:
    locales = Counter(c.locale for c in population)
    assert set(locales) == {"zh-CN", "en"} and 0.6 < locales["zh-CN"] / 600 < 0.8
    statuses = Counter(c.account["status"] for c in population)
    assert (
        statuses[AccountStatus.FROZEN] > statuses[AccountStatus.REDUCED] > statuses[AccountStatus.ACTIVE] > 0
    )
    active = [c for c in population if c.account["status"] is AccountStatus.ACTIVE]
    assert all(c.population is Population.STEADY and c.expected is Expected.NOTHING_TO_APPEAL for c in active)
    assert len(active) < 0.06 * 600
    owing = [c for c in population if c.expected is Expected.INELIGIBLE]
    chronic = population_counts(population)[Population.CHRONIC_LATE]
    assert owing and all(c.population is Population.CHRONIC_LATE for c in owing)
    assert 0.15 < len(owing) / chronic < 0.45
    for c in population:
        if c.locale == "zh-CN":
            assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", c.customer["name"]), c.customer["name"]
        assert c.customer["employer"] and c.customer["email"].endswith("@example.test")


def test_ledger_rows_tell_the_story(population: list[GeneratedCustomer]) -> None:
    for c in population:
        account, bills = c.account, c.bills
        opened: date = account["opened_on"]
        assert c.customer["created_at"].date() == opened
        assert 1 <= len(bills) <= 24
        assert all(opened < b["due_date"] <= TODAY for b in bills)
        for b in bills:
            if b["paid_minor"] >= b["amount_due_minor"]:
                assert b["days_past_due"] == max((b["paid_at"].date() - b["due_date"]).days, 0)
                assert b["paid_at"] <= datetime.combine(TODAY + timedelta(days=1), datetime.min.time(), UTC)
            else:
                assert b["days_past_due"] == (TODAY - b["due_date"]).days
        recent_small = [
            a for a in c.loan_applications if a["small_loan"] and (TODAY - a["applied_on"]).days < 90
        ]
        if c.population is Population.THIN_FILE:
            assert len(bills) <= 8
        else:  # at least a year of history (an account opened 12 months ago has 11 bills)
            assert len(bills) >= 11
        if c.population is Population.MULTI_LENDER:
            assert len(recent_small) >= 4
        if c.population is Population.STEADY:
            assert sum(b["days_past_due"] > 0 for b in bills) <= 1 and not recent_small
        if c.population is Population.CHRONIC_LATE:
            assert sum(b["days_past_due"] > 0 for b in bills) >= 4
        if account["status"] is AccountStatus.ACTIVE:
            assert c.limit_events == () and account["current_limit_minor"] == account["original_limit_minor"]
            continue
        (event,) = c.limit_events
        frozen = account["status"] is AccountStatus.FROZEN
        assert event["kind"] is (LimitEventKind.FREEZE if frozen else LimitEventKind.REDUCE)
        assert (event["from_limit_minor"], event["to_limit_minor"]) == (
            account["original_limit_minor"],
            account["current_limit_minor"],
        )
        assert opened < event["created_at"].date() < TODAY
        assert 10_000 <= c.requested_limit_minor <= account["original_limit_minor"]


# --------------------------------------------------------------------------------------------
# Statements


def _parsed(c: GeneratedCustomer):  # type: ignore[no-untyped-def]
    return parse_csv_statement(c.statement_csv())


@pytest.mark.parametrize("today", [TODAY, *OTHER_DAYS])
def test_every_statement_parses_adds_up_and_covers_three_months(today: date) -> None:
    for c in generate_population(120, 3, today=today):
        parsed = _parsed(c)
        assert parsed.balance_mismatches == (), c.customer_id
        assert statement_red_flags(parsed) == [], c.customer_id
        assert covers_last_full_months(parsed, 3, today=today), c.customer_id
        assert parsed.transactions[-1].date < today
        assert all(t.balance_minor is not None and t.balance_minor >= 0 for t in parsed.transactions)


def test_payroll_comes_from_the_declared_employer(
    population: list[GeneratedCustomer], policy: LoadedPolicy
) -> None:
    params = policy.policy.parameters.employer_match
    for c in population[:150]:
        parsed = _parsed(c)
        payer = c.statement.payroll_payer
        credits = [t for t in parsed.transactions if t.counterparty == payer]
        assert len(credits) >= (2 if c.statement.skip_pay_month else 3), c.customer_id
        declared = c.customer["declared_monthly_income_minor"]
        if declared is not None:
            average = sum(t.amount_minor for t in credits) / len(credits)
            assert abs(average - c.statement.monthly_income_minor) <= 0.25 * c.statement.monthly_income_minor
        assert employment_verified(True, c.customer["employer"], [payer or ""], params), c.customer_id


def test_statements_are_written_with_a_manifest(tmp_path: Path) -> None:
    customers = generate_population(12, 5, today=TODAY)
    write_statements(customers, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{c.customer_id}-statement.csv" for c in customers] + ["manifest.csv"]
    )
    manifest = (tmp_path / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert manifest[0].startswith("customer_id,account_id,population,locale,account_status,expected")
    assert manifest[1].startswith(f"{customers[0].customer_id},{customers[0].account_id},")


# --------------------------------------------------------------------------------------------
# The outcomes the populations were designed for


def assessment_input(c: GeneratedCustomer, today: date) -> snapshot.AssessmentInput:
    """As core.appeals.assessment.build_input gathers it, with the statement accepted and the
    documents the story has (checklist items, plus employment proof where the story says so)."""
    documents = [
        snapshot.DocumentType.BANK_STATEMENT,
        snapshot.DocumentType.INCOME_PROOF,
        snapshot.DocumentType.CREDIT_REPORT,
    ]
    if c.employment_proof:
        documents.append(snapshot.DocumentType.EMPLOYMENT_PROOF)
    customer, account = c.customer, c.account
    return snapshot.AssessmentInput(
        as_of=today,
        customer=snapshot.Customer(
            declared_monthly_income_minor=customer["declared_monthly_income_minor"],
            employer_name=customer["employer"],
            customer_since=min(customer["created_at"].date(), account["opened_on"]),
        ),
        account=snapshot.Account(
            original_limit_minor=account["original_limit_minor"],
            current_limit_minor=account["current_limit_minor"],
            status=snapshot.AccountStatus(account["status"].value),
            opened_on=account["opened_on"],
        ),
        requested_limit_minor=c.requested_limit_minor,
        bills=tuple(
            snapshot.Bill(
                due_date=b["due_date"],
                amount_due_minor=b["amount_due_minor"],
                paid_minor=b["paid_minor"],
                paid_on=b["paid_at"].date() if b["paid_minor"] >= b["amount_due_minor"] else None,
                days_past_due=b["days_past_due"],
            )
            for b in c.bills
        ),
        loan_applications=tuple(
            snapshot.LoanApplication(
                applied_on=a["applied_on"],
                lender=a["lender"],
                amount_minor=a["amount_minor"],
                small_loan=a["small_loan"],
            )
            for a in c.loan_applications
        ),
        transactions=from_statement(_parsed(c).transactions),
        accepted_document_types=tuple(documents),
        employment_document_accepted=c.employment_proof,
    )


def test_each_population_gets_its_intended_outcome(
    population: list[GeneratedCustomer], policy: LoadedPolicy
) -> None:
    hits: Counter[Population] = Counter()
    totals: Counter[Population] = Counter()
    for c in population:
        if c.expected is Expected.NOTHING_TO_APPEAL:
            continue
        outcome = assess(policy, assessment_input(c, TODAY))
        if c.expected is Expected.INELIGIBLE:
            # The policy declines too, but eligibility stops the appeal first.
            assert outcome.recommendation.value == "AUTO_DECLINE"
            continue
        totals[c.population] += 1
        hits[c.population] += outcome.recommendation.value == c.expected.value
    for kind, total in totals.items():
        assert hits[kind] / total >= 0.9, (kind, hits[kind], total)
    assert hits[Population.STEADY] == totals[Population.STEADY]


def test_eligibility_in_the_ledger_matches_the_story(engine: Engine) -> None:
    with session_scope(engine) as session:
        outcome = seed_population(session, 80, 11, today=TODAY)
    with session_scope(engine, read_only=True) as session:
        for c in outcome.customers:
            result = check_eligibility(session, c.account_id, TODAY)
            if c.expected is Expected.NOTHING_TO_APPEAL:
                assert result.reason_code == "account_not_restricted"
            elif c.expected is Expected.INELIGIBLE:
                assert result.reason_code == "overdue_balance_outstanding" and result.amount_owed_minor > 0
            else:
                assert result.eligible, c.customer_id


def test_seeding_again_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        first = seed_population(session, 50, 2, today=TODAY)
    with engine.connect() as connection:
        export_ledger(connection, tmp_path / "first")
    with session_scope(engine) as session:
        second = seed_population(session, 50, 2, today=TODAY + timedelta(days=3))
    with engine.connect() as connection:
        export_ledger(connection, tmp_path / "second")
    assert (first.inserted, first.skipped) == (50, 0)
    assert (second.inserted, second.skipped) == (0, 50)
    assert all(v == 0 for v in second.rows.values())
    for name in LEDGER_FILES:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
