"""A data file of the seeded population, for backtests: `appeals policy sample`.

Each generated customer (core/ledger/generator.py) with something to appeal (an account that is
not ACTIVE) becomes the input snapshot an appeal would see, as `core.appeals.assessment.build_input`
gathers it, when the customer supplied the documents the checklist asks for
(`core.policy.requirements.document_requirements`), plus proof of employment where their story
has one: the ledger rows as they are, the bank statement CSV parsed by the project's own parser
(`core.documents.statements.parse_csv_statement`), its red flags if any. The features are
`core.policy.characteristics.compute_characteristics` of that snapshot under the policy.

The file has one row per customer: `customer_id`, `population`, one column per feature in the
feature library (`CharacteristicName`, named as the `Characteristics` fields, which is what a
backtest reads for `source = "feature:NAME"`), and `bad` (1/0), the generator's hidden outcome.
Cells: an empty cell for a missing value, 1/0 for a yes/no, decimals as written by `Decimal`.
The same arguments always give the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Final

from core.db.ledger_tables import AccountStatus as LedgerAccountStatus
from core.documents.statements import parse_csv_statement, statement_red_flags
from core.ledger.generator import GeneratedCustomer, generate_population
from core.policy import inputs as snapshot
from core.policy.characteristics import (
    Characteristics,
    CharacteristicValue,
    compute_characteristics,
    worst_dpd,
)
from core.policy.model import CharacteristicName, Policy
from core.policy.requirements import document_requirements

ID_COLUMNS: Final = ("customer_id", "population")
TARGET_COLUMN: Final = "bad"


def feature_columns() -> tuple[str, ...]:
    """Every feature of the library, in its order: the `Characteristics` field names."""
    return tuple(name.value for name in CharacteristicName)


def sample_columns() -> tuple[str, ...]:
    return (*ID_COLUMNS, *feature_columns(), TARGET_COLUMN)


@dataclass(frozen=True)
class SampleRow:
    customer: GeneratedCustomer
    input: snapshot.AssessmentInput
    characteristics: Characteristics

    @property
    def bad(self) -> bool:
        return self.customer.bad

    def cells(self) -> list[str]:
        values = [self.characteristics.value(name) for name in feature_columns()]
        return [
            self.customer.customer_id,
            self.customer.population.value,
            *(format_value(v) for v in values),
            "1" if self.customer.bad else "0",
        ]


def format_value(value: CharacteristicValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return str(value)
    return str(int(value))


def has_something_to_appeal(customer: GeneratedCustomer) -> bool:
    return customer.account["status"] is not LedgerAccountStatus.ACTIVE


def appeal_input(customer: GeneratedCustomer, policy: Policy, *, as_of: date) -> snapshot.AssessmentInput:
    """The snapshot an appeal by `customer` would be scored on at `as_of` (the generator's
    `today`), with every checklist document accepted and the statement parsed from its CSV."""
    row, account = customer.customer, customer.account
    bills = tuple(
        snapshot.Bill(
            due_date=b["due_date"],
            amount_due_minor=b["amount_due_minor"],
            paid_minor=b["paid_minor"],
            paid_on=b["paid_at"].date()
            if b["paid_at"] and b["paid_minor"] >= b["amount_due_minor"]
            else None,
            days_past_due=b["days_past_due"],
        )
        for b in sorted(customer.bills, key=lambda b: b["due_date"])
    )
    requirements = document_requirements(
        policy,
        requested_limit_minor=customer.requested_limit_minor,
        declared_monthly_income_minor=row["declared_monthly_income_minor"],
        worst_dpd_12m=worst_dpd(bills, as_of, 12),
    )
    accepted = {r.document_type for r in requirements}
    if customer.employment_proof:
        accepted.add(snapshot.DocumentType.EMPLOYMENT_PROOF)
    parsed = parse_csv_statement(customer.statement_csv())
    transactions = sorted(parsed.transactions, key=lambda t: t.date)  # as stored: by date, then row
    return snapshot.AssessmentInput(
        as_of=as_of,
        customer=snapshot.Customer(
            declared_monthly_income_minor=row["declared_monthly_income_minor"],
            employer_name=row["employer"],
            customer_since=min(row["created_at"].date(), account["opened_on"]),
        ),
        account=snapshot.Account(
            original_limit_minor=account["original_limit_minor"],
            current_limit_minor=account["current_limit_minor"],
            status=snapshot.AccountStatus(account["status"].value),
            opened_on=account["opened_on"],
        ),
        requested_limit_minor=customer.requested_limit_minor,
        bills=bills,
        loan_applications=tuple(
            snapshot.LoanApplication(
                applied_on=a["applied_on"],
                lender=a["lender"],
                amount_minor=a["amount_minor"],
                small_loan=a["small_loan"],
            )
            for a in customer.loan_applications
        ),
        transactions=tuple(
            snapshot.StatementTransaction(
                date=t.date,
                description=t.description,
                amount_minor=t.amount_minor,
                balance_minor=t.balance_minor,
                counterparty=t.counterparty,
            )
            for t in transactions
        ),
        accepted_document_types=tuple(t for t in snapshot.DocumentType if t in accepted),
        red_flags=tuple(
            snapshot.RedFlag(code=f.code, explanation=f.explanation_en) for f in statement_red_flags(parsed)
        ),
        employment_document_accepted=customer.employment_proof,
    )


def sample_rows(
    customers: Iterable[GeneratedCustomer], policy: Policy, *, as_of: date
) -> Iterator[SampleRow]:
    """One row per customer with something to appeal, in the customers' order."""
    for customer in customers:
        if not has_something_to_appeal(customer):
            continue
        inp = appeal_input(customer, policy, as_of=as_of)
        yield SampleRow(customer, inp, compute_characteristics(inp, policy))


def population_sample(n: int, seed: int, policy: Policy, *, as_of: date) -> list[SampleRow]:
    return list(sample_rows(generate_population(n, seed, today=as_of), policy, as_of=as_of))


def sample_csv(rows: Sequence[SampleRow]) -> bytes:
    """The data file: UTF-8, no byte-order mark, `\\n` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(sample_columns())
    writer.writerows(row.cells() for row in rows)
    return buffer.getvalue().encode("utf-8")


def write_sample(rows: Sequence[SampleRow], path: Path) -> int:
    """Writes the data file; returns the number of rows."""
    path.write_bytes(sample_csv(rows))
    return len(rows)
