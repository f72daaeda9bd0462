"""The supervisor dashboard page (/dashboard): who may see it, the numbers in its tables (the
hand-computed data of tests/dashboard_data.py, on the viewer's calendar), both languages, a
fixed number of SQL queries, and reassigning a task from it (the real use case and workflow)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from core.auth import Role
from core.clock import SYSTEM_CLOCK, FixedClock
from core.db import session_scope
from core.db.case_tables import ReviewTask, TaskStatus
from core.settings import Settings
from tests.api.conftest import Api, offline_app
from tests.api.pages.helpers import QueryCounter, csrf_from, sign_in
from tests.api.review_helpers import appeal_in_review
from tests.dashboard_data import NOW, Scenario, build_scenario
from tests.eventually import eventually
from tests.staff_directory import add_staff

pytestmark = pytest.mark.asyncio(loop_scope="session")


class _Tables(HTMLParser):
    """Each <table id=...>'s rows as lists of cell texts (th and td alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def body(table: list[list[str]], skip: int = 1) -> list[list[str]]:
    return table[skip:]


@dataclass
class Page:
    http: httpx.AsyncClient
    engine: Engine
    app: FastAPI

    async def sign_in(self, subject: str, role: str) -> None:
        # The session's token is dated by the app's clock and checked against the machine's:
        # sign in on the machine's clock, then look at the data as of NOW.
        self.app.state.clock = SYSTEM_CLOCK
        await sign_in(self.http, subject, role)
        self.app.state.clock = FixedClock(NOW)


@pytest_asyncio.fixture(loop_scope="session")
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async with offline_app(Settings(data_dir=tmp_path), tmp_path) as (http, engine, app):
        yield Page(http, engine, app)


@pytest.fixture
def scenario(page: Page) -> Scenario:
    return build_scenario(page.engine)


async def test_a_supervisor_sees_every_number_in_the_tables(page: Page, scenario: Scenario) -> None:
    await page.sign_in("sup-1", "supervisor")
    answer = await page.http.get("/dashboard")
    assert answer.status_code == 200, answer.text
    html = answer.text
    # Shanghai by default: 12:00 UTC is 20:00 there, and the period is 14 days up to today there.
    assert "As of 10 Mar 2025, 20:00 (Asia/Shanghai)." in html
    assert "over the last 14 days: 25 Feb 2025 – 10 Mar 2025." in html
    found = tables(html)
    assert body(found["queue-table"]) == [
        ["First review", "3", "1", "4", "1", "1", "0"],
        ["Second review", "1", "0", "1", "0", "1", "0"],
        ["Escalated", "1", "1", "2", "0", "2", "2"],
        ["All queues", "5", "2", "7", "1", "4", "2"],
    ]
    assert body(found["sla-table"]) == [
        ["On time", "2"],
        ["Past the warning point", "1"],
        ["Past due", "4"],
        ["of which escalated", "2"],
    ]
    assert body(found["ageing-table"]) == [
        ["under 4h", "1"],
        ["4h–8h", "1"],
        ["8h–1d", "1"],
        ["1d–3d", "2"],
        ["over 3d", "2"],
    ]
    # Over 14 days A1 (7 March in Shanghai) counts too: LOW has A1, A2 approved and A6 declined.
    assert body(found["tier-table"]) == [
        ["Low", "3", "2", "0", "1", "67%"],
        ["Medium", "2", "1", "1", "0", "100%"],
        ["High", "2", "0", "1", "1", "50%"],
        ["Not assessed", "1", "1", "0", "0", "100%"],
    ]
    # automatic: 2h, 4h, 5h59, 6h -> 4h59m30s; manual: 12h, 24h, 31h01, 72h -> 27h30m30s.
    assert body(found["time-table"]) == [["Automatic", "4", "4 h 59 min"], ["Manual", "4", "27 h 30 min"]]
    days = body(found["per-day-table"], skip=2)
    assert len(days) == 14 and days[0][0] == "25 Feb 2025"
    assert all(row[1:] == ["0"] * 7 for row in days[:10])
    assert days[10:] == [
        ["7 Mar 2025", "1", "0", "0", "0", "0", "0", "1"],
        ["8 Mar 2025", "1", "1", "1", "0", "0", "0", "3"],
        ["9 Mar 2025", "0", "0", "0", "0", "1", "0", "1"],
        ["10 Mar 2025", "0", "0", "0", "2", "0", "1", "3"],
    ]
    t = scenario.tasks
    urgent = body(found["urgent-table"])
    assert [row[0] for row in urgent] == [
        f"Task {t[n][:8]}" for n in ("T9", "T4", "T6", "T5", "T3", "T2", "T1")
    ]
    assert urgent[1][1:9] == [
        "Escalated",
        "Claimed",
        "r-2",
        "Reviewer",
        "Medium",
        "10 Mar 2025, 14:00",  # due 06:00 UTC
        "Past due · escalated",
        "1 d 6 h",
    ]
    assert [row[7] for row in urgent[3:]] == ["Past due", "Past the warning point", "On time", "On time"]


async def test_each_chart_is_an_image_with_a_title_and_a_description(page: Page, scenario: Scenario) -> None:
    await page.sign_in("sup-1", "supervisor")
    html = (await page.http.get("/dashboard")).text
    charts = re.findall(r'<svg class="chart[^"]*" id="([^"]+)" role="img" aria-labelledby="([^"]+)"', html)
    assert [c[0] for c in charts] == [
        "chart-queues",
        "chart-sla",
        "chart-ageing",
        "chart-tiers",
        "chart-time-to-decision",
        "chart-automatic",
        "chart-manual",
    ]
    for chart_id, labelled_by in charts:
        assert labelled_by == f"{chart_id}-title {chart_id}-desc"
        assert re.search(rf'<title id="{chart_id}-title">[^<]+</title>', html)
        assert re.search(rf'<desc id="{chart_id}-desc">[^<]+</desc>', html)
    assert '<desc id="chart-manual-desc">9 Mar: 1, 10 Mar: 3.' in html
    headings = re.findall(r"<h([1-6])[ >]", html)
    assert headings[0] == "1" and set(headings[1:]) == {"2"}


async def test_in_chinese(page: Page, scenario: Scenario) -> None:
    await page.sign_in("sup-1", "supervisor")
    html = (await page.http.get("/dashboard", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text
    assert '<html lang="zh-CN">' in html and "<h1>主管看板</h1>" in html
    assert "数据截至 2025年3月10日 20:00 (Asia/Shanghai)" in html
    found = tables(html)
    assert found["queue-table"][0] == ["队列", "待认领", "已认领", "合计", "已过预警点", "已超时", "已升级"]
    assert body(found["queue-table"])[2] == ["已升级", "1", "1", "2", "0", "2", "2"]
    assert body(found["tier-table"])[3] == ["未评估", "1", "1", "0", "0", "100%"]
    assert body(found["time-table"]) == [["自动", "4", "4小时59分钟"], ["人工", "4", "27小时30分钟"]]
    assert body(found["per-day-table"], skip=2)[-1][0] == "2025年3月10日"
    assert body(found["urgent-table"])[1][7] == "已超时 · 已升级"
    assert ">改派给</label>" in html
    for english in ("Open tasks", "Reassign to", "Approved in full", "Past due", "Show as a table"):
        assert english not in html, english


async def test_days_are_the_viewers_days(page: Page, scenario: Scenario) -> None:
    await page.sign_in("sup-1", "supervisor")
    page.http.cookies.set("tz", "UTC")
    html = (await page.http.get("/dashboard")).text
    assert "As of 10 Mar 2025, 12:00 (UTC)." in html
    days = body(tables(html)["per-day-table"], skip=2)
    # In UTC A1 and A2 are both on 7 March, A4's review and A8 on 9 March, A7 on 10 March.
    assert days[10:] == [
        ["7 Mar 2025", "2", "0", "0", "0", "0", "0", "2"],
        ["8 Mar 2025", "0", "1", "1", "0", "0", "0", "2"],
        ["9 Mar 2025", "0", "0", "0", "2", "1", "0", "3"],
        ["10 Mar 2025", "0", "0", "0", "0", "0", "2", "2"],
    ]


async def test_the_period_is_14_or_30_days(page: Page, scenario: Scenario) -> None:
    await page.sign_in("a-1", "admin")  # admins see the dashboard too
    month = (await page.http.get("/dashboard", params={"days": "30"})).text
    assert len(body(tables(month)["per-day-table"], skip=2)) == 30
    assert '<a href="/dashboard?days=30" aria-current="page">' in month
    other = (await page.http.get("/dashboard", params={"days": "7"})).text
    assert len(body(tables(other)["per-day-table"], skip=2)) == 14


async def test_reviewers_get_a_403_page_and_strangers_the_sign_in(page: Page) -> None:
    stranger = await page.http.get("/dashboard")
    assert stranger.status_code == 303 and stranger.headers["location"] == "/sign-in?next=%2Fdashboard"
    await page.sign_in("r-1", "reviewer")
    refused = await page.http.get("/dashboard")
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert "You cannot do this" in refused.text and "This page is for supervisors." in refused.text
    token = csrf_from(refused.text)
    posted = await page.http.post(
        "/dashboard/tasks/x/reassign",
        data={"to": "r-2", "role": "reviewer", "version": "1", "csrf_token": token},
    )
    assert posted.status_code == 403


async def test_a_reassign_form_without_the_csrf_token_is_refused(page: Page, scenario: Scenario) -> None:
    await page.sign_in("sup-1", "supervisor")
    refused = await page.http.post(
        f"/dashboard/tasks/{scenario.tasks['T1']}/reassign",
        data={"to": "r-2", "role": "reviewer", "version": "1"},
    )
    assert refused.status_code == 403 and "did not come from this site" in refused.text
    with session_scope(page.engine, read_only=True) as session:
        task = session.get(ReviewTask, scenario.tasks["T1"])
        assert task is not None and task.assignee is None


def _data_queries(counter: QueryCounter) -> int:
    return sum(1 for s in counter.statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT")))


async def test_the_page_makes_five_queries_whatever_the_data(page: Page) -> None:
    await page.sign_in("sup-1", "supervisor")
    with QueryCounter(page.engine) as empty:
        assert (await page.http.get("/dashboard")).status_code == 200
    for _ in range(3):
        build_scenario(page.engine)
    with QueryCounter(page.engine) as full:
        html = (await page.http.get("/dashboard", params={"days": "30"})).text
    assert len(body(tables(html)["urgent-table"])) == 21
    # The board's four and the portfolio review's last runs.
    assert _data_queries(empty) == _data_queries(full) == 5


# -- reassigning: the use case signals the appeal's workflow --------------------------------


def _version_of(html: str, task_id: str) -> str:
    form = re.search(
        rf'action="/dashboard/tasks/{task_id}/reassign".*?name="version" value="(\d+)"', html, flags=re.S
    )
    assert form, f"no reassign form for task {task_id}"
    return form.group(1)


async def test_reassigning_from_the_dashboard_and_a_stale_page(api: Api) -> None:
    appeal_id, customer, task_id, customer_id = await appeal_in_review(api, seed=71)
    await sign_in(api.http, "sup-1", "supervisor")
    page = await api.http.get("/dashboard")
    assert page.status_code == 200
    token, version = csrf_from(page.text), _version_of(page.text, task_id)
    # The form names the person only: their role is the staff directory's.
    assert 'name="role"' not in page.text
    form = {"to": "r-2", "version": version, "days": "14", "csrf_token": token}
    unknown = await api.http.post(f"/dashboard/tasks/{task_id}/reassign", data=form)
    assert unknown.status_code == 422 and "That person is not in the staff directory" in unknown.text
    add_staff(api.engine, "r-2", Role.REVIEWER)
    add_staff(api.engine, customer_id, Role.REVIEWER)  # a member of staff who is the customer

    done = await api.http.post(f"/dashboard/tasks/{task_id}/reassign", data=form)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/dashboard?days=14&reassigned={task_id}#task-{task_id}"
    after = await api.http.get(done.headers["location"].split("#")[0])
    assert f"Task {task_id[:8]} is now assigned to r-2." in after.text
    assert _version_of(after.text, task_id) == str(int(version) + 1)

    async def appeal_status() -> str:
        answer = await api.http.get(f"/appeals/{appeal_id}", headers=customer)
        return str(answer.json()["status"])

    # The workflow followed the reassignment: the appeal is in r-2's review.
    await eventually(appeal_status, lambda s: s == "IN_REVIEW", what=f"appeal {appeal_id} IN_REVIEW")

    # The same form again (the page is stale now): refused, nothing changes, the page says why.
    stale = await api.http.post(f"/dashboard/tasks/{task_id}/reassign", data={**form, "to": "r-3"})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("text/html")
    assert "Someone changed this task after this page was loaded, so it was not reassigned." in stale.text
    assert _version_of(stale.text, task_id) == str(int(version) + 1)  # the page is up to date

    # The use case decides who may take a task: not the appeal's own customer.
    fresh = {**form, "version": str(int(version) + 1), "to": customer_id}
    mine = await api.http.post(f"/dashboard/tasks/{task_id}/reassign", data=fresh)
    assert mine.status_code == 409 and "That person cannot take this task" in mine.text
    assert "reviewers may not decide their own appeal" in mine.text

    with session_scope(api.engine, read_only=True) as session:
        task = session.get(ReviewTask, task_id)
        assert task is not None
        assert (task.status, task.assignee, task.version) == (TaskStatus.CLAIMED, "r-2", int(version) + 1)
    listed = await api.http.get(
        "/review-tasks", params={"assignee": "r-2"}, headers=api.auth(Role.SUPERVISOR, "sup-1")
    )
    assert task_id in [t["id"] for t in listed.json()["items"]]
