"""The sign-in page in a real browser: accessible on a phone and a desktop, usable with the
keyboard alone, in both languages; a form without the CSRF token is refused; an unknown URL
shows the HTML 404 page."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.artifacts import save_screenshot
from tests.browser.conftest import OpenPage
from tests.browser.live_stack import LiveStack

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

MAX_TABS = 40


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_the_sign_in_page_is_accessible(open_page: OpenPage, viewport: str) -> None:
    page = await open_page(viewport)
    response = await page.goto("/")
    assert response is not None and response.ok
    await expect(page).to_have_url(re.compile(r"/sign-in$"))
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("Li Wei"))).to_be_visible()
    await assert_accessible(page, f"sign-in page, {viewport}")
    await save_screenshot(page, "sign-in")


async def _is_focused(page: Page, name: str) -> bool:
    return bool(
        await page.get_by_role("button", name=re.compile(name)).evaluate("b => b === document.activeElement")
    )


async def test_signing_in_with_the_keyboard_alone(phone_page: Page) -> None:
    page = phone_page
    await page.goto("/sign-in")
    # The first Tab reaches the skip link, which is shown when focused.
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    for _ in range(MAX_TABS):
        if await _is_focused(page, "Li Wei"):
            break
        await page.keyboard.press("Tab")
    else:
        raise AssertionError(f"{MAX_TABS} presses of Tab never reached Li Wei's sign-in button")
    choice = page.get_by_role("button", name=re.compile("Li Wei"))
    # The focused choice is visibly marked (the focus ring of base.css).
    outline = await choice.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline not in ("", "none"), f"the focused choice shows no focus ring (outline-style {outline})"
    await page.keyboard.press("Enter")
    # Signed in: a customer lands on the portal, and the header says who is signed in.
    await expect(page).to_have_url(re.compile(r"/app$"))
    await expect(page.get_by_role("banner").get_by_text("c-1002")).to_be_visible()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


async def test_switching_the_language(desktop_page: Page) -> None:
    page = desktop_page
    await page.goto("/sign-in")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await page.get_by_role("button", name="中文").click()
    await expect(page).to_have_url(re.compile(r"/sign-in$"))
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    await expect(page.get_by_role("heading", name="登录", level=1)).to_be_visible()
    await expect(page.get_by_role("heading", name="以客户身份")).to_be_visible()
    await assert_accessible(page, "sign-in page in Chinese, desktop")
    await save_screenshot(page, "sign-in-zh-CN")
    # The choice is remembered, and switching back works the same way.
    await page.reload()
    await expect(page.get_by_role("heading", name="登录", level=1)).to_be_visible()
    await page.get_by_role("button", name="English").click()
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", "en")


async def test_a_post_without_the_csrf_token_is_refused(desktop_page: Page, live_stack: LiveStack) -> None:
    page = desktop_page
    await page.goto("/sign-in")  # the browser holds its CSRF cookie now
    # A request with the browser's cookies but without the token.
    answer = await page.request.post(
        "/sign-in/dev", form={"subject": "sup-1", "role": "supervisor"}, max_redirects=0
    )
    assert answer.status == 403, await answer.text()
    assert "did not come from this site" in await answer.text()
    # A form another page could plant, posted by the browser itself: refused with the error page.
    await page.evaluate(
        """() => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = "/sign-in/dev";
            for (const [name, value] of [["subject", "sup-1"], ["role", "supervisor"]]) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }"""
    )
    await expect(page.get_by_role("heading", name="You cannot do this", level=1)).to_be_visible()
    await expect(page.get_by_text("did not come from this site")).to_be_visible()
    assert "appeals_session" not in {c["name"] for c in await page.context.cookies()}


async def test_an_unknown_url_shows_the_404_page(phone_page: Page) -> None:
    page = phone_page
    response = await page.goto("/no-such-page")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    await expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
    await expect(page.get_by_role("link", name="Back to the start")).to_be_visible()
    await assert_accessible(page, "404 page, phone")
    await save_screenshot(page, "not-found")
