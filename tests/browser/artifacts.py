"""What the browser tests leave behind for people and CI to look at, under `test-artifacts/` at
the repository root (gitignored; APPEALS_TEST_ARTIFACTS moves it):

- `screenshots/{page}--{viewport}.png`: a full-page screenshot of each main page, taken by the
  tests (`save_screenshot(page, "appeal-page")` gives `appeal-page--phone-390x844.png`);
- `failures/{test}/`: for a failed test, a Playwright trace per browser context (open it with
  `.venv/bin/playwright show-trace FILE`) and a screenshot of each page it had open.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from playwright.async_api import Page

ROOT: Final = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    configured = os.environ.get("APPEALS_TEST_ARTIFACTS", "").strip()
    return Path(configured) if configured else ROOT / "test-artifacts"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "page"


def viewport_label(page: Page) -> str:
    size = page.viewport_size
    if size is None:
        return "no-viewport"
    kind = "phone" if size["width"] < 768 else "desktop"
    return f"{kind}-{size['width']}x{size['height']}"


async def save_screenshot(page: Page, page_name: str) -> Path:
    """A full-page screenshot of `page` as it is now, named by page and viewport."""
    folder = artifacts_dir() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug(page_name)}--{viewport_label(page)}.png"
    await page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def failure_dir(test_id: str) -> Path:
    folder = artifacts_dir() / "failures" / slug(test_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
