"""Browser tests: Playwright (async API, on the suite's session event loop) driving Debian's
Chromium against the app on a real port (tests/browser/live_stack.py).

Fixtures:

- `chromium_executable` (session): /usr/bin/chromium. Missing, the browser tests skip with how
  to install it; with CI=true they fail instead.
- `browser` (session): one headless Chromium for the whole run (tests/browser/chromium.py).
- `live_stack` (session): API + worker + SMTP sink processes on free ports, against the
  session's Temporal dev server (`temporal_address`) and S3 server (`s3_endpoint`), on a
  SQLite file seeded with the demo ledger.
- `open_page` (per test): `await open_page("phone")` or `await open_page("desktop", "r-1")`
  gives a page in a fresh browser context (empty profile: signed out, no cookies) with that
  viewport preset, its base URL the stack's. A failed test leaves, per context, a Playwright
  trace, a screenshot of each page and the browser console's errors under
  test-artifacts/failures/ (tests/browser/artifacts.py), with the tails of the stack's logs.
- `phone_page`, `desktop_page`: one page each, for the simple tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Error, Page, async_playwright

from tests.browser.artifacts import failure_dir, slug
from tests.browser.chromium import context_options, launch_chromium, require_chromium
from tests.browser.live_stack import LiveStack, start_live_stack

IN_CI = os.environ.get("CI", "").lower() == "true"

OpenPage = Callable[..., Awaitable[Page]]

_FAILED_KEY = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remembers on the test item whether its setup or call failed, for the artifacts."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        item.stash[_FAILED_KEY] = True
    return report


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    return require_chromium(in_ci=IN_CI)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium_executable: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright, chromium_executable)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def live_stack(
    chromium_executable: Path,  # first: no browser, no reason to start the stack
    temporal_address: str,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    stack = start_live_stack(
        data_dir=tmp_path_factory.mktemp("browser-stack"),
        temporal_address=temporal_address,
        s3_endpoint=s3_endpoint,
    )
    try:
        yield stack
    finally:
        stack.stop()


@dataclass
class _Opened:
    label: str
    context: BrowserContext
    problems: list[str] = field(default_factory=list)  # console errors and uncaught exceptions


def _watch(opened: _Opened, page: Page) -> None:
    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            source = message.location.get("url") or page.url
            opened.problems.append(f"console error on {page.url} (from {source}): {message.text}")

    def page_error(error: Error) -> None:
        opened.problems.append(f"uncaught exception on {page.url}: {error}")

    page.on("console", console)
    page.on("pageerror", page_error)


@pytest_asyncio.fixture(loop_scope="session")
async def open_page(
    browser: Browser, live_stack: LiveStack, request: pytest.FixtureRequest
) -> AsyncIterator[OpenPage]:
    opened: list[_Opened] = []

    async def _open(viewport: str = "phone", who: str = "", *, locale: str = "en-US") -> Page:
        """A page in a fresh context: `viewport` is "phone" or "desktop"; `who` names the
        context in failure artifacts ("c-1002", "r-1")."""
        context = await browser.new_context(
            **context_options(viewport, base_url=live_stack.url, locale=locale)
        )
        context.set_default_timeout(15_000)
        entry = _Opened(f"{len(opened) + 1}-{slug(who or viewport)}", context)
        opened.append(entry)
        context.on("page", lambda page: _watch(entry, page))
        await context.tracing.start(screenshots=True, snapshots=True, sources=False)
        page = await context.new_page()
        return page

    yield _open

    failed = request.node.stash.get(_FAILED_KEY, False)
    folder = failure_dir(request.node.nodeid) if failed else None
    for entry in opened:
        try:
            if folder is not None:
                for number, page in enumerate(entry.context.pages, start=1):
                    await page.screenshot(
                        path=str(folder / f"{entry.label}-page{number}.png"), full_page=True
                    )
                await entry.context.tracing.stop(path=str(folder / f"{entry.label}-trace.zip"))
                if entry.problems:
                    (folder / f"{entry.label}-console.txt").write_text("\n".join(entry.problems) + "\n")
            else:
                await entry.context.tracing.stop()
            for problem in entry.problems:
                print(f"[{entry.label}] {problem}")
        finally:
            await entry.context.close()
    if folder is not None:
        logs = [f"== {p.name} ({p.log_path}) ==\n{p.tail(60)}" for p in live_stack.processes]
        (folder / "stack-logs.txt").write_text("\n\n".join(logs) + "\n")
        print(f"browser artifacts of the failure: {folder}")


@pytest_asyncio.fixture(loop_scope="session")
async def phone_page(open_page: OpenPage) -> Page:
    return await open_page("phone")


@pytest_asyncio.fixture(loop_scope="session")
async def desktop_page(open_page: OpenPage) -> Page:
    return await open_page("desktop")
