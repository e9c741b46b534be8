"""The traces table of the UI: filters, search, sorting, cursor paging and the row values people read
(latency, tokens, cost, level, scores) for one page.

Built on `traces.select_trace_ids` (which chooses a page of ids without merging every trace) and
the per-trace observation aggregates of `obs_select`. PageRequest is by cursor:

- newest first (the default and the order that must stay fast): a keyset cursor, the last row's
  (start, id). The next page is the same query with `timestamp <= start`, which keeps the
  latest-rows path of `select_trace_ids`; rows that tie with the cursor's start are skipped by id.
- any other order: the cursor carries the offset (those orders merge the filtered traces anyway).

Filters on level ERROR/WARNING first find candidate traces from the partial level states of
observations (a one-column scan), so "show me the errors" does not merge every observation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import (
    epoch_ms,
    parallel,
    utc,
)
from owlscope.tracing.filters import Condition, not_internal_environment, time_range
from owlscope.tracing.model import (
    aggregate_traces,
    search_trace_text,
    text_tokens,
    trace_aggregates_sql,
    trace_io_previews,
)
from owlscope.tracing.scores import has_scores, latest_rows
from owlscope.tracing.traces import fetch_traces, parse_order, select_trace_ids, trace_exists
from owlscope.wire import decode_cursor, encode_cursor

LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
# Orders by an aggregate of the trace's observations (server-side, see traces._by_aggregate).
AGGREGATE_ORDERS = {"latency": "a_latency", "totalCost": "a_total_cost", "totalTokens": "a_total_tokens"}
SORTABLE = ("timestamp", "name", "userId", "sessionId", "release", "version", *AGGREGATE_ORDERS)
SEARCH_TYPES = ("ids", "text")  # ids and names / full text of input and output
SCORE_OPERATORS = (">=", "<=", "=", ">", "<", "!=")
_ROW_AGGREGATES = {"a_latency", "a_total_tokens", "a_input_tokens", "a_output_tokens", "a_total_cost",
                   "a_level", "a_count", "a_errors", "a_warnings"}
_LEVEL_CANDIDATES_MAX = 50_000


@dataclass
class TraceFilters:
    """What the traces table is filtered by (every field optional)."""

    search: str | None = None
    search_type: str = "ids"  # SEARCH_TYPES: "text" searches input and output
    name: list[str] = field(default_factory=list)
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    hide_internal: bool = False  # without an environment: leave out the internal ones (langfuse-*)
    level: list[str] = field(default_factory=list)
    release: str | None = None
    version: str | None = None
    score_name: str | None = None
    score_op: str | None = None
    score_value: float | None = None
    start: datetime | None = None
    end: datetime | None = None

    def active(self) -> bool:
        return bool(self.search or self.name or self.user_id or self.session_id or self.tags or self.level
                    or self.release or self.version or self.score_name)


@dataclass
class TraceTablePage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


def _level_matches(olap: Olap, project_id: str, levels: list[str]) -> list[str] | None:
    """The ids of the traces whose level (their worst observation's) is one of `levels`, when those are
    ERROR and/or WARNING: such a trace has an observation row whose partial level state is that level,
    so a one-column scan finds the candidates and merging just their observations settles it. None
    when the shortcut does not apply (other levels, or too many candidates)."""
    if not levels or any(lv not in ("ERROR", "WARNING") for lv in levels):
        return None
    rows = olap.query(
        "SELECT DISTINCT trace_id FROM {db}.observations WHERE project_id = {p:String}"
        " AND finalizeAggregation(level) IN {lv:Array(String)} LIMIT {cap:UInt32}",
        {"p": project_id, "lv": list(levels), "cap": _LEVEL_CANDIDATES_MAX + 1},
    )
    if len(rows) > _LEVEL_CANDIDATES_MAX:
        return None
    if not rows:
        return []
    exact = olap.query(
        "SELECT trace_id FROM (" + trace_aggregates_sql("trace_id IN {tids:Array(String)}", {"a_level"})
        + ") WHERE a_level IN {lv:Array(String)}",
        {"project_id": project_id, "tids": [r[0] for r in rows], "lv": list(levels)},
    )
    return [r[0] for r in exact]


def table_conditions(olap: Olap, project_id: str, f: TraceFilters) -> list[Condition]:
    """The filters as conditions of the traces query (see traces.COLUMNS)."""
    conds: list[Condition] = []
    if f.search_type not in SEARCH_TYPES:
        raise InvalidRequest(f"Unknown search type {f.search_type!r}: use {', '.join(SEARCH_TYPES)}")
    if f.search and f.search_type == "text":
        if not text_tokens(f.search):
            raise InvalidRequest("A full-text search needs at least one word (letters or digits)")
        conds.append(Condition("id", "any of", search_trace_text(olap, project_id, f.search.strip(), since=f.start)))
    elif f.search:
        q = f.search.strip()
        # An exact id is a point lookup; otherwise the name contains the text (any case).
        if q and trace_exists(olap, project_id, q):
            conds.append(Condition("id", "=", q))
        elif q:
            conds.append(Condition("name", "matches", q))
    for column, operator, value in (
            ("name", "any of", list(f.name)), ("userId", "=", f.user_id), ("sessionId", "=", f.session_id),
            ("tags", "all of", list(f.tags)), ("environment", "any of", list(f.environment)),
            ("release", "=", f.release), ("version", "=", f.version)):
        if value:
            conds.append(Condition(column, operator, value))
    if f.level:
        bad = [lv for lv in f.level if lv not in LEVELS]
        if bad:
            raise InvalidRequest(f"Unknown level {bad[0]!r}: use {', '.join(LEVELS)}")
        matches = _level_matches(olap, project_id, f.level)
        if matches is not None:
            conds.append(Condition("id", "any of", matches))
        else:
            conds.append(Condition("level", "any of", list(f.level)))
    if f.score_name:
        if f.score_op not in SCORE_OPERATORS or f.score_value is None:
            raise InvalidRequest("A score filter needs an operator (>=, <=, =, >, <, !=) and a number")
        conds.append(Condition("scores_avg", f.score_op, f.score_value, key=f.score_name))
    if f.hide_internal and not f.environment:
        conds.append(not_internal_environment())
    conds += time_range("timestamp", f.start, f.end)
    return conds


def _ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def list_trace_table(
    olap: Olap, project_id: str, filters: TraceFilters, *, order_by: str | None = None,
    cursor: str | None = None, limit: int = 50, with_total: bool = True, io_preview: bool = False,
) -> TraceTablePage:
    """One page of the traces table. `order_by`: `field.asc|desc` with field in SORTABLE (default
    `timestamp.desc`); `cursor`: the `next_cursor` of the previous page. `total` (all matches) is
    counted only for the first page. `io_preview`: rows carry the start of their input and output
    (`inputPreview`, `outputPreview`)."""
    if limit < 1 or limit > 200:
        raise InvalidRequest("limit must be between 1 and 200")
    field, _, direction = (order_by or "timestamp.desc").partition(".")
    order = ((AGGREGATE_ORDERS[field], (direction or "desc").upper()) if field in AGGREGATE_ORDERS
             and direction.lower() in ("asc", "desc", "") else parse_order(order_by or "timestamp.desc"))
    conds = table_conditions(olap, project_id, filters)
    keyset = order == ("t_ts", "DESC")
    after: tuple[int, str] | None = None
    offset = 0
    if cursor:
        if keyset:
            after_ms, after_id = decode_cursor(cursor, (int, str))
            after = (after_ms, after_id)
        else:
            (offset,) = decode_cursor(cursor, (int,))
            if offset < 0:
                raise InvalidRequest("Invalid cursor")

    if after is None:
        found = select_trace_ids(olap, project_id, conds, order=order, offset=offset, limit=limit + 1,
                                 with_total=with_total and cursor is None, io=False)
        ids, total, pre = found.ids, found.total, found.rows
        rows = pre if pre is not None else fetch_traces(olap, project_id, ids[: limit + 1], io=False,
                                                        since=found.since)
    else:
        total = None
        page_conds = [*conds, Condition("timestamp", "<=", _ms_iso(after[0]))]
        extra = 0
        while True:
            want = limit + 1 + extra
            found = select_trace_ids(olap, project_id, page_conds, order=order, limit=want, with_total=False,
                                     io=False)
            rows = found.rows if found.rows is not None else fetch_traces(olap, project_id, found.ids, io=False,
                                                                          since=found.since)
            ids = [i for i in found.ids if i in rows and not _at_or_before_cursor(rows[i], i, after)]
            if len(ids) > limit or len(found.ids) < want:
                break
            extra = extra * 4 + 32
    ids = [i for i in ids if i in rows]
    more = len(ids) > limit
    ids = ids[:limit]
    next_cursor = None
    if more and ids:
        last = ids[-1]
        next_cursor = (encode_cursor([epoch_ms(rows[last]["t_ts"]), last]) if keyset
                       else encode_cursor([offset + limit]))
    out = trace_rows(olap, project_id, ids, rows)
    if io_preview:
        previews = trace_io_previews(olap, project_id, ids)
        for r in out:
            r["inputPreview"], r["outputPreview"] = previews.get(r["id"], ("", ""))
    return TraceTablePage(out, next_cursor, total)


def _at_or_before_cursor(row: dict[str, Any], trace_id: str, after: tuple[int, str]) -> bool:
    """Whether a row (newest first, ties by id descending) was already shown above the cursor."""
    ms = epoch_ms(row["t_ts"])
    return ms > after[0] or (ms == after[0] and trace_id >= after[1])


def trace_rows(olap: Olap, project_id: str, ids: list[str],
               merged: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The table's values for trace ids, in order: merged trace fields plus observation aggregates and
    trace-level scores by name."""
    if not ids:
        return []
    rows, aggs, scores = parallel(
        lambda: merged if merged is not None and all(i in merged for i in ids)
        else fetch_traces(olap, project_id, ids, io=False),
        lambda: trace_aggregates(olap, project_id, ids),
        lambda: trace_scores(olap, project_id, ids),
    )
    out = []
    for tid in ids:
        r = rows.get(tid)
        if r is None:
            continue
        a = aggs.get(tid, {})
        out.append({
            "id": tid,
            "timestamp": utc(r["t_ts"]),
            "name": r["t_name"] or None,
            "userId": r["t_user"] or None,
            "sessionId": r["t_session"] or None,
            "release": r["t_release"] or None,
            "version": r["t_version"] or None,
            "environment": r["t_env"] or "default",
            "tags": list(r["t_tags"]),
            "public": bool(r["t_public"]),
            "latency": a.get("latency"),
            "inputTokens": a.get("input_tokens", 0),
            "outputTokens": a.get("output_tokens", 0),
            "totalTokens": a.get("total_tokens", 0),
            "totalCost": a.get("total_cost", 0.0),
            "level": a.get("level", "DEFAULT"),
            "observationCount": a.get("count", 0),
            "errorCount": a.get("errors", 0),
            "warningCount": a.get("warnings", 0),
            "scores": scores.get(tid, []),
        })
    return out


def trace_aggregates(olap: Olap, project_id: str, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per trace: latency (s), tokens, cost, level and observation counts."""
    if not trace_ids:
        return {}
    out = {}
    for tid, v in aggregate_traces(olap, project_id, trace_ids, _ROW_AGGREGATES).items():
        out[tid] = {
            "latency": float(v["a_latency"]), "total_tokens": int(v["a_total_tokens"]),
            "input_tokens": int(v["a_input_tokens"]), "output_tokens": int(v["a_output_tokens"]),
            "total_cost": float(v["a_total_cost"]), "level": v["a_level"], "count": int(v["a_count"]),
            "errors": int(v["a_errors"]), "warnings": int(v["a_warnings"]),
        }
    return out


def trace_error_messages(olap: Olap, project_id: str, trace_ids: list[str]) -> dict[str, str]:
    """Per trace that has an ERROR observation with a status message: the first such message."""
    rows = aggregate_traces(olap, project_id, trace_ids, {"a_error_message"})
    return {tid: v["a_error_message"] for tid, v in rows.items() if v.get("a_error_message")}


def summarize_scores(rows: list[tuple]) -> list[dict[str, Any]]:
    """(name, data_type, value, string_value) rows -> one entry per name: numeric scores averaged,
    booleans as the share that is true, categories as their distinct values."""
    by_name: dict[str, dict[str, Any]] = {}
    for name, data_type, value, string_value in rows:
        e = by_name.setdefault(name, {"name": name, "dataType": data_type, "values": [], "labels": []})
        if data_type in ("NUMERIC", "BOOLEAN") and value is not None:
            e["values"].append(float(value))
        elif string_value and string_value not in e["labels"]:
            e["labels"].append(string_value)
    out = []
    for e in sorted(by_name.values(), key=lambda x: x["name"]):
        n = len(e["values"])
        if e["dataType"] == "BOOLEAN" and n:
            e["display"] = ("True" if e["values"][0] == 1 else "False") if n == 1 else \
                f"{round(100 * sum(e['values']) / n)}% true"
        elif n:
            avg = sum(e["values"]) / n
            e["display"] = f"{avg:.2f}".rstrip("0").rstrip(".") if avg != int(avg) else str(int(avg))
            e["avg"] = avg
        else:
            e["display"] = ", ".join(e["labels"][:3]) + ("…" if len(e["labels"]) > 3 else "")
        e["count"] = n or len(e["labels"])
        out.append(e)
    return out


def trace_scores(olap: Olap, project_id: str, trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Trace-level scores (not those of an observation) by trace id, summarized per score name."""
    return score_summaries(olap, project_id, "trace_id", trace_ids, " AND isNull(observation_id)")


def score_summaries(olap: Olap, project_id: str, column: str, ids: list[str],
                    extra: str = "") -> dict[str, list[dict[str, Any]]]:
    """The scores whose `column` (trace_id, session_id) is one of `ids` (and `extra` holds), by that
    id, summarized per score name (`summarize_scores`)."""
    if not ids or not has_scores(olap, project_id):
        return {}
    rows = olap.query(
        latest_rows(f"assumeNotNull({column}), name, data_type, value, string_value",
                    f"{column} IN {{ids:Array(String)}}{extra}", "ORDER BY timestamp", "{p:String}"),
        {"p": project_id, "ids": list(ids)},
    )
    grouped: dict[str, list[tuple]] = {}
    for key, *rest in rows:
        grouped.setdefault(key, []).append(tuple(rest))
    return {key: summarize_scores(v) for key, v in grouped.items()}


def filter_options(olap: Olap, project_id: str) -> dict[str, list[str]]:
    """Distinct trace names, tags, releases and versions (from partial states: no merge), and the
    score names, to offer in the filter bar. Capped; good enough for suggestions."""
    def distinct(column: str, limit: int = 200) -> list[str]:
        rows = olap.query(
            f"SELECT DISTINCT v FROM (SELECT finalizeAggregation({column}) AS v FROM {{db}}.traces"
            " WHERE project_id = {p:String}) WHERE v != '' ORDER BY v LIMIT {n:UInt32}",
            {"p": project_id, "n": limit},
        )
        return [r[0] for r in rows]

    names, root_names, releases, versions, tags, score_names = parallel(
        lambda: distinct("name"),
        lambda: distinct("root_name"),
        lambda: distinct("release"),
        lambda: distinct("version"),
        lambda: [r[0] for r in olap.query(
            "SELECT DISTINCT arrayJoin(tags) AS t FROM {db}.traces WHERE project_id = {p:String}"
            " ORDER BY t LIMIT 200", {"p": project_id})],
        lambda: [r[0] for r in olap.query(
            "SELECT DISTINCT name FROM {db}.scores WHERE project_id = {p:String} ORDER BY name LIMIT 200",
            {"p": project_id})],
    )
    return {"names": sorted(set(names) | set(root_names))[:200], "releases": releases, "versions": versions,
            "tags": tags, "scoreNames": score_names}
