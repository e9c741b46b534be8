"""Observations: the v1 list (page-based), one by id, the v2 list (cursor, field groups), and the
per-trace aggregates the trace endpoints need. Page selection lives in `obs_select`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import (
    Params,
    epoch_ms,
    field_groups,
    iso,
    json_text,
    merge_metadata,
    nz,
    parse_json,
    seconds_between,
    total_cost,
)
from owlscope.tracing.filters import Condition, eq, parse_filter, time_range
from owlscope.tracing.model import rollups_fast, trace_aggregates_sql
from owlscope.tracing.obs_select import (
    MERGED,
    Key,
    compile_observation_conditions,
    count_observations,
    fetch_merged,
    fetch_trace_info,
    select_observation_keys,
)
from owlscope.wire import PageRequest, decode_cursor, encode_cursor

V2_GROUPS = ("core", "basic", "time", "io", "metadata", "model", "usage", "prompt", "metrics", "trace_context")
V2_DEFAULT = ("core", "basic")
_GROUP_ALIASES = {
    "core": {"o_start", "o_end", "o_parent", "o_type", "o_model_id", "o_model"},
    "basic": {"o_name", "o_level", "o_status", "o_version", "o_env"},
    "time": {"o_cst", "o_sort", "o_updated"},
    "io": {"o_input", "o_output"},
    "metadata": {"o_metadata", "o_meta_pieces"},
    "model": {"o_model", "o_model_params"},
    "usage": {"o_usage", "o_cost"},
    "prompt": {"o_prompt_id", "o_prompt_name", "o_prompt_version"},
    "metrics": {"o_start", "o_end", "o_cst"},
    "trace_context": set(),
}
_GROUP_TRACE_ALIASES = {
    "basic": {"t_user", "t_session", "t_public", "t_bookmarked"},
    "trace_context": {"t_tags", "t_release", "t_name"},
}
METADATA_PREVIEW = 200


def observation_conditions(
    *, name: str | None = None, user_id: str | None = None, session_id: str | None = None,
    type: str | None = None, trace_id: str | None = None, level: str | None = None,
    parent_observation_id: str | None = None, is_root_observation: bool | None = None,
    environment: list[str] | None = None, from_start_time: Any = None, to_start_time: Any = None,
    version: str | None = None, filter: str | list[Condition] | None = None, v2: bool = False,
) -> list[Condition]:
    """Query parameters of the observation lists as conditions; `filter`, when given, replaces them."""
    if filter is not None:
        parsed = parse_filter(filter) if isinstance(filter, str) else list(filter)
        if parsed is not None:
            if v2:
                _check_io_filters(parsed)
            return parsed
    conds: list[Condition] = []
    for column, value in (("name", name), ("userId", user_id), ("sessionId", session_id), ("type", type),
                          ("traceId", trace_id), ("level", level), ("version", version)):
        if value is not None:
            conds.append(eq(column, value))
    if parent_observation_id is not None:
        conds.append(eq("parentObservationId", parent_observation_id))
    if is_root_observation is not None:
        conds.append(eq("isRootObservation", is_root_observation))
    if environment:
        conds.append(Condition("environment", "any of", list(environment)))
    conds += time_range("startTime", from_start_time, to_start_time, ("fromStartTime", "toStartTime"))
    return conds


def _check_io_filters(conds: list[Condition]) -> None:
    io = [c for c in conds if c.column in ("input", "output")]
    if io and not any(c.operator in ("=", "matches") for c in io):
        raise InvalidRequest(
            "Invalid filter: an input or output filter needs at least one '=' or 'matches' condition on input or output"
        )


# ---- shapes ----------------------------------------------------------------------------------
# The body key carrying the model name of an observation ingested before model ids were stored
# (`o_model_id` NULL): the API matches it by name and removes the key (api/model_prices.py).
MODEL_TO_MATCH = "_modelToMatch"


def _model_fields(r: dict[str, Any]) -> dict[str, Any]:
    """`modelId` (the stored matched model) and empty prices, which the API fills from the model."""
    out: dict[str, Any] = {"modelId": r["o_model_id"] or None, "inputPrice": None, "outputPrice": None,
                           "totalPrice": None}
    if r["o_model_id"] is None and r["o_model"]:
        out[MODEL_TO_MATCH] = r["o_model"]
    return out


def view_shape(r: dict[str, Any]) -> dict[str, Any]:
    """A fully merged row as the OpenAPI `ObservationsView` (v1 observations, trace details)."""
    usage = {k: int(v) for k, v in (r["o_usage"] or {}).items()}
    costs = {k: float(v) for k, v in (r["o_cost"] or {}).items()}
    start, end, cst = r["o_start"], r["o_end"], r["o_cst"]
    cost_total = total_cost(costs)
    return {
        "id": r["id"],
        "traceId": r["trace_id"],
        "type": r["o_type"] or "SPAN",
        "name": nz(r["o_name"]),
        "startTime": iso(start),
        "endTime": iso(end),
        "completionStartTime": iso(cst),
        "model": nz(r["o_model"]),
        "modelParameters": parse_json(r["o_model_params"]),
        "input": parse_json(r["o_input"]),
        "version": nz(r["o_version"]),
        "metadata": merge_metadata(r["o_meta_pieces"], r["o_metadata"]),
        "output": parse_json(r["o_output"]),
        "usage": {
            "input": usage.get("input", 0),
            "output": usage.get("output", 0),
            "total": usage.get("total", sum(usage.values())),
            "unit": "TOKENS" if usage else None,
            "inputCost": costs.get("input"),
            "outputCost": costs.get("output"),
            "totalCost": cost_total,
        },
        "level": r["o_level"] or "DEFAULT",
        "statusMessage": nz(r["o_status"]),
        "parentObservationId": nz(r["o_parent"]),
        "promptId": nz(r["o_prompt_id"]),
        "usageDetails": usage,
        "costDetails": costs,
        "environment": r["o_env"] or "default",
        "promptName": nz(r["o_prompt_name"]),
        "promptVersion": r["o_prompt_version"] or None,
        **_model_fields(r),
        "calculatedInputCost": costs.get("input"),
        "calculatedOutputCost": costs.get("output"),
        "calculatedTotalCost": cost_total,
        "latency": seconds_between(start, end),
        "timeToFirstToken": seconds_between(start, cst),
    }


def _truncate_metadata(value: Any, expand: set[str]) -> Any:
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in expand:
            out[k] = v
        elif isinstance(v, str):
            out[k] = v[:METADATA_PREVIEW]
        elif isinstance(v, dict | list):
            s = json_text(v)
            out[k] = v if len(s) <= METADATA_PREVIEW else s[:METADATA_PREVIEW]
        else:
            out[k] = v
    return out


def raw_io(text: str | None) -> str | None:
    """v2 input/output: the raw text the client sent. A plain string is stored as its JSON text
    ('"hi"') and comes back as sent ("hi"); objects, arrays and numbers are already their text."""
    if not text:
        return None
    if text[0] == '"':
        value = parse_json(text)
        if isinstance(value, str):
            return value
    return text


def v2_shape(project_id: str, r: dict[str, Any], t: dict[str, Any], groups: set[str],
             expand: set[str]) -> dict[str, Any]:
    """An `ObservationV2` with the requested field groups (core always)."""
    out: dict[str, Any] = {
        "id": r["id"],
        "traceId": r["trace_id"],
        "startTime": iso(r["o_start"]),
        "endTime": iso(r["o_end"]),
        "projectId": project_id,
        "parentObservationId": nz(r["o_parent"]),
        "type": r["o_type"] or "SPAN",
        **_model_fields(r),
    }
    if "basic" in groups:
        out.update({
            "name": nz(r["o_name"]),
            "level": r["o_level"] or "DEFAULT",
            "statusMessage": nz(r["o_status"]),
            "version": nz(r["o_version"]),
            "environment": r["o_env"] or "default",
            "bookmarked": bool(t.get("t_bookmarked")),
            "public": bool(t.get("t_public")),
            "userId": nz(t.get("t_user")),
            "sessionId": nz(t.get("t_session")),
            "isRootObservation": not r["o_parent"],
        })
    if "time" in groups:
        out.update({
            "completionStartTime": iso(r["o_cst"]),
            "createdAt": iso(r["o_sort"]),
            "updatedAt": iso(r["o_updated"]),
        })
    if "io" in groups:
        out["input"] = raw_io(r["o_input"])
        out["output"] = raw_io(r["o_output"])
    if "metadata" in groups:
        out["metadata"] = _truncate_metadata(merge_metadata(r["o_meta_pieces"], r["o_metadata"]), expand)
    if "model" in groups:
        out.update({
            "providedModelName": nz(r["o_model"]),
            "model": nz(r["o_model"]),  # the name langfuse 5.0's ObservationV2 model reads
            "internalModelId": out["modelId"],
            "modelParameters": parse_json(r["o_model_params"]),
        })
    if "usage" in groups:
        costs = {k: float(v) for k, v in (r["o_cost"] or {}).items()}
        out.update({
            "usageDetails": {k: int(v) for k, v in (r["o_usage"] or {}).items()},
            "costDetails": costs,
            "totalCost": total_cost(costs),
            "usagePricingTierName": None,
        })
    if "prompt" in groups:
        out.update({
            "promptId": nz(r["o_prompt_id"]),
            "promptName": nz(r["o_prompt_name"]),
            "promptVersion": r["o_prompt_version"] or None,
        })
    if "metrics" in groups:
        out["latency"] = seconds_between(r["o_start"], r["o_end"])
        out["timeToFirstToken"] = seconds_between(r["o_start"], r["o_cst"])
    if "trace_context" in groups:
        out.update({
            "tags": list(t.get("t_tags") or []),
            "release": nz(t.get("t_release")),
            "traceName": nz(t.get("t_name")),
        })
    return out


# ---- reads used by the trace endpoints -------------------------------------------------------
def observations_for_trace(olap: Olap, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    """Every observation of a trace as ObservationsView, by start time (a primary-key range)."""
    rows = olap.query_dicts(
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {p:String} AND trace_id = {t:String}"
        " GROUP BY trace_id, id ORDER BY o_start, o_sort, id" % "".join(f", {e} AS {a}" for a, e in MERGED.items()),
        {"p": project_id, "t": trace_id}, keys=(trace_id,),
    )
    return [view_shape(r) for r in rows]


def observations_of_traces(olap: Olap, project_id: str, trace_ids: list[str]) -> list[dict[str, Any]]:
    """Every observation of the given traces as ObservationsView, by trace (in the order given), then
    start time (one primary-key read for a page of traces)."""
    if not trace_ids:
        return []
    p = Params(p=project_id)
    rows = olap.query_dicts(
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {p:String} AND trace_id IN %s"
        " GROUP BY trace_id, id ORDER BY o_start, o_sort, id"
        % ("".join(f", {e} AS {a}" for a, e in MERGED.items()), p.ids(sorted(set(trace_ids)))),
        p.values, keys=trace_ids,
    )
    order = {t: i for i, t in enumerate(trace_ids)}
    return [view_shape(r) for r in sorted(rows, key=lambda r: order.get(r["trace_id"], len(order)))]


def trace_stats(olap: Olap, project_id: str, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per trace: observation ids (by start), latency seconds and total cost."""
    if not trace_ids:
        return {}
    p = Params(project_id=project_id)
    rows = olap.query(
        "SELECT trace_id, a_ids, a_latency, a_total_cost FROM (%s)"
        % trace_aggregates_sql(f"trace_id IN {p.ids(trace_ids)}", {"a_ids", "a_latency", "a_total_cost"},
                               fast=rollups_fast(olap, project_id)),
        p.values, keys=trace_ids,
    )
    return {r[0]: {"ids": list(r[1]), "latency": float(r[2]), "total_cost": float(r[3])} for r in rows}


# ---- public functions ------------------------------------------------------------------------
def list_observations(
    olap: Olap, project_id: str, *, page: int | None = 1, limit: int | None = 50, name: str | None = None,
    user_id: str | None = None, type: str | None = None, trace_id: str | None = None, level: str | None = None,
    parent_observation_id: str | None = None, environment: list[str] | None = None,
    from_start_time: Any = None, to_start_time: Any = None, version: str | None = None,
    filter: str | list[Condition] | None = None,
) -> dict[str, Any]:
    """GET /api/public/observations: ObservationsView items, newest first, with page meta."""
    req = PageRequest.of(page, limit)
    page, limit = req.page, req.limit
    conds = observation_conditions(
        name=name, user_id=user_id, type=type, trace_id=trace_id, level=level,
        parent_observation_id=parent_observation_id, environment=environment,
        from_start_time=from_start_time, to_start_time=to_start_time, version=version, filter=filter,
    )
    q = compile_observation_conditions(olap, project_id, conds)
    keys = select_observation_keys(olap, q, offset=(page - 1) * limit, limit=limit)
    total = count_observations(olap, q)
    rows = fetch_merged(olap, project_id, [(k[0], k[1]) for k in keys], set(MERGED))
    data = [view_shape(rows[(k[0], k[1])]) for k in keys if (k[0], k[1]) in rows]
    return {"data": data, "meta": req.meta(total)}


def get_observation(olap: Olap, project_id: str, observation_id: str) -> dict[str, Any] | None:
    """GET /api/public/observations/{id}: ObservationsView, or None (the id's bloom filter finds it)."""
    rows = olap.query_dicts(
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {p:String} AND id = {id:String}"
        " GROUP BY trace_id, id LIMIT 1" % "".join(f", {e} AS {a}" for a, e in MERGED.items()),
        {"p": project_id, "id": observation_id},
    )
    return view_shape(rows[0]) if rows else None


def list_observations_v2(
    olap: Olap, project_id: str, *, fields: str | None = None, expand_metadata: str | None = None,
    limit: int | None = 50, cursor: str | None = None, parse_io_as_json: bool | None = None,
    name: str | None = None, user_id: str | None = None, session_id: str | None = None,
    type: str | None = None, trace_id: str | None = None, level: str | None = None,
    parent_observation_id: str | None = None, is_root_observation: bool | None = None,
    environment: list[str] | None = None, from_start_time: Any = None, to_start_time: Any = None,
    version: str | None = None, filter: str | list[Condition] | None = None,
) -> dict[str, Any]:
    """GET /api/public/v2/observations: `{"data": [ObservationV2], "meta": {"cursor"}}`, newest first.

    The cursor is the last item's (start, traceId, id); `meta.cursor` is absent on the last page.
    """
    if parse_io_as_json:
        raise InvalidRequest("parseIoAsJson is no longer supported: input and output are returned as raw strings")
    limit = 50 if limit is None else limit
    if limit < 1 or limit > 1000:
        raise InvalidRequest("limit must be between 1 and 1000")
    groups = field_groups(fields, V2_GROUPS, V2_DEFAULT) | {"core"}
    expand = {k.strip() for k in (expand_metadata or "").split(",") if k.strip()}
    after: Key | None = None
    if cursor:
        ts_ms, tid, oid = decode_cursor(cursor, (int, str, str))
        after = (tid, oid, datetime.fromtimestamp(ts_ms / 1000, tz=UTC))
    conds = observation_conditions(
        name=name, user_id=user_id, session_id=session_id, type=type, trace_id=trace_id, level=level,
        parent_observation_id=parent_observation_id, is_root_observation=is_root_observation,
        environment=environment, from_start_time=from_start_time, to_start_time=to_start_time,
        version=version, filter=filter, v2=True,
    )
    q = compile_observation_conditions(olap, project_id, conds)
    keys = select_observation_keys(olap, q, after=after, limit=limit + 1)
    more = len(keys) > limit
    keys = keys[:limit]
    aliases = set().union(*(_GROUP_ALIASES[g] for g in groups)) | {"o_sort"}
    rows = fetch_merged(olap, project_id, [(k[0], k[1]) for k in keys], aliases)
    trace_aliases = set().union(*(_GROUP_TRACE_ALIASES.get(g, set()) for g in groups))
    traces = fetch_trace_info(olap, project_id, {k[0] for k in keys}, trace_aliases)
    data = []
    for k in keys:
        r = rows.get((k[0], k[1]))
        if r is not None:
            for a in MERGED:
                r.setdefault(a, None)
            data.append(v2_shape(project_id, r, traces.get(k[0], {}), groups, expand))
    meta: dict[str, Any] = {}
    if more and keys:
        last = keys[-1]
        meta["cursor"] = encode_cursor([epoch_ms(last[2]), last[0], last[1]])
    return {"data": data, "meta": meta}
