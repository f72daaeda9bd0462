"""Regenerates the README's screenshots of the web pages from the real local stack.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

It starts the whole local stack as `appeals dev` does (launcher/dev.py: Temporal dev server,
S3 server, SMTP sink, worker and API, demo ledger), on free ports and in a temporary data
folder, so it runs beside a running `appeals dev`. Then, in Debian's Chromium
(/usr/bin/chromium, driven by Playwright; tests/browser/chromium.py), it does the README's
walkthrough by browser: Li Wei (c-1002) appeals on a phone and uploads his bank statement and
credit report; reviewer r-1 claims the case on a desktop and approves ¥7,000; Li Wei's page
updates itself with the decision. It saves the top of two pages:

- `reviewer-case.png`: the case page as r-1 sees it after claiming it (desktop, 1440 wide),
- `customer-appeal.png`: Li Wei's appeal page with the decision (phone, 390 wide at 2x).

Everything it started is stopped at the end. Needs Chromium (`sudo apt-get install chromium`)
and, for the Chinese text on the pages, a CJK font (`fonts-noto-cjk`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/browser is not an installed package

from playwright.async_api import FloatRect, Page, async_playwright  # noqa: E402

from launcher.dev import DevStack  # noqa: E402
from tests.browser import flows  # noqa: E402
from tests.browser.chromium import INSTALL_HINT, context_options, find_chromium, launch_chromium  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "screenshots"
# The top of each page, in CSS pixels: what fits a README, not the whole (long) page.
CUSTOMER_HEIGHT = 1500
REVIEWER_HEIGHT = 2100


def start_stack(data_dir: Path) -> DevStack:
    stack = DevStack.on_free_ports(data_dir, persistent=False)
    stack.start()
    return stack


async def shoot(page: Page, path: Path, height: int) -> None:
    """The top `height` CSS pixels of the page (the whole page if shorter), at the viewport's width."""
    size = page.viewport_size or {"width": 1440, "height": 900}
    full = int(await page.evaluate("() => document.documentElement.scrollHeight"))
    clip: FloatRect = {"x": 0, "y": 0, "width": size["width"], "height": min(full, height)}
    await page.screenshot(path=str(path), full_page=True, clip=clip, animations="disabled")


async def take_screenshots(stack: DevStack, chromium: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    customer_png, reviewer_png = out / "customer-appeal.png", out / "reviewer-case.png"
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright, chromium)
        try:
            customer_context = await browser.new_context(**context_options("phone", base_url=stack.api_url))
            reviewer_context = await browser.new_context(**context_options("desktop", base_url=stack.api_url))
            customer = await customer_context.new_page()
            reviewer = await reviewer_context.new_page()

            appeal_id = await flows.li_wei_appeals_and_uploads(customer)
            await flows.expect_waiting_for_review(customer)

            await flows.sign_in(reviewer, "r-1", "reviewer")
            await flows.claim_next(reviewer, appeal_id)
            await shoot(reviewer, reviewer_png, REVIEWER_HEIGHT)

            await flows.approve(reviewer, 7_000)
            # Li Wei's page has updated itself: the decision, the timeline, the notice.
            await flows.expect_outcome(customer, 7_000)
            await shoot(customer, customer_png, CUSTOMER_HEIGHT)
        finally:
            await browser.close()
    return [customer_png, reviewer_png]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Folder for the PNG files.")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="appeals-screenshots-") as data_dir:
        print(f"Starting the local stack in {data_dir} ...")
        stack = start_stack(Path(data_dir))
        try:
            written = asyncio.run(take_screenshots(stack, chromium, args.out))
        finally:
            stack.stop()
    for path in written:
        print(f"wrote {path}")
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
