"""The one number format of the UI: costs, durations, plain numbers and compact counts.

Registered as Jinja filters (`cost`, `duration`, `number`, `compact`) by
`templating.build_templates()`; `static/owlscope.js` has the same functions
(`Owlscope.format.cost/duration/number/compact`) for values drawn in the browser (charts, the
playground, the timeline), and a browser test checks that both sides agree.

- cost: US dollars; below $1 three significant digits (`$0.00034`, `$0.0107`, `$0.5`), from $1 on
  cents with thousands separators (`$1,234.50`).
- duration (seconds in): below 1 s whole milliseconds (`42ms`), below a minute seconds with two
  decimals (`2.50s`), then minutes and hours (`1m 15s`, `1h 6m`).
- number: thousands separators, at most `digits` decimals, no trailing zeros (`1,234.5`, `0.25`).
"""

from __future__ import annotations

import math

COST_SIGNIFICANT = 3


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def cost(usd: float | None) -> str:
    """$0.00034, $0.0107, $0.5, $12.35, $1,234.50; None → "—"."""
    if not _finite(usd):
        return "—"
    if usd == 0:
        return "$0"
    sign = "-" if usd < 0 else ""
    usd = abs(usd)
    if round(usd, 2) >= 1:
        return f"{sign}${usd:,.2f}"
    decimals = min(max(COST_SIGNIFICANT - 1 - math.floor(math.log10(usd)), 0), 12)
    return f"{sign}${_strip(f'{usd:.{decimals}f}')}"


def duration(seconds: float | None) -> str:
    """0.0423 → "42ms", 2.5 → "2.50s", 75 → "1m 15s", 4000 → "1h 6m"; None or negative → "—"."""
    if not _finite(seconds) or seconds < 0:
        return "—"
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    if seconds < 59.995:
        return f"{seconds:.2f}s"
    seconds = round(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def number(value: float | int | None, digits: int = 4) -> str:
    """1234 → "1,234", 1234.5 → "1,234.5", 0.25 → "0.25", 1/3 → "0.3333"; None → ""."""
    if value is None:
        return ""
    if not _finite(value):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return _strip(f"{value:,.{digits}f}")


def compact(n: float | int | None) -> str:
    """1234 → "1,234", 1234567 → "1.23M", 2.5e9 → "2.50B"; None → "—"."""
    if not _finite(n):
        return "—"
    if abs(n) >= 1_000_000_000:
        return f"{n / 1e9:.2f}B"
    if abs(n) >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return number(n, 2)


FILTERS = {"cost": cost, "duration": duration, "number": number, "compact": compact}
