"""The statement factory the appeal tests upload: on any day of the year, and for any seed, its
statement covers the months an appeal asks for, so no test waits on a refusal by chance."""

from __future__ import annotations

import random
from datetime import date, timedelta

from core.documents.statement_checks import coverage_gaps, statement_red_flags
from core.documents.statement_csv import parse_csv_statement
from tests.documents import recent_statement_csv


def test_a_recent_statement_covers_its_window_on_every_day_of_a_leap_year() -> None:
    rng = random.Random(20280229)
    day = date(2028, 1, 1)
    refused: list[tuple[date, int]] = []
    while day.year == 2028:
        for seed in (rng.randrange(10_000, 10**9) for _ in range(4)):
            parsed = parse_csv_statement(recent_statement_csv(day, seed=seed))
            if coverage_gaps(parsed, 3, day) or statement_red_flags(parsed):
                refused.append((day, seed))
        day += timedelta(days=1)
    assert refused == []
