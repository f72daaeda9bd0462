"""Durations an appeal runs with: the policy's, unless settings override them (tests, demos)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.policy.loader import load_default_policy
from core.settings import Settings


@dataclass(frozen=True)
class CollectionTiming:
    deadline: timedelta
    reminders: tuple[timedelta, ...]


def human_review_window(settings: Settings) -> timedelta:
    return settings.human_review_window or load_default_policy().policy.human_review_window


def collection_timing(settings: Settings) -> CollectionTiming:
    policy = load_default_policy().policy
    deadline = settings.document_deadline or policy.collection_deadline
    if settings.document_reminders is not None:
        reminders = tuple(settings.document_reminders)
    elif settings.document_deadline is not None:
        # A shortened deadline scales the policy's reminder points with it.
        scale = settings.document_deadline / policy.collection_deadline
        reminders = tuple(offset * scale for offset in policy.reminder_offsets)
    else:
        reminders = policy.reminder_offsets
    return CollectionTiming(deadline, tuple(r for r in reminders if timedelta(0) < r < deadline))


def document_deadline(collecting_since: datetime, settings: Settings) -> datetime:
    """When documents asked for at `collecting_since` (the appeal's move to AWAITING_DOCUMENTS)
    are due: the workflow's collection timer runs for `collection_timing().deadline` from then
    (it starts a moment later, so the real deadline is never earlier than this one)."""
    return collecting_since + collection_timing(settings).deadline


def human_review_deadline(declined_at: datetime, settings: Settings) -> datetime:
    """Until when a human review of an automatic decline at `declined_at` can be asked for (the
    workflow opens its window a moment later, so it never closes before this)."""
    return declined_at + human_review_window(settings)
