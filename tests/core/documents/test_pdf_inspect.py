"""PDF inspection in the child process. Every test here starts real child processes."""

import resource
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from core.documents.pdf_inspect import (
    PdfFailure,
    PdfLimits,
    PdfReport,
    count_incremental_updates,
    inspect_pdf,
    red_flags,
)
from core.documents.rejections import pdf_rejection
from core.documents.statements import parse_text_statement
from tests.core.documents import factories

LIMITS = PdfLimits()
ROWS = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31))


@pytest.fixture(scope="module")
def statement_pdf() -> bytes:
    return factories.pdf_statement(ROWS, chinese=True)


def codes(report: PdfReport) -> list[str]:
    return [flag.code for flag in red_flags(report)]


def parent_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_genuine_statement_is_read_and_raises_no_flags(statement_pdf: bytes) -> None:
    report = inspect_pdf(statement_pdf)
    assert report.ok and report.failure is None
    assert report.page_count == 1
    assert report.producer == "BankCore Statement Service 4.2"
    assert report.creation_date == datetime(2026, 4, 1, 2, 0, tzinfo=UTC)
    assert report.incremental_update_count == 0
    assert not (report.encrypted or report.has_javascript or report.has_launch_action)
    assert codes(report) == []
    assert report.child_peak_rss_bytes is not None
    assert 0 < report.child_peak_rss_bytes < LIMITS.memory_bytes
    assert 0 < report.elapsed_seconds < LIMITS.timeout_seconds


def test_extracted_text_parses_into_the_same_transactions(statement_pdf: bytes) -> None:
    parsed = parse_text_statement(inspect_pdf(statement_pdf).text)
    assert [t.amount_minor for t in parsed.transactions] == [r.amount_minor for r in ROWS]
    assert [t.balance_minor for t in parsed.transactions] == [r.balance_minor for r in ROWS]
    assert parsed.balance_mismatches == ()
    assert (parsed.stated_period_start, parsed.stated_period_end) == (ROWS[0].date, ROWS[-1].date)


def test_a_path_is_accepted_too(statement_pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "statement.pdf"
    path.write_bytes(statement_pdf)
    assert inspect_pdf(path).page_count == 1


def test_tampered_statement_raises_tool_date_and_revision_flags(statement_pdf: bytes) -> None:
    tampered = factories.tampered_pdf(statement_pdf, modified=datetime(2026, 6, 10, tzinfo=UTC))
    report = inspect_pdf(tampered)
    assert report.ok
    assert report.producer == "Adobe Photoshop 25.0 (Windows)"
    assert report.mod_date == datetime(2026, 6, 10, tzinfo=UTC)
    assert report.incremental_update_count == 1
    assert codes(report) == [
        "PDF_EDITING_TOOL",
        "PDF_MODIFIED_AFTER_CREATION",
        "PDF_INCREMENTAL_UPDATE",
    ]


def test_password_protected_pdf_is_rejected_with_advice() -> None:
    report = inspect_pdf(factories.encrypted_pdf(user_password="123456"))
    assert not report.ok
    assert report.failure is PdfFailure.ENCRYPTED
    assert report.encrypted
    rejection = pdf_rejection(report)
    assert rejection is not None and "password" in rejection.message_en


def test_owner_password_only_pdf_is_read_but_flagged() -> None:
    report = inspect_pdf(factories.encrypted_pdf(user_password=None))
    assert report.ok and report.encrypted
    assert "8,000.00" in report.text
    assert codes(report) == ["PDF_ENCRYPTED"]


@pytest.mark.parametrize("where", ["open_action", "names", "page_aa_escaped"])
def test_javascript_is_found_wherever_it_hides(where: str) -> None:
    report = inspect_pdf(factories.javascript_pdf(where=where))
    assert report.ok and report.has_javascript and not report.has_launch_action
    assert codes(report) == ["PDF_JAVASCRIPT"]


def test_launch_action_is_found() -> None:
    report = inspect_pdf(factories.launch_pdf())
    assert report.has_launch_action and not report.has_javascript
    assert codes(report) == ["PDF_LAUNCH_ACTION"]


def test_plain_pdf_has_no_active_content() -> None:
    report = inspect_pdf(factories.plain_raw_pdf())
    assert report.ok and not report.has_javascript and not report.has_launch_action
    assert "Salary" in report.text


@pytest.mark.parametrize(
    "data",
    [factories.elf_executable(), b"%PDF-1.7\n garbage", b""],
    ids=["elf", "truncated", "empty"],
)
def test_unreadable_input_is_malformed_not_a_crash(data: bytes) -> None:
    report = inspect_pdf(data)
    assert report.failure is PdfFailure.MALFORMED
    assert report.failure_detail


def test_decompression_bomb_is_rejected_fast_with_bounded_memory() -> None:
    bomb = factories.bomb_pdf(4 * factories.GIB)
    assert len(bomb) < 8 * factories.MIB
    before = parent_peak_rss()
    report = inspect_pdf(bomb)
    assert not report.ok
    assert report.failure in (PdfFailure.RESOURCE_LIMIT, PdfFailure.MEMORY_LIMIT)
    assert report.child_peak_rss_bytes is not None
    assert report.child_peak_rss_bytes <= LIMITS.memory_bytes
    assert parent_peak_rss() - before < 32 * factories.MIB


def test_bomb_under_pypdfs_own_caps_is_stopped_by_the_memory_limit() -> None:
    # Each page inflates to 70 MB, below pypdf's 75 MB per-stream cap; eight of them exceed the
    # child's address space while text is extracted. Only our rlimit stands in the way.
    limits = PdfLimits(memory_bytes=192 * factories.MIB)
    before = parent_peak_rss()
    report = inspect_pdf(factories.split_bomb_pdf(pages=8), limits)
    assert report.failure is PdfFailure.MEMORY_LIMIT
    assert report.child_peak_rss_bytes is not None
    assert report.child_peak_rss_bytes <= limits.memory_bytes
    assert parent_peak_rss() - before < 32 * factories.MIB
    assert report.page_count == 8  # cheap facts gathered before the bomb went off survive


def test_slow_pdf_is_killed_when_it_has_spent_its_cpu_budget() -> None:
    # A wall-clock deadline far off: on a busy machine the CPU budget, not the clock, decides.
    limits = PdfLimits(timeout_seconds=1.0, wall_factor=60)
    report = inspect_pdf(factories.busy_pdf(300_000), limits)
    assert report.failure is PdfFailure.TIMEOUT
    # Killed once its CPU time is spent, not before; how soon after is the busy machine's business.
    assert report.elapsed_seconds >= limits.timeout_seconds
    assert report.page_count == 1  # from the checkpoint written before text extraction


def test_a_child_stopped_by_the_wall_clock_before_its_cpu_budget_gives_no_verdict(
    statement_pdf: bytes,
) -> None:
    """On a busy machine a child gets a sliver of a core: wall time says nothing about the file.
    Killed at the wall-clock deadline with its CPU budget unspent, it gives no verdict (the
    activity inspects the file again), never a refusal of a good file."""
    limits = PdfLimits(timeout_seconds=5.0, wall_factor=0.01)  # 50 ms: not even Python starts
    report = inspect_pdf(statement_pdf, limits)
    assert report.failure is PdfFailure.INTERRUPTED
    assert inspect_pdf(statement_pdf).ok  # the same file, given its time


def test_inspection_is_safe_from_a_thread_pool(statement_pdf: bytes) -> None:
    inputs = [statement_pdf, factories.javascript_pdf(), factories.bomb_pdf(), statement_pdf]
    with ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(inspect_pdf, inputs))
    assert [r.ok for r in reports] == [True, True, False, True]
    assert [r.has_javascript for r in reports] == [False, True, False, False]
    assert reports[0].text == reports[3].text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.4\n...xref\ntrailer<<>>\nstartxref\n9\n%%EOF\n", 0),
        (b"%PDF-1.4\nstartxref\n9\n%%EOF\n...\nstartxref\n99\n%%EOF\r\n", 1),
        (b"%PDF-1.4\nstartxref 9 %%EOF startxref 99 %%EOF startxref 999\n%%EOF", 2),
        # Linearized files carry a first-page section by construction.
        (b"%PDF-1.4\n1 0 obj <</Linearized 1>> startxref\n0\n%%EOF startxref\n9\n%%EOF", 0),
        (b"%PDF-1.4\n1 0 obj <</Linearized 1>> startxref 0 %%EOF startxref 9 %%EOF"
         b" startxref 99 %%EOF", 1),
        (b"no trailer at all", 0),
    ],
)  # fmt: skip
def test_incremental_updates_are_counted_from_raw_bytes(data: bytes, expected: int) -> None:
    assert count_incremental_updates(data) == expected
