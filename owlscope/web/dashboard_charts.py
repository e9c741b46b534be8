"""What the custom-dashboard pages show: the names of views, measures and dimensions, and a widget's
rows (from the metrics engine) shaped for its chart (dashboards.js draws it with Chart.js)."""

from __future__ import annotations

from typing import Any

from owlscope.dashboards.definitions import TIME_SERIES
from owlscope.tracing.metrics import VIEWS

VIEW_LABELS = {"traces": "Traces", "observations": "Observations", "scores-numeric": "Scores (numeric)",
               "scores-boolean": "Scores (boolean)", "scores-categorical": "Scores (categorical)"}
MEASURE_LABELS = {
    "count": "Count", "latency": "Latency (ms)", "totalCost": "Total cost", "inputCost": "Input cost",
    "outputCost": "Output cost", "totalTokens": "Total tokens", "inputTokens": "Input tokens",
    "outputTokens": "Output tokens", "timeToFirstToken": "Time to first token (ms)",
    "streamingLatency": "Streaming latency (ms)", "tokensPerSecond": "Tokens per second",
    "outputTokensPerSecond": "Output tokens per second", "countScores": "Scores", "value": "Score value",
    "errors": "Errors (avg = error rate)", "observationsCount": "Observations", "scoresCount": "Scores",
    "uniqueUserIds": "Unique users",
}
DIMENSION_LABELS = {
    "name": "Name", "providedModelName": "Model", "observationModelName": "Model", "userId": "User",
    "sessionId": "Session", "environment": "Environment", "tags": "Tags", "release": "Release",
    "traceRelease": "Release", "version": "Version", "traceVersion": "Version", "promptName": "Prompt",
    "observationPromptName": "Prompt", "promptVersion": "Prompt version", "traceName": "Trace name",
    "type": "Observation type", "level": "Level", "source": "Score source", "dataType": "Data type",
    "stringValue": "Category", "booleanValue": "Boolean value", "isRootObservation": "Is root",
}
AGG_LABELS = {"count": "count", "sum": "sum", "avg": "average", "min": "min", "max": "max", "p50": "p50",
              "p75": "p75", "p90": "p90", "p95": "p95", "p99": "p99", "uniq": "distinct", "histogram": "histogram"}
CHART_LABELS = {
    "LINE_TIME_SERIES": "Line (over time)", "AREA_TIME_SERIES": "Area (over time)",
    "BAR_TIME_SERIES": "Stacked bar (over time)", "HORIZONTAL_BAR": "Horizontal bar", "VERTICAL_BAR": "Bar",
    "PIE": "Pie", "NUMBER": "Big number", "HISTOGRAM": "Histogram", "PIVOT_TABLE": "Table",
}
_SKIP_DIMENSIONS = {"id", "traceId", "observationId", "parentObservationId", "metadata", "configId", "value",
                    "timestampMonth", "timestampDay", "startTimeMonth"}
_COST = {"totalCost", "inputCost", "outputCost"}
_MS = {"latency", "timeToFirstToken", "streamingLatency"}


def choices() -> dict[str, Any]:
    """Per view, the dimensions and measures a widget may use (labels for the editor's selects)."""
    return {
        "views": VIEW_LABELS,
        "dimensions": {name: {f: DIMENSION_LABELS.get(f, f) for f in v.dimensions if f not in _SKIP_DIMENSIONS}
                       for name, v in VIEWS.items()},
        "measures": {name: {m: MEASURE_LABELS.get(m, m) for m in v.measures} for name, v in VIEWS.items()},
        "aggs": AGG_LABELS, "charts": CHART_LABELS,
    }


def metric_label(metric: dict[str, str]) -> str:
    measure = MEASURE_LABELS.get(metric["measure"], metric["measure"])
    return measure if metric["measure"] == "count" else f"{measure}, {AGG_LABELS.get(metric['agg'], metric['agg'])}"


def value_format(definition: dict[str, Any]) -> str:
    first = definition["metrics"][0]
    if first["measure"] in _COST:
        return "cost"
    if first["measure"] in _MS:
        return "ms"
    if first["measure"] == "errors" and first["agg"] == "avg":
        return "percent"
    return "number"


def _label(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def chart_spec(definition: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Labels and series for the chart, a value for a big number, columns and rows for a table."""
    chart, rows = definition["chartType"], data["data"]
    dims, metrics = data["dimensions"], data["metrics"]
    names = [metric_label(m) for m in definition["metrics"]]
    spec: dict[str, Any] = {"chart": chart, "format": value_format(definition), "empty": not rows}
    if chart in TIME_SERIES:
        labels = sorted({r["time_dimension"] for r in rows})
        index = {t: i for i, t in enumerate(labels)}
        # A bucket without rows counted nothing (0), but has no average or percentile (a gap).
        empty = 0 if definition["metrics"][0]["agg"] in ("count", "sum", "uniq") else None
        series: dict[str, list[Any]] = {}
        for r in rows:
            if dims:
                keys = [(_label(r[dims[0]]), metrics[0])]
            else:
                keys = list(zip(names, metrics, strict=True))
            for key, alias in keys:
                series.setdefault(key, [empty] * len(labels))[index[r["time_dimension"]]] = r[alias]
        spec.update(labels=labels, series=[{"label": k, "data": v} for k, v in series.items()], time=True)
    elif chart == "NUMBER":
        spec["value"] = rows[0][metrics[0]] if rows else None
        spec["label"] = names[0]
    elif chart == "HISTOGRAM":
        bins = (rows[0][metrics[0]] if rows else None) or []
        spec.update(labels=[f"{lo:.3g}–{hi:.3g}" for lo, hi, _ in bins],
                    series=[{"label": names[0], "data": [h for _, _, h in bins]}], format="number")
    elif chart == "PIVOT_TABLE":
        spec.update(columns=[DIMENSION_LABELS.get(d, d) for d in dims] + names,
                    rows=[[_label(r[d]) for d in dims] + [r[m] for m in metrics] for r in rows])
    else:
        labels = [_label(r[dims[0]]) for r in rows] if dims else names[:1]
        spec.update(labels=labels, series=[{"label": n, "data": [r[m] for r in rows]}
                                           for n, m in zip(names, metrics, strict=True)])
    return spec
