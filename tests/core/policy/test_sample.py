"""The seeded population as a data file: the snapshot an appeal would see, every feature column,
the hidden outcome, and the same bytes for the same seed (`appeals policy sample`)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.db.ledger_tables import AccountStatus
from core.ledger.generator import Expected, Population, generate_population
from core.policy.characteristics import numeric
from core.policy.loader import LoadedPolicy, load_default_policy
from core.policy.model import CharacteristicName
from core.policy.requirements import document_requirements
from core.policy.sample import (
    SampleRow,
    feature_columns,
    population_sample,
    sample_columns,
    sample_csv,
)
from core.policy.scorecard import assess
from launcher.cli import app

TODAY = date(2026, 3, 18)
N, SEED = 240, 7


@pytest.fixture(scope="module")
def policy() -> LoadedPolicy:
    return load_default_policy()


@pytest.fixture(scope="module")
def rows(policy: LoadedPolicy) -> list[SampleRow]:
    return population_sample(N, SEED, policy.policy, as_of=TODAY)


def _read(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    return list(reader.fieldnames or []), list(reader)


def test_the_file_has_every_feature_and_the_outcome(rows: list[SampleRow]) -> None:
    header, records = _read(sample_csv(rows))
    assert header == ["customer_id", "population", *(n.value for n in CharacteristicName), "bad"]
    assert tuple(header) == sample_columns() and len(feature_columns()) == len(CharacteristicName)
    customers = generate_population(N, SEED, today=TODAY)
    appealing = [c for c in customers if c.account["status"] is not AccountStatus.ACTIVE]
    assert 0 < len(appealing) < len(customers)  # the ACTIVE accounts are skipped
    assert [r["customer_id"] for r in records] == [c.customer_id for c in appealing]
    assert [r["population"] for r in records] == [c.population.value for c in appealing]
    assert [r["bad"] for r in records] == ["1" if c.bad else "0" for c in appealing]
    assert {r["bad"] for r in records} == {"0", "1"}
    for record, row in zip(records, rows, strict=True):
        for name in feature_columns():
            cell, expected = record[name], numeric(row.characteristics.value(name))
            assert (Decimal(cell) if cell else None) == expected, (record["customer_id"], name, cell)
    # Missing values are empty cells: no credit report in the ledger, so no product count.
    assert all(r["other_credit_products"] == "" for r in records)
    assert {r["employment_verified"] for r in records} == {"0", "1"}


def test_the_snapshot_is_what_an_appeal_with_its_documents_sees(
    rows: list[SampleRow], policy: LoadedPolicy
) -> None:
    """Every document the checklist asks for is accepted, the statement is parsed and covers
    the months asked for, and each population comes to the outcome its story was built for."""
    hits: Counter[Population] = Counter()
    totals: Counter[Population] = Counter()
    for row in rows:
        inp, ch, c = row.input, row.characteristics, row.customer
        required = document_requirements(
            policy.policy,
            requested_limit_minor=inp.requested_limit_minor,
            declared_monthly_income_minor=inp.customer.declared_monthly_income_minor,
            worst_dpd_12m=ch.worst_dpd_12m,
        )
        assert {r.document_type for r in required} <= set(inp.accepted_document_types)
        assert ch.missing_document_count == 0 and ch.red_flag_count == 0
        assert ch.statement_months_covered >= 3
        if not c.statement.skip_pay_month:  # a month without pay may hide the payroll
            assert ch.net_monthly_income_minor, c.customer_id
        assert len(inp.transactions) > 20 and len(inp.bills) == len(c.bills)
        outcome = assess(policy, inp)
        if c.expected is Expected.INELIGIBLE:
            assert ch.overdue_bills_now == 1 and outcome.recommendation.value == "AUTO_DECLINE"
            continue
        totals[c.population] += 1
        hits[c.population] += outcome.recommendation.value == c.expected.value
    assert set(totals) == set(Population)
    for population, total in totals.items():
        assert hits[population] / total >= 0.85, (population, hits[population], total)


def test_the_command_writes_the_same_bytes_every_time(tmp_path: Path, rows: list[SampleRow]) -> None:
    runner = CliRunner()
    outputs = []
    for name in ("a.csv", "b.csv"):
        args = ["policy", "sample", "--customers", str(N), "--seed", str(SEED)]
        result = runner.invoke(app, [*args, "--as-of", TODAY.isoformat(), "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert f"wrote {len(rows)} rows" in result.output and "bad rate" in result.output
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1] == sample_csv(rows)
    other = runner.invoke(
        app,
        [
            "policy",
            "sample",
            "--customers",
            "30",
            "--seed",
            "8",
            "--as-of",
            "2026-03-18",
            "--out",
            str(tmp_path / "c.csv"),
        ],
    )
    assert other.exit_code == 0, other.output
    assert (tmp_path / "c.csv").read_bytes() != outputs[0]
    bad_date = runner.invoke(
        app, ["policy", "sample", "--as-of", "18/03/2026", "--out", str(tmp_path / "d.csv")]
    )
    assert bad_date.exit_code != 0 and not (tmp_path / "d.csv").exists()
