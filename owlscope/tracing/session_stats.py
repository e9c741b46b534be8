"""What the UI shows about sessions beyond `sessions.list_sessions`/`get_session`: per session the
number of traces, duration, users, tokens, cost and scores, for one page of session ids at a time.

A session's traces are found from the partial session states of `traces` (one column, no merge),
merged by primary key, and their observations aggregated by trace id (a primary-key prefix).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import parallel, utc
from owlscope.tracing.model import TRACE, select_list
from owlscope.tracing.trace_table import score_summaries, trace_aggregates


def session_traces(olap: Olap, project_id: str, session_ids: list[str]) -> list[dict[str, Any]]:
    """(id, session, start, user, environment) of every trace whose merged session is one of the ids."""
    if not session_ids:
        return []
    return olap.query_dicts(
        f"SELECT id{select_list({'t_ts', 't_session', 't_user', 't_env'}, TRACE)} FROM {{db}}.traces"
        " WHERE project_id = {p:String}"
        " AND id IN (SELECT id FROM {db}.traces WHERE project_id = {p:String}"
        " AND finalizeAggregation(session_id) IN {sids:Array(String)})"
        " GROUP BY id HAVING t_session IN {sids:Array(String)}",
        {"p": project_id, "sids": list(session_ids)},
    )


def session_scores(olap: Olap, project_id: str, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Session-level scores by session id, summarized per score name."""
    return score_summaries(olap, project_id, "session_id", session_ids)


def session_summaries(olap: Olap, project_id: str, session_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per session id: traces, first start, last end, duration (s), users, tokens, cost, scores."""
    if not session_ids:
        return {}
    traces, scores = parallel(lambda: session_traces(olap, project_id, session_ids),
                              lambda: session_scores(olap, project_id, session_ids))
    aggs = trace_aggregates(olap, project_id, [t["id"] for t in traces])
    out: dict[str, dict[str, Any]] = {}
    for t in traces:
        s = out.setdefault(t["t_session"], {
            "traces": 0, "start": None, "end": None, "users": [], "totalTokens": 0, "totalCost": 0.0,
            "environment": None, "errorCount": 0,
        })
        start = utc(t["t_ts"])
        a = aggs.get(t["id"], {})
        end = start + timedelta(seconds=a.get("latency", 0.0)) if start else None
        s["traces"] += 1
        if start and (s["start"] is None or start < s["start"]):
            s["start"], s["environment"] = start, t["t_env"] or "default"
        if end and (s["end"] is None or end > s["end"]):
            s["end"] = end
        if t["t_user"] and t["t_user"] not in s["users"]:
            s["users"].append(t["t_user"])
        s["totalTokens"] += a.get("total_tokens", 0)
        s["totalCost"] += a.get("total_cost", 0.0)
        s["errorCount"] += a.get("errors", 0)
    for sid, s in out.items():
        s["duration"] = (s["end"] - s["start"]).total_seconds() if s["start"] and s["end"] else None
        s["users"].sort()
        s["scores"] = scores.get(sid, [])
    return out
