"""The read side of tracing: query functions over the OLAP store, shared by the public API and the UI.

Every function takes the `Olap` client and the project id first (every query is scoped by project)
and returns plain dicts in the public API's shapes (camelCase, ISO-8601 UTC times). Missing entities
are None; bad parameters raise `owlscope.errors.InvalidRequest`.
"""

from owlscope.tracing.metrics import metrics_daily, metrics_query, metrics_v2
from owlscope.tracing.observations import get_observation, list_observations, list_observations_v2
from owlscope.tracing.scores import delete_score, get_score, list_scores_v2, list_scores_v3
from owlscope.tracing.sessions import get_session, list_sessions
from owlscope.tracing.traces import delete_traces, get_trace, list_traces

__all__ = [
    "delete_score", "delete_traces", "get_observation", "get_score", "get_session", "get_trace",
    "list_observations", "list_observations_v2", "list_scores_v2", "list_scores_v3", "list_sessions",
    "list_traces", "metrics_daily", "metrics_query", "metrics_v2",
]
