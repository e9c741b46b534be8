"""Built-in widgets (presets): definitions every project has, placed by `presetId`, not stored.

The default project dashboard places them all (see `boards.DEFAULT_LAYOUT`).
"""

from __future__ import annotations

from typing import Any

from owlscope.dashboards.definitions import check_definition


def _preset(name: str, description: str, view: str, metrics: list[tuple[str, str]], chart_type: str, *,
            dimensions: tuple[str, ...] = (), filters: list[dict[str, Any]] | None = None,
            **config: Any) -> dict[str, Any]:
    return check_definition({
        "name": name, "description": description, "view": view,
        "dimensions": [{"field": d} for d in dimensions],
        "metrics": [{"measure": m, "agg": a} for m, a in metrics],
        "filters": filters or [], "chartType": chart_type, "chartConfig": config or None,
    }, allow_legacy_view=True)


_EVAL = {"column": "source", "operator": "any of", "type": "stringOptions", "value": ["EVAL"], "key": None}

PRESETS: dict[str, dict[str, Any]] = {
    "traces-over-time": _preset("Traces", "Traces started per time bucket", "traces", [("count", "count")],
                                "BAR_TIME_SERIES"),
    "total-cost": _preset("Total cost", "Cost of every observation in the range (USD)", "observations",
                          [("totalCost", "sum")], "NUMBER"),
    "cost-by-model": _preset("Cost by model", "Observation cost per model (USD)", "observations",
                             [("totalCost", "sum")], "HORIZONTAL_BAR", dimensions=("providedModelName",)),
    "tokens-over-time": _preset("Tokens", "Total tokens per time bucket, by model", "observations",
                                [("totalTokens", "sum")], "BAR_TIME_SERIES", dimensions=("providedModelName",)),
    "latency-percentiles": _preset("Generation latency p50 / p95", "Milliseconds, generations only",
                                   "observations", [("latency", "p50"), ("latency", "p95")], "LINE_TIME_SERIES",
                                   filters=[{"column": "type", "operator": "=", "type": "string",
                                             "value": "GENERATION", "key": None}]),
    "error-rate": _preset("Error rate", "Share of observations with level ERROR", "observations",
                          [("errors", "avg")], "LINE_TIME_SERIES"),
    "evaluator-scores": _preset("Evaluator scores", "Average numeric score of each evaluator", "scores-numeric",
                                [("value", "avg")], "LINE_TIME_SERIES", dimensions=("name",), filters=[_EVAL]),
    "top-users": _preset("Top users by cost", "USD", "traces", [("totalCost", "sum")], "PIVOT_TABLE",
                         dimensions=("userId",), row_limit=10,
                         defaultSort={"column": "sum_totalCost", "order": "DESC"}),
}


def preset(preset_id: str) -> dict[str, Any] | None:
    return PRESETS.get(preset_id)
