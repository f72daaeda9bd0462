"""The generator's hidden outcome `bad`: deterministic, drawn without disturbing any other field,
calibrated per population, driven by the story's risk, and never written to the ledger."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from core.db import make_engine, session_scope
from core.db.migrate import create_all_at_head
from core.ledger.exporter import export_ledger
from core.ledger.generator import (
    BAD_INTERCEPT,
    MANIFEST_COLUMNS,
    GeneratedCustomer,
    Population,
    _latent_risk,
    _spec,
    generate_population,
    insert_population,
    write_manifest,
)
from core.ledger.importer import LEDGER_FILES

TODAY = date(2026, 3, 18)
# The manifest's columns before the outcome was added: their values must not change.
OLD_MANIFEST = (
    "customer_id",
    "account_id",
    "population",
    "locale",
    "account_status",
    "expected",
    "requested_limit_minor",
    "employment_proof",
    "story",
)
# Computed with the generator as it was before `bad` existed (commit a8598bc): every generated
# field, the ledger rows and the statement bytes of these populations.
DIGESTS = {
    (60, 11, date(2025, 6, 15)): "f748146fc06817acfdfda127d0e474c5f61090e726429aee7ccbe033876ed29c",
    (60, 7, TODAY): "e16f8e8f043ba426bb9e17101da937caa0258d6238ba177a4c3cd82fecf0215c",
}
# Calibrated bad rates (the generator's docstring) and the bounds a 3,000-customer draw stays in.
BAD_RATE_BOUNDS = {
    Population.STEADY: (0.005, 0.07),
    Population.RECOVERED: (0.05, 0.17),
    Population.THIN_FILE: (0.06, 0.21),
    Population.HIGH_SPENDER: (0.07, 0.26),
    Population.MULTI_LENDER: (0.18, 0.43),
    Population.CHRONIC_LATE: (0.24, 0.47),
}


@pytest.fixture(scope="module")
def population() -> list[GeneratedCustomer]:
    return generate_population(3000, 5, today=TODAY)


def _digest(customers: list[GeneratedCustomer]) -> str:
    h = hashlib.sha256()
    for c in customers:
        manifest = c.manifest_row()
        row = {
            "number": c.number,
            "population": c.population.value,
            "expected": c.expected.value,
            "story": c.story,
            "requested": c.requested_limit_minor,
            "employment_proof": c.employment_proof,
            "customer": c.customer,
            "account": c.account,
            "bills": c.bills,
            "limit_events": c.limit_events,
            "loans": c.loan_applications,
            "manifest": {k: manifest[k] for k in OLD_MANIFEST},
        }
        h.update(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(c.statement_csv())
    return h.hexdigest()


@pytest.mark.parametrize(("n", "seed", "today"), list(DIGESTS))
def test_the_outcome_changed_no_other_field(n: int, seed: int, today: date) -> None:
    assert _digest(generate_population(n, seed, today=today)) == DIGESTS[(n, seed, today)]


def test_the_outcome_is_deterministic_per_seed(population: list[GeneratedCustomer]) -> None:
    again = generate_population(3000, 5, today=TODAY)
    assert [c.bad for c in again] == [c.bad for c in population]
    other = generate_population(3000, 6, today=TODAY)
    assert [c.bad for c in other] != [c.bad for c in population]
    # A customer's outcome does not depend on how many others were generated with it.
    small = generate_population(200, 5, today=TODAY)
    assert all(
        c.bad == population[c.number - 1].bad
        for c in small
        if c.population is population[c.number - 1].population
    )


def test_bad_rates_per_population(population: list[GeneratedCustomer]) -> None:
    outcomes: dict[Population, list[bool]] = defaultdict(list)
    for c in population:
        outcomes[c.population].append(c.bad)
    rates = {p: sum(v) / len(v) for p, v in outcomes.items()}
    for p, (low, high) in BAD_RATE_BOUNDS.items():
        assert low < rates[p] < high, (p, rates[p])
    assert rates[Population.STEADY] < rates[Population.RECOVERED] < rates[Population.MULTI_LENDER]
    assert rates[Population.HIGH_SPENDER] < rates[Population.CHRONIC_LATE]


def test_the_outcome_follows_the_latent_risk_but_is_not_a_function_of_it(
    population: list[GeneratedCustomer],
) -> None:
    """Within each population the bads have the riskier stories on average; yet customers with
    the same story-driven risk have both outcomes (the noise and the draw)."""
    for p in Population:
        members = [c for c in population if c.population is p]
        # The spec is the customer's generator's first draw: rebuild it to read the drivers.
        risk = {c.number: _latent_risk(_spec(p, random.Random(f"customer:5:{c.number}"))) for c in members}
        bad = [risk[c.number] for c in members if c.bad]
        good = [risk[c.number] for c in members if not c.bad]
        assert bad and good, p
        assert sum(bad) / len(bad) > sum(good) / len(good), p
    assert set(BAD_INTERCEPT) == set(Population)
    chronic = sorted(
        (c for c in population if c.population is Population.CHRONIC_LATE),
        key=lambda c: _latent_risk(_spec(c.population, random.Random(f"customer:5:{c.number}"))),
    )
    riskiest = chronic[-100:]
    assert 0 < sum(c.bad for c in riskiest) < 100


def test_the_outcome_is_in_the_manifest(tmp_path: Path) -> None:
    customers = generate_population(40, 3, today=TODAY)
    write_manifest(customers, tmp_path / "manifest.csv")
    with (tmp_path / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == MANIFEST_COLUMNS and MANIFEST_COLUMNS[-1] == "bad"
    assert [r["bad"] for r in rows] == ["true" if c.bad else "false" for c in customers]
    assert {r["bad"] for r in rows} == {"true", "false"}


def test_the_outcome_is_never_written_to_the_ledger(tmp_path: Path) -> None:
    """The same customers with every outcome flipped give byte-identical ledgers, and no ledger
    table has a column for it."""
    customers = generate_population(150, 9, today=TODAY)
    flipped = [dataclasses.replace(c, bad=not c.bad) for c in customers]
    exports = []
    for name, population in (("a", customers), ("b", flipped)):
        engine: Engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        try:
            create_all_at_head(engine)
            with session_scope(engine) as session:
                insert_population(session, population)
            with engine.connect() as connection:
                export_ledger(connection, tmp_path / name)
            columns = {
                column["name"]
                for table in inspect(engine).get_table_names()
                for column in inspect(engine).get_columns(table)
            }
        finally:
            engine.dispose()
        assert "bad" not in columns
        exports.append({file: (tmp_path / name / file).read_bytes() for file in LEDGER_FILES})
    assert exports[0] == exports[1]
    for file, data in exports[0].items():
        assert b"bad" not in data.splitlines()[0], file
    for c in customers:
        ledger_rows = [c.customer, c.account, *c.bills, *c.limit_events, *c.loan_applications]
        assert all("bad" not in row for row in ledger_rows)
