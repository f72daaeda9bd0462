"""Every notice template renders in its locale with realistic data and no undefined variable.

Parametrized over the template files on disk: a template added for an event that has no
sample context in samples.py fails here."""

from __future__ import annotations

import html
import re
from datetime import date
from pathlib import Path

import pytest

from core.notifications.channels.sms import sms_segments
from core.notifications.rendering import (
    DEFAULT_DECLINE_COOLDOWN_DAYS,
    TEMPLATES_DIR,
    complete_context,
    render_email,
    render_notice,
    render_sms,
)
from tests.core.notifications.samples import SAMPLES, sample_contexts

NOTIFICATIONS = TEMPLATES_DIR / "notifications"
_NAME = re.compile(r"^(?P<event>[a-z_]+)\.(?P<locale>en|zh-CN)(?P<kind>\.html|\.txt)?\.j2$")


def _templates(channel: str) -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((NOTIFICATIONS / channel).glob("*.j2")):
        if path.name.startswith("_"):  # layouts and footers
            continue
        match = _NAME.match(path.name)
        assert match, f"unexpected template name {path}"
        found.append((match["event"], match["locale"], (match["kind"] or "").lstrip(".")))
    return found


def _events(channel: str) -> set[str]:
    return {event for event, _, _ in _templates(channel)}


def _ids(params: list[tuple[str, str, str]]) -> list[str]:
    return [f"{event}.{locale}{'.' + kind if kind else ''}" for event, locale, kind in params]


EMAIL_TEMPLATES = _templates("email")
SMS_TEMPLATES = _templates("sms")
IN_APP_TEMPLATES = _templates("in_app")


def test_every_customer_event_has_every_channel_in_both_locales() -> None:
    in_app = _events("in_app")
    assert in_app, "no in-app templates found"
    for event in in_app:
        for locale in ("en", "zh-CN"):
            for name in (
                f"in_app/{event}.{locale}.j2",
                f"email/{event}.{locale}.html.j2",
                f"email/{event}.{locale}.txt.j2",
                f"sms/{event}.{locale}.j2",
            ):
                assert (NOTIFICATIONS / name).is_file(), f"missing template {name}"
    assert _events("email") == in_app == _events("sms")


def _assert_clean(text: str) -> None:
    assert text.strip()
    assert "None" not in text, text
    assert "{{" not in text and "{%" not in text
    assert "Undefined" not in text


@pytest.mark.parametrize(("event", "locale", "kind"), EMAIL_TEMPLATES, ids=_ids(EMAIL_TEMPLATES))
def test_email_renders(event: str, locale: str, kind: str) -> None:
    for variant, context in sample_contexts(event, locale):
        email = render_email(event, locale, context)
        _assert_clean(email.subject)
        assert "\n" not in email.subject and len(email.subject) < 120
        if kind == "txt":
            _assert_clean(email.text)
            assert context["appeal_id"] in email.text, variant
            assert context["customer_name"] in email.text
            assert "&amp;" not in email.text and "&lt;" not in email.text  # plain text: not escaped
        else:
            _assert_clean(email.html)
            assert email.html.startswith("<!DOCTYPE html>")
            assert f'<html lang="{locale}">' in email.html
            assert f"<title>{html.escape(email.subject, quote=False)}</title>" in email.html
            assert context["appeal_id"] in email.html
        if locale == "zh-CN":
            assert re.search(r"[\u4e00-\u9fff]", email.subject + email.text)
        else:
            assert not re.search(r"[\u4e00-\u9fff]", email.subject + email.text + email.html), variant


@pytest.mark.parametrize(("event", "locale", "kind"), SMS_TEMPLATES, ids=_ids(SMS_TEMPLATES))
def test_sms_renders_short_and_points_to_the_app(event: str, locale: str, kind: str) -> None:
    for variant, context in sample_contexts(event, locale):
        text = render_sms(event, locale, context)
        _assert_clean(text)
        assert "\n" not in text
        # One segment: 70 UCS-2 characters for Chinese, 160 GSM-7 characters for English.
        assert sms_segments(text) == 1, (variant, len(text), text)
        if locale == "zh-CN":
            assert len(text) <= 70 and "App" in text, text
        else:
            assert "app" in text


@pytest.mark.parametrize(("event", "locale", "kind"), IN_APP_TEMPLATES, ids=_ids(IN_APP_TEMPLATES))
def test_in_app_renders(event: str, locale: str, kind: str) -> None:
    for _, context in sample_contexts(event, locale):
        notice = render_notice("in_app", event, locale, context)
        _assert_clean(notice.subject)
        _assert_clean(notice.body)


def test_samples_cover_only_existing_events() -> None:
    assert set(SAMPLES) == _events("in_app")


def test_a_missing_required_variable_fails_loudly() -> None:
    context = dict(sample_contexts("limit_restored", "en")[0][1])
    del context["new_limit_minor"]
    with pytest.raises(Exception, match="new_limit_minor"):
        render_email("limit_restored", "en", context)
    with pytest.raises(Exception, match="new_limit_minor"):
        render_sms("limit_restored", "en", context)


def test_html_escapes_and_text_does_not() -> None:
    context = dict(sample_contexts("information_requested", "en")[0][1])
    context["customer_name"] = "<script>alert(1)</script> O'Brien & Co"
    email = render_email("information_requested", "en", context)
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "<script>alert(1)</script> O'Brien & Co" in email.text
    assert "January &amp; February &lt;2025&gt;" in email.html
    assert "January & February <2025>" in email.text


def _decline(locale: str, variant: str) -> dict[str, object]:
    return dict(dict(sample_contexts("declined", locale))[variant])


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_decline_notice_is_a_complete_adverse_action_notice(locale: str) -> None:
    context = _decline(locale, "automated_with_range")
    email = render_email("declined", locale, context)
    reasons = context["reasons"]
    assert isinstance(reasons, list)
    for body in (email.text, email.html):
        # At most four principal reasons, most important first.
        for reason in reasons[:4]:
            assert html.escape(reason[locale], quote=False) in body
        assert reasons[4][locale] not in body
        if locale == "en":
            assert "262" in body and "from 120 to 420" in body
            assert "12 March 2025" in body  # decision and score date
            assert "repayment history" in body  # data sources
            assert "explain the reasons" in body
            assert "review this decision until" in body and "26 March 2025" in body  # 14 days
            assert "new appeal from" in body and "11 April 2025" in body  # 30 days
        else:
            assert "262" in body and "评分范围 120 至 420" in body
            assert "2025年3月12日" in body
            assert "还款记录" in body
            assert "解释本决定的原因" in body
            assert "申请人工复核" in body and "2025年3月26日" in body
            assert "2025年4月11日" in body


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_reviewer_decline_has_no_score_and_its_own_dates(locale: str) -> None:
    email = render_email("declined", locale, _decline(locale, "reviewer"))
    assert ("No automated score" if locale == "en" else "未使用自动评分") in email.text
    assert ("1 May 2025" if locale == "en" else "2025年5月1日") in email.text
    assert ("review team" if locale == "en" else "审核人员的人工评估") in email.text


def test_decline_defaults_are_explicit_and_documented() -> None:
    context = complete_context(
        "declined",
        {"reasons": [], "automated": True, "score": 300, "human_review_days": 14},
        today=date(2025, 1, 31),
    )
    assert context["score_min"] is None and context["score_max"] is None
    assert context["decided_on"] == date(2025, 1, 31) == context["scored_on"]
    assert context["cooldown_days"] == DEFAULT_DECLINE_COOLDOWN_DAYS == 30
    assert context["reapply_on"] == date(2025, 3, 2)
    assert context["human_review_until"] == date(2025, 2, 14)
    assert context["data_sources"]
    reviewer = complete_context(
        "declined",
        {"reasons": [], "automated": False, "score": None, "human_review_days": 0, "cooldown_days": 7},
        today=date(2025, 1, 31),
    )
    assert reviewer["human_review_until"] is None and reviewer["reapply_on"] == date(2025, 2, 7)


def test_template_files_are_utf8_without_tabs() -> None:
    for path in Path(NOTIFICATIONS).rglob("*.j2"):
        text = path.read_text(encoding="utf-8")
        assert "\t" not in text, path
