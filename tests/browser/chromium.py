"""Debian's Chromium driven by Playwright: where it is, how it is launched, and the two
viewports the pages are made for (a phone for customers, a desktop for staff).

Playwright's own browser download (`npx playwright install`) cannot run here, and is never
needed: the tests launch the system Chromium by path. Shared by tests/browser/conftest.py and
scripts/screenshots.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, Playwright

DEBIAN_CHROMIUM: Final = Path("/usr/bin/chromium")
INSTALL_HINT: Final = (
    "Chromium is not installed: the browser tests drive Debian's Chromium at /usr/bin/chromium. "
    "Install it with `sudo apt-get install chromium` (Debian/Ubuntu; .ci/run does this in CI)."
)


def find_chromium() -> Path | None:
    """/usr/bin/chromium, else a `chromium` on PATH; None when neither exists."""
    if DEBIAN_CHROMIUM.is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


def require_chromium(*, in_ci: bool) -> Path:
    """The Chromium to drive. Without one the browser tests skip, saying how to install it;
    in CI (CI=true) they fail, so a missing browser cannot pass unnoticed."""
    found = find_chromium()
    if found is None:
        if in_ci:
            pytest.fail(f"{INSTALL_HINT} With CI=true the browser tests must run, not skip.")
        pytest.skip(INSTALL_HINT)
    return found


def chromium_args() -> list[str]:
    """The flags this kind of machine needs: no GPU, no network of Chromium's own (no QUIC,
    background fetches, component updates or sync), no first-run pages; no sandbox when
    running as root (a container or CI), where Chromium refuses to start with it."""
    args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


async def launch_chromium(playwright: Playwright, executable: Path) -> Browser:
    """Headless Chromium. Every `browser.new_context()` is a fresh, empty profile (its own
    cookies and storage), so each test starts signed out."""
    return await playwright.chromium.launch(
        executable_path=str(executable), headless=True, args=chromium_args()
    )


# A phone held upright (the size of a recent mid-range phone) for the customer portal.
PHONE: Final[dict[str, Any]] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36"
    ),
}
# A staff desktop for the reviewer console and the supervisor dashboard.
DESKTOP: Final[dict[str, Any]] = {
    "viewport": {"width": 1440, "height": 900},
    "device_scale_factor": 1,
    "is_mobile": False,
    "has_touch": False,
}
VIEWPORTS: Final[dict[str, dict[str, Any]]] = {"phone": PHONE, "desktop": DESKTOP}


def context_options(viewport: str, *, base_url: str, locale: str = "en-US") -> dict[str, Any]:
    """`browser.new_context(**...)` for a viewport preset: the page's base URL, the browser's
    language (Accept-Language) and the zone the pages show times in."""
    return {
        **VIEWPORTS[viewport],
        "base_url": base_url,
        "locale": locale,
        "timezone_id": "Asia/Shanghai",
        "accept_downloads": True,
    }
