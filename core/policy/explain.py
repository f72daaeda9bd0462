"""Human-readable breakdown of an assessment, and replay of a stored one."""

from __future__ import annotations

from typing import Any

from core.policy.characteristics import CharacteristicValue
from core.policy.loader import LoadedPolicy
from core.policy.scorecard import Assessment, assess


class ReproductionError(Exception):
    """A stored assessment does not replay identically."""


def format_minor(amount: int | None, currency: str | None = None) -> str:
    """12345678 -> '123,456.78' (minor units, two decimals), with the currency if given."""
    if amount is None:
        return "unknown"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    text = f"{sign}{major:,}.{minor:02d}"
    return f"{text} {currency}" if currency else text


def format_value(value: CharacteristicValue | str) -> str:
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def explain(assessment: Assessment) -> str:
    a = assessment
    cur = a.currency
    lines: list[str] = [
        f"Assessment as of {a.as_of.isoformat()} under policy {a.policy_id} (sha256 {a.policy_hash[:12]})",
        f"Recommendation: {a.recommendation.value} ({a.route.value})",
        f"Score: {a.score} (range {a.score_min} to {a.score_max})"
        + (f", implied PD {a.pd}" if a.pd is not None else "")
        + f" → risk tier {a.risk_tier.value}",
        "",
        "Knock-outs:",
    ]
    if not a.knockouts:
        lines.append("  none fired")
    for hit in a.knockouts:
        lines.append(
            f"  {hit.id}: {hit.characteristic} = {format_value(hit.value)} ({hit.condition}) "
            f"→ {hit.action.value} [{hit.reason}]"
        )

    lines += ["", "Scorecard:"]
    for c in a.contributions:
        bin_text = "missing" if c.bin == "missing" else f"bin {c.bin}"
        lost = f", {c.points_lost} below best" if c.points_lost else ""
        shown = format_value(c.category if c.category is not None else c.value)
        lines.append(f"  {c.characteristic} = {shown} → {bin_text} → {c.points} points{lost}")
    lines.append(f"  total = {a.score} points")

    s = a.limit_sizing
    lines += [
        "",
        f"Suggested limit: {format_minor(a.suggested_limit_minor, cur)}",
        f"  requested {format_minor(s.requested_limit_minor)}, "
        f"original {format_minor(s.original_limit_minor)}, "
        f"tier {a.risk_tier.value} share {s.tier_share} → {format_minor(s.tier_cap_minor)}",
        f"  ability to pay: {s.ability_to_pay_multiple} × disposable income "
        f"{format_minor(s.disposable_income_minor)} (income {format_minor(s.monthly_income_minor)}"
        f" - debt service {format_minor(s.monthly_debt_service_minor)}) "
        f"→ {format_minor(s.ability_to_pay_cap_minor)}",
        f"  smallest {format_minor(s.unrounded_minor)}, rounded down to a multiple of "
        f"{format_minor(s.rounding_unit_minor)}",
    ]
    if s.zeroed_because:
        lines.append(f"  set to 0: {s.zeroed_because}")
    lines.append(f"Four-eyes review: {'required' if a.four_eyes_required else 'not required'}")

    lines += ["", "Principal reasons:"]
    if not a.reasons:
        lines.append("  none")
    for i, r in enumerate(a.reasons, start=1):
        source = f"{r.characteristic}, {r.points_lost} points below best" if r.characteristic else "knock-out"
        lines.append(f"  {i}. {r.code} ({source})")
        lines.append(f"     en: {r.en}")
        lines.append(f"     zh-CN: {r.zh_cn}")

    if a.red_flags:
        lines += ["", "Red flags (force manual review):"]
        lines += [f"  - {f.code}: {f.explanation}" for f in a.red_flags]

    lines += ["", "Documents required:"]
    accepted = set(a.input.accepted_document_types)
    for req in a.required_documents:
        state = "accepted" if req.document_type in accepted else "MISSING"
        why = ", ".join(r.value for r in req.reasons)
        months = f", {req.min_full_months} full months" if req.min_full_months else ""
        lines.append(f"  {req.document_type.value}: {state} ({why}{months})")
    return "\n".join(lines)


def first_difference(stored: Any, replayed: Any, path: str = "") -> str | None:
    """Key path and values of the first difference between two JSON-like trees, or None."""
    if isinstance(stored, dict) and isinstance(replayed, dict):
        for key in list(stored) + [k for k in replayed if k not in stored]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in stored or key not in replayed:
                return f"{sub}: present in only one of them"
            found = first_difference(stored[key], replayed[key], sub)
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(replayed, list):
        for i, (x, y) in enumerate(zip(stored, replayed, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(stored) != len(replayed):
            return f"{path}: stored has {len(stored)} items, replay has {len(replayed)}"
        return None
    if stored != replayed or type(stored) is not type(replayed):
        return f"{path or '<root>'}: stored {stored!r}, replay {replayed!r}"
    return None


def reproduce(policy: LoadedPolicy, assessment: Assessment) -> Assessment:
    """Re-run an assessment from its stored input snapshot and check the result is identical.

    Raises `ReproductionError` when the policy is not the one the assessment was made under
    (id or content hash) or when any part of the result differs (naming the first difference).
    """
    if policy.content_hash != assessment.policy_hash or policy.policy_id != assessment.policy_id:
        raise ReproductionError(
            f"policy differs: the assessment was made under {assessment.policy_id} "
            f"(sha256 {assessment.policy_hash}), the given policy is {policy.policy_id} "
            f"(sha256 {policy.content_hash})"
        )
    replayed = assess(policy, assessment.input)
    diff = first_difference(assessment.model_dump(mode="json"), replayed.model_dump(mode="json"))
    if diff is not None:
        raise ReproductionError(f"replay differs from the stored assessment at {diff}")
    return replayed


__all__ = [
    "ReproductionError",
    "explain",
    "first_difference",
    "format_minor",
    "format_value",
    "reproduce",
]
