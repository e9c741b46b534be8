"""What the tracing pages share (not a router): the time-range picker, links that keep the query
string, author names, and the trace-page data a project page and a public page both show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import select

from owlscope.errors import InvalidRequest
from owlscope.services import Services
from owlscope.storage.oltp.models import User

PRESETS: dict[str, tuple[str, timedelta | None]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
    "all": ("All time", None),
}
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class TimeRange:
    key: str  # a PRESETS key or "custom"
    start: datetime | None
    end: datetime | None
    label: str

    def input_value(self, which: str) -> str:
        value = self.start if which == "from" else self.end
        return value.strftime(LOCAL_INPUT) if value else ""


def _parse_input(value: str, what: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    for fmt in (LOCAL_INPUT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"The {what} time {value!r} is not a date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_range(key: str | None, start: str | None = None, end: str | None = None, *, default: str = "all",
               allow_all: bool = True, now: datetime | None = None) -> TimeRange:
    """The picker's choice: a preset (`1h`, `24h`, `7d`, `30d`, `90d`, `all`) or `custom` with
    `from`/`to` (UTC, `YYYY-MM-DDTHH:MM`)."""
    now = now or datetime.now(UTC)
    key = (key or default).strip()
    if key == "custom":
        s, e = _parse_input(start or "", "start"), _parse_input(end or "", "end")
        if s is None and e is None:
            key = default
        else:
            if s and e and e <= s:
                raise InvalidRequest("The end of the time range must be after its start")
            if not allow_all and s is None:
                raise InvalidRequest("Choose a start for the time range")
            label = f"{s.strftime('%b %d %H:%M') if s else '…'} – {e.strftime('%b %d %H:%M') if e else 'now'} UTC"
            return TimeRange("custom", s, e, label)
    if key not in PRESETS or (key == "all" and not allow_all):
        key = default
    label, span = PRESETS[key]
    return TimeRange(key, now - span if span else None, None, label)


def user_names(services: Services, user_ids: set[str]) -> dict[str, str]:
    """Display names (name, else email) of platform users, by id."""
    ids = [u for u in user_ids if u]
    if not ids:
        return {}
    with services.sessions() as session:
        rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids))).all()
    return {r[0]: r[1] or r[2] for r in rows}


def environment_filter(ctx_environment: str | None, chosen: list[str] | None = None) -> list[str]:
    """The environments a query is limited to: the top bar's selection wins over a page filter."""
    if ctx_environment:
        return [ctx_environment]
    return [e for e in (chosen or []) if e]


def multi(request: Request, name: str) -> list[str]:
    """All non-empty values of a repeated query parameter (also `a,b` in one value)."""
    out: list[str] = []
    for v in request.query_params.getlist(name):
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return list(dict.fromkeys(out))
