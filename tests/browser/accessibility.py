"""axe-core in the browser tests: `assert_accessible(page, "sign-in, phone")` runs the vendored
axe (tests/browser/vendor/axe.min.js, see its README) on the page as it is now and fails on
every violation of impact "critical" or "serious"; lesser ones are printed, not failed."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final

from playwright.async_api import Page

AXE_JS: Final = Path(__file__).parent / "vendor" / "axe.min.js"
FAILING_IMPACTS: Final = frozenset({"critical", "serious"})
TARGETS_SHOWN: Final = 3


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


async def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page (every rule axe runs by default, WCAG and best practice)."""
    await page.wait_for_load_state("load")
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol: a Content-Security-Policy cannot block it.
        await page.evaluate(_axe_source())
    results: dict[str, Any] = await page.evaluate(
        """async () => await window.axe.run(document, {resultTypes: ["violations"]})"""
    )
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def describe(violation: dict[str, Any]) -> str:
    """One violation on one line-group: rule id, impact, help and the first few targets."""
    nodes = violation.get("nodes", [])
    targets = [" ".join(str(part) for part in node.get("target", [])) for node in nodes[:TARGETS_SHOWN]]
    more = f" (+{len(nodes) - TARGETS_SHOWN} more)" if len(nodes) > TARGETS_SHOWN else ""
    summary = nodes[0].get("failureSummary", "").replace("\n", " ") if nodes else ""
    return (
        f"- {violation['id']} [{violation.get('impact')}]: {violation.get('help')}\n"
        f"    at: {', '.join(targets)}{more}\n"
        f"    {summary}\n"
        f"    {violation.get('helpUrl', '')}"
    )


async def assert_accessible(page: Page, context_name: str) -> list[dict[str, Any]]:
    """Fails listing every critical or serious violation on `page`; prints the others.
    `context_name` says which page in which viewport ("appeal page, phone"). Returns all
    violations found, for a test that wants to look closer."""
    violations = await run_axe(page)
    failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
    minor = [v for v in violations if v.get("impact") not in FAILING_IMPACTS]
    if minor:
        print(f"axe on {context_name} ({page.url}): {len(minor)} minor or moderate finding(s):")
        for violation in minor:
            print(describe(violation))
    if failing:
        listed = "\n".join(describe(v) for v in failing)
        raise AssertionError(
            f"axe found {len(failing)} critical or serious violation(s) on {context_name} ({page.url}):\n"
            f"{listed}"
        )
    return violations
