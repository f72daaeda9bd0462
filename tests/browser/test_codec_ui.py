"""The Temporal Web UI of `appeals dev` decodes what Temporal stores through the codec server
(launcher/codec_server.py), for staff only, in Chromium: the local stack with its Web UI on free
ports (launcher/dev.py `DevStack`, as `appeals dev` starts it), an appeal submitted through the
API, and its workflow's page opened as an operator does (README: sign in to the web pages as
staff, open the UI on the same host, use the browser's codec setting with credentials).

The session cookie is the one the web pages' sign-in sets; the codec setting is what the UI's
Codec Server dialog stores in the browser (its endpoint, "Include cross-origin credentials",
"use my browser setting")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from core.auth import Role, mint_token
from core.db import make_engine
from core.settings import Settings
from launcher.dev import DevStack
from launcher.stack import free_port
from tests.browser.flows import patient_ms
from tests.factories import make_customer

pytestmark = pytest.mark.browser
WAIT = patient_ms(30_000)  # the UI loads, fetches the history, then asks the codec server

SET_CODEC = """(endpoint) => {
    localStorage.setItem('endpoint', JSON.stringify(endpoint));
    localStorage.setItem('includeCredentials', 'true');
    localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
}"""


@dataclass(frozen=True)
class Submitted:
    stack: DevStack
    workflow_url: str
    account_id: str
    customer_id: str


@pytest.fixture(scope="module")
def submitted(chromium_executable: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Submitted]:
    ports = {name: free_port() for name in ("temporal", "ui", "s3", "api", "smtp", "codec")}
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("codec-ui"),
        api_port=ports["api"],
        temporal_address=f"127.0.0.1:{ports['temporal']}",
        temporal_ui_port=ports["ui"],
        s3_endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        s3_port=ports["s3"],
        smtp_port=ports["smtp"],
        # No metrics endpoints: the default ports are `appeals dev`'s, and another test's.
        worker_metrics_port=0,
        business_metrics_port=0,
    )
    stack = DevStack(
        settings,
        temporal_port=ports["temporal"],
        ui_port=ports["ui"],
        s3_port=ports["s3"],
        api_port=ports["api"],
        codec_port=ports["codec"],
        persistent=False,
        seed=False,
    )
    stack.start()
    try:
        engine = make_engine(stack.settings.effective_database_url)
        customer = make_customer(engine)
        engine.dispose()
        token = mint_token(stack.settings, role=Role.CUSTOMER, subject=customer.customer_id)
        answer = httpx.post(
            f"{stack.api_url}/appeals",
            headers={"Authorization": f"Bearer {token}"},
            json={"account_id": customer.account_id, "requested_limit_minor": 600_000},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        url = f"http://localhost:{stack.ui_port}/namespaces/default/workflows/appeal-{answer.json()['id']}"
        yield Submitted(stack, url, customer.account_id, customer.customer_id)
    finally:
        stack.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def ui_page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def open_workflow(page: Page, submitted: Submitted, signed_in_as: tuple[Role, str] | None) -> None:
    if signed_in_as is not None:
        role, subject = signed_in_as
        cookie = mint_token(submitted.stack.settings, role=role, subject=subject)
        await page.context.add_cookies(
            [{"name": "appeals_session", "value": cookie, "domain": "localhost", "path": "/"}]
        )
    await page.goto(submitted.workflow_url)
    await page.evaluate(SET_CODEC, submitted.stack.codec_url)
    await page.goto(submitted.workflow_url)


async def test_staff_read_the_input_in_plain_text(ui_page: Page, submitted: Submitted) -> None:
    await open_workflow(ui_page, submitted, (Role.REVIEWER, "r-1"))
    await expect(ui_page.get_by_text(f'"{submitted.account_id}"').first).to_be_visible(timeout=WAIT)
    await expect(ui_page.get_by_text("Codec Server could not connect").filter(visible=True)).to_have_count(0)


@pytest.mark.parametrize("who", ["customer", "nobody"])
async def test_others_see_only_ciphertext(ui_page: Page, submitted: Submitted, who: str) -> None:
    signed_in = (Role.CUSTOMER, submitted.customer_id) if who == "customer" else None
    await open_workflow(ui_page, submitted, signed_in)
    # The UI tried the codec server, was refused, and says so; the input stays ciphertext.
    await expect(ui_page.get_by_text("Codec Server could not connect").filter(visible=True)).to_be_visible(
        timeout=WAIT
    )
    await expect(ui_page.get_by_text("Input", exact=True).filter(visible=True).first).to_be_visible(
        timeout=WAIT
    )
    assert submitted.account_id not in await ui_page.inner_text("body")
