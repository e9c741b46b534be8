"""A widget definition: a metrics query (view, dimensions, metrics, filters) plus a chart type.

Checked here once, for the API, the UI and the presets: the shape first (named fields, known chart
types), then the query itself by compiling it with the metrics engine (`tracing.metrics`), which
knows every view's dimensions, measures and filter columns. A widget's data is the answer of that
same engine to `widget_query(...)`: nothing here aggregates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.tracing.metrics import AGGREGATIONS, GRANULARITIES, VIEWS, compile_metrics_query

API_VIEWS = ("observations", "scores-numeric", "scores-boolean", "scores-categorical")
LEGACY_VIEW = "traces"  # the API reads it; only the UI creates it (as Langfuse's own UI did)
CHART_TYPES = ("LINE_TIME_SERIES", "AREA_TIME_SERIES", "BAR_TIME_SERIES", "HORIZONTAL_BAR", "VERTICAL_BAR", "PIE",
               "NUMBER", "HISTOGRAM", "PIVOT_TABLE")
TIME_SERIES = frozenset({"LINE_TIME_SERIES", "AREA_TIME_SERIES", "BAR_TIME_SERIES"})
GRANULARITY_CHOICES = ("auto", *GRANULARITIES)
SORT_ORDERS = ("ASC", "DESC")
MAX_DIMENSIONS = {"NUMBER": 0, "HISTOGRAM": 0, "PIVOT_TABLE": 2}  # others: 1 (the breakdown)
MAX_METRICS = 10
DEFAULT_ROW_LIMIT = 100
DEFAULT_BINS = 10
# A range used only to compile a definition while checking it (the query needs one).
_CHECK_RANGE = ("2000-01-01T00:00:00Z", "2000-01-02T00:00:00Z")


def _string(value: Any, what: str, *, max_len: int = 255, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRequest(f"{what} must be a non-empty string")
    if len(value) > max_len:
        raise InvalidRequest(f"{what} must be at most {max_len} characters")
    return value.strip() if required else value


def _int(value: Any, what: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequest(f"{what} must be an integer from {lo} to {hi}")
    return value


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidRequest(f"{what} must be a list of objects")
    return value


def check_filters(value: Any, what: str = "filters") -> list[dict[str, Any]]:
    """Filters in Langfuse's filter-state shape, with every field present (`value`, `key` may be null)."""
    out = []
    for i, f in enumerate(_objects(value, what)):
        for field in ("column", "operator", "type"):
            if not isinstance(f.get(field), str) or not f[field]:
                raise InvalidRequest(f"{what}[{i}].{field} must be a non-empty string")
        if f.get("key") is not None and not isinstance(f["key"], str):
            raise InvalidRequest(f"{what}[{i}].key must be a string")
        out.append({"column": f["column"], "operator": f["operator"], "type": f["type"], "value": f.get("value"),
                    "key": f.get("key")})
    return out


def default_chart_config(chart_type: str) -> dict[str, Any]:
    """The plain config of a chart type (every field present)."""
    return {"type": chart_type, "row_limit": None if chart_type in TIME_SERIES else DEFAULT_ROW_LIMIT,
            "show_value_labels": None, "bins": DEFAULT_BINS if chart_type == "HISTOGRAM" else None,
            "defaultSort": None, "granularity": "auto" if chart_type in TIME_SERIES else None}


def check_chart_config(value: Any, chart_type: str) -> dict[str, Any]:
    """`chartConfig` input: `type` defaults to `chart_type` and must match it. `granularity` (auto,
    minute, hour, day, week, month) is Owlscope's: the time bucket of a time-series chart."""
    config = default_chart_config(chart_type)
    if value is None:
        return config
    if not isinstance(value, dict):
        raise InvalidRequest("chartConfig must be an object")
    if value.get("type") is not None and value["type"] != chart_type:
        raise InvalidRequest(f"chartConfig.type {value['type']!r} must match chartType {chart_type!r}")
    if "row_limit" in value and value["row_limit"] is not None:
        config["row_limit"] = _int(value["row_limit"], "chartConfig.row_limit", 1, 1000)
    if "bins" in value and value["bins"] is not None:
        config["bins"] = _int(value["bins"], "chartConfig.bins", 1, 100)
    labels = value.get("show_value_labels")
    if labels is not None and not isinstance(labels, bool):
        raise InvalidRequest("chartConfig.show_value_labels must be a boolean")
    config["show_value_labels"] = labels
    sort = value.get("defaultSort")
    if sort is not None:
        if (not isinstance(sort, dict) or not isinstance(sort.get("column"), str) or not sort["column"]
                or sort.get("order") not in SORT_ORDERS):
            raise InvalidRequest("chartConfig.defaultSort must be {column, order: ASC or DESC}")
        config["defaultSort"] = {"column": sort["column"], "order": sort["order"]}
    granularity = value.get("granularity")
    if granularity is not None:
        if granularity not in GRANULARITY_CHOICES:
            raise InvalidRequest(f"chartConfig.granularity must be one of {', '.join(GRANULARITY_CHOICES)}")
        config["granularity"] = granularity
    return config


def check_definition(d: dict[str, Any], *, allow_legacy_view: bool = False) -> dict[str, Any]:
    """A complete widget definition (name, description, view, dimensions, metrics, filters,
    chartType, chartConfig), normalised; 400 naming the first problem."""
    views = (*API_VIEWS, LEGACY_VIEW) if allow_legacy_view else API_VIEWS
    name = _string(d.get("name"), "name")
    description = _string(d.get("description"), "description", max_len=2000, required=False)
    view = d.get("view")
    if view not in views:
        raise InvalidRequest(f"view must be one of {', '.join(views)}")
    chart_type = d.get("chartType")
    if chart_type not in CHART_TYPES:
        raise InvalidRequest(f"chartType must be one of {', '.join(CHART_TYPES)}")
    dimensions = []
    for i, dim in enumerate(_objects(d.get("dimensions"), "dimensions")):
        if not isinstance(dim.get("field"), str) or not dim["field"]:
            raise InvalidRequest(f"dimensions[{i}].field must be a non-empty string")
        dimensions.append({"field": dim["field"]})
    metrics = []
    for i, m in enumerate(_objects(d.get("metrics"), "metrics")):
        if not isinstance(m.get("measure"), str) or not m["measure"]:
            raise InvalidRequest(f"metrics[{i}].measure must be a non-empty string")
        if m.get("agg") not in AGGREGATIONS:
            raise InvalidRequest(f"metrics[{i}].agg must be one of {', '.join(AGGREGATIONS)}")
        metrics.append({"measure": m["measure"], "agg": m["agg"]})
    if not 1 <= len(metrics) <= MAX_METRICS:
        raise InvalidRequest(f"metrics needs 1 to {MAX_METRICS} entries")
    limit = MAX_DIMENSIONS.get(chart_type, 1)
    if len(dimensions) > limit:
        raise InvalidRequest(f"a {chart_type} chart takes at most {limit} dimension{'s' if limit != 1 else ''}")
    histogram = [m for m in metrics if m["agg"] == "histogram"]
    if chart_type == "HISTOGRAM" and (len(metrics) != 1 or not histogram):
        raise InvalidRequest("a HISTOGRAM chart takes exactly one metric, with agg histogram")
    if histogram and chart_type != "HISTOGRAM":
        raise InvalidRequest("agg histogram needs chartType HISTOGRAM")
    definition = {
        "name": name, "description": description, "view": view, "dimensions": dimensions, "metrics": metrics,
        "filters": check_filters(d.get("filters", []) if d.get("filters") is not None else []),
        "chartType": chart_type, "chartConfig": check_chart_config(d.get("chartConfig"), chart_type),
    }
    # The query itself: the metrics engine checks dimensions, measures and filters for the view.
    compile_metrics_query("check", widget_query(definition, *_CHECK_RANGE), version=query_version(definition))
    return definition


def query_version(definition: dict[str, Any]) -> int:
    """2, as GET /v2/metrics; 1 when grouping by a high-cardinality dimension (user, session), which
    a widget may do because it always shows only the top `row_limit` groups."""
    view = VIEWS.get(definition["view"])
    high = view.high_cardinality if view else ()
    return 1 if any(d["field"] in high for d in definition["dimensions"]) else 2


def widget_query(definition: dict[str, Any], start: datetime | str, end: datetime | str,
                 extra_filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The metrics query object (GET /api/public/v2/metrics) a widget runs for [start, end), with
    the dashboard's `extra_filters` added to its own: those on a column the widget's view has (a
    dashboard filter on `traceName` leaves a traces widget alone rather than breaking it)."""
    config = definition["chartConfig"]
    view = VIEWS.get(definition["view"])
    extra = [f for f in extra_filters or [] if view is not None and f.get("column") in view.dimensions]
    chart_type = definition["chartType"]
    metrics = [{"measure": m["measure"], "aggregation": m["agg"]} for m in definition["metrics"]]
    query: dict[str, Any] = {
        "view": definition["view"],
        "dimensions": [{"field": d["field"]} for d in definition["dimensions"]],
        "metrics": metrics,
        "filters": [*definition["filters"], *extra],
        "fromTimestamp": start.isoformat() if isinstance(start, datetime) else start,
        "toTimestamp": end.isoformat() if isinstance(end, datetime) else end,
        "config": {"row_limit": config.get("row_limit") or DEFAULT_ROW_LIMIT,
                   "bins": config.get("bins") or DEFAULT_BINS},
    }
    if chart_type in TIME_SERIES:
        query["timeDimension"] = {"granularity": config.get("granularity") or "auto"}
        query["config"]["row_limit"] = 1000  # every bucket of every series
    elif chart_type == "PIVOT_TABLE" and config.get("defaultSort"):
        query["orderBy"] = [{"field": config["defaultSort"]["column"], "direction": config["defaultSort"]["order"]}]
    elif query["dimensions"]:
        first = metrics[0]
        query["orderBy"] = [{"field": f"{first['aggregation']}_{first['measure']}", "direction": "desc"}]
    return query
