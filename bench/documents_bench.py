"""Benchmark the document checks: CSV statement parsing and PDF bomb rejection.

Run from the repository root: `.venv/bin/python -m bench.documents_bench`.
"""

from __future__ import annotations

import csv
import io
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also as `python bench/...py`

from core.documents.pdf_inspect import PdfLimits, inspect_pdf
from core.documents.statements import parse_csv_statement
from tests.core.documents import factories

ROWS = 10_000
REPEATS = 7
MIB = 1024 * 1024


def rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Median and best wall time of REPEATS runs, in seconds."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def traced_peak(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def plain_csv_reader(data: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def bench_csv(label: str, data: bytes, encoding: str) -> None:
    def parse() -> object:
        return parse_csv_statement(data)

    def baseline() -> object:
        return plain_csv_reader(data, encoding)

    before = rss_peak()
    parsed = parse_csv_statement(data)
    rss_delta = rss_peak() - before
    assert len(parsed.transactions) == ROWS and not parsed.balance_mismatches
    median, best = timed(parse)
    base_median, base_best = timed(baseline)
    peak = traced_peak(parse)
    base_peak = traced_peak(baseline)
    print(f"\n{label}: {ROWS:,} rows, {len(data) / MIB:.2f} MiB")
    print(f"  {'':28}{'median':>10}{'best':>10}{'tracemalloc peak':>20}")
    print(f"  {'parse_csv_statement':28}{median * 1e3:>8.1f}ms{best * 1e3:>8.1f}ms"
          f"{peak / MIB:>17.1f}MiB")  # fmt: skip
    print(f"  {'csv.reader (decode + list)':28}{base_median * 1e3:>8.1f}ms"
          f"{base_best * 1e3:>8.1f}ms{base_peak / MIB:>17.1f}MiB")  # fmt: skip
    print(f"  ratio parse_csv_statement / csv.reader: time x{median / base_median:.1f}, "
          f"memory x{peak / base_peak:.1f}")  # fmt: skip
    print(f"  process RSS growth on first parse: {rss_delta / MIB:.1f} MiB")


def bench_pdf(label: str, data: bytes, limits: PdfLimits) -> None:
    before = rss_peak()
    report = inspect_pdf(data, limits)
    grown = rss_peak() - before
    child = (report.child_peak_rss_bytes or 0) / MIB
    verdict = "ok" if report.ok else f"rejected: {report.failure}"
    print(f"  {label:42}{len(data) / MIB:>6.2f}MiB {report.elapsed_seconds:>5.2f}s "
          f"child peak RSS {child:>5.1f}MiB  parent RSS +{grown / MIB:.1f}MiB  "
          f"{verdict}")  # fmt: skip


def main() -> None:
    print(f"Python {sys.version.split()[0]}, limits: {PdfLimits()}")
    en = factories.csv_statement_en(factories.many_rows(ROWS))
    bench_csv("CSV, English headers, UTF-8", en, "utf-8")
    zh = factories.csv_statement_zh(factories.many_rows(ROWS), encoding="gb18030")
    bench_csv("CSV, Chinese headers and preamble, GB18030", zh, "gb18030")

    print("\nPDF inspection (child process, wall clock incl. interpreter start-up)")
    rows = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31))
    bench_pdf("genuine 1-page statement", factories.pdf_statement(rows), PdfLimits())
    bench_pdf("bomb: 1 stream -> 4 GiB", factories.bomb_pdf(4 * factories.GIB), PdfLimits())
    bench_pdf("bomb: 8 pages x 70 MiB (under pypdf cap)", factories.split_bomb_pdf(), PdfLimits())
    bench_pdf("slow content, timeout 1 s", factories.busy_pdf(300_000), PdfLimits(timeout_seconds=1))


if __name__ == "__main__":
    main()
