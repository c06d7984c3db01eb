"""metav1.Time and metav1.MicroTime on the wire.

``Time`` serialises as RFC 3339 in UTC with whole seconds (``2024-05-01T12:00:00Z``: the
fraction is dropped, not rounded); ``MicroTime`` (Events, Leases) with exactly six fractional
digits. Parsing accepts any RFC 3339 timestamp, as ``Time.UnmarshalJSON`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_micro_time", "format_time", "now", "now_micro", "parse_time", "parse_time_or_none"]


def format_time(t: datetime) -> str:
    """metav1.Time: RFC 3339, whole seconds, UTC (a naive datetime is taken as UTC)."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(t: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits, UTC."""
    aware = t if t.tzinfo is not None else t.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> str:
    """The current time as a metav1.Time string (what ``lastTransitionTime`` and
    ``creationTimestamp`` hold)."""
    return format_time(datetime.now(UTC))


def now_micro() -> str:
    """The current time as a metav1.MicroTime string."""
    return format_micro_time(datetime.now(UTC))


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp (``Z`` or an offset, any fraction) as an aware datetime; raises
    ValueError for anything else."""
    if not isinstance(text, str) or len(text) < 20 or text[10] not in "Tt":
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    normalised = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    parsed = datetime.fromisoformat(normalised.replace("t", "T", 1))
    if parsed.tzinfo is None:
        raise ValueError(f"not an RFC 3339 time (no zone): {text!r}")
    return parsed


def parse_time_or_none(text: str | None) -> datetime | None:
    """``parse_time``, or None for an empty, missing or malformed value (status fields written by
    others are read leniently)."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None
