"""Every channel of a notice speaks with one voice: one subject per event and locale (in-app,
email, SMS and webhook rows), and no doubled punctuation whatever reason text the policy
puts into a notice."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.notifications.outbox import CHANNELS, plan_notifications
from core.notifications.rendering import notice_subject, render_email, render_notice, render_sms
from core.policy.loader import load_default_policy
from tests.core.notifications.conftest import MakeAppeal
from tests.core.notifications.samples import BASE, SAMPLES, ZH_NAME, sample_contexts

LOCALES = ("en", "zh-CN")
EVENTS = sorted(SAMPLES)
# Two stops in a row ("。。", "..", ".;", "。；" ...), with or without a space between them.
DOUBLED = re.compile(r"[。．.！!；;，,：:]\s*[。．.；;，,]")
TAG = re.compile(r"<[^>]+>")


def _policy_reasons() -> list[dict[str, str]]:
    texts = load_default_policy().policy.reasons
    return [{"code": code, "en": t.en, "zh-CN": t.zh_cn} for code, t in sorted(texts.items())]


def _rendered_texts(event: str, locale: str, context: dict[str, Any]) -> list[str]:
    """Everything the customer reads for this notice on every channel, as read (unescaped)."""
    notice = render_notice("in_app", event, locale, context)
    email = render_email(event, locale, context)
    texts = [
        notice.subject,
        notice.body,
        email.text,
        TAG.sub(" ", email.html),  # the words, not the markup (CSS has its own semicolons)
        render_sms(event, locale, context),
    ]
    return [html.unescape(text) for text in texts]


def _assert_no_doubled_stops(texts: list[str], where: str) -> None:
    for text in texts:
        found = DOUBLED.search(text)
        assert found is None, (
            f"{where}: {found.group()!r} in ...{text[max(found.start() - 40, 0) : found.end() + 10]}"
        )


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", EVENTS)
def test_one_subject_per_event_on_every_channel(event: str, locale: str) -> None:
    for variant, context in sample_contexts(event, locale):
        subject = notice_subject(event, locale, context)
        assert subject and "\n" not in subject
        assert render_notice("in_app", event, locale, context).subject == subject, variant
        email = render_email(event, locale, context)
        assert email.subject == subject, variant
        assert f"<title>{html.escape(subject)}</title>" in email.html
        assert f">{html.escape(subject)}</h1>" in email.html


@pytest.mark.parametrize("locale", LOCALES)
def test_a_partial_approval_is_called_one_in_every_channel(locale: str) -> None:
    context = dict(sample_contexts("limit_restored", locale))["partial"]
    expected = "Your appeal was approved in part" if locale == "en" else "您的申诉已部分获批"
    assert render_notice("in_app", "limit_restored", locale, context).subject == expected
    assert render_email("limit_restored", locale, context).subject == expected


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", EVENTS)
def test_no_doubled_punctuation_in_any_sample_notice(event: str, locale: str) -> None:
    for variant, context in sample_contexts(event, locale):
        _assert_no_doubled_stops(_rendered_texts(event, locale, context), f"{event}.{locale}/{variant}")


@pytest.mark.parametrize("locale", LOCALES)
def test_no_doubled_punctuation_for_any_policy_reason(locale: str) -> None:
    """Each reason code of the policy alone, and the policy's reasons four at a time, in a
    decline (automated and by a reviewer) and as why a partial approval was not in full."""
    reasons = _policy_reasons()
    assert len(reasons) > 10
    groups = [[r] for r in reasons] + [reasons[i : i + 4] for i in range(0, len(reasons), 4)]
    base = {**BASE, **(ZH_NAME if locale == "zh-CN" else {})}
    for group in groups:
        codes = ",".join(r["code"] for r in group)
        for automated in (True, False):
            context = {
                **base,
                "reasons": group,
                "automated": automated,
                "score": 240 if automated else None,
                "score_min": 120,
                "score_max": 420,
                "human_review_days": 14 if automated else 0,
                "decided_on": "2025-03-12",
            }
            texts = _rendered_texts("declined", locale, context)
            _assert_no_doubled_stops(texts, f"declined {codes} automated={automated}")
            for reason in group:  # the reason is there, whatever the punctuation
                assert reason[locale].rstrip("。.") in texts[1] and reason[locale].rstrip("。.") in texts[2]
        partial = {**base, "new_limit_minor": 1_200_000, "partial": True, "partial_reasons": group}
        _assert_no_doubled_stops(_rendered_texts("limit_restored", locale, partial), f"partial {codes}")


@pytest.mark.parametrize("locale", LOCALES)
def test_outbox_rows_of_one_notice_carry_one_subject(
    engine: Engine, make_appeal: MakeAppeal, locale: str
) -> None:
    """What is stored and sent: the in-app, email, SMS and webhook rows of every event."""
    appeal = make_appeal(locale=locale)
    sequence = 0
    with session_scope(engine) as session:
        for event in EVENTS:
            for variant, context in sample_contexts(event, locale):
                sequence += 1
                rows = plan_notifications(
                    session,
                    appeal=appeal,
                    event=event,
                    sequence=sequence,
                    context={k: v for k, v in context.items() if k not in BASE},
                    channels=CHANNELS,
                    webhook_urls=["https://partner.example/hooks"],
                )
                assert {row.channel for row in rows} == set(CHANNELS), (event, variant)
                subjects = {row.channel: row.subject for row in rows}
                assert len(set(subjects.values())) == 1, (event, variant, subjects)
                webhook = next(row for row in rows if row.channel == "WEBHOOK")
                assert json.loads(webhook.body)["subject"] == webhook.subject
                assert rows[0].locale == locale
