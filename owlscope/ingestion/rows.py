"""Rows the mappers produce and the OLAP event tables take.

Each accepted piece of input (an OTel span, a legacy `*-create`/`*-update` event, a score) becomes
one or more *event rows*. A field left as None means "this event says nothing about it": the
engine merges the rows of one id by taking, per field, the value of the latest event that set it
(`argMaxIf(field, event_ts, field IS NOT NULL)`), so order of arrival does not matter.

Pure data: no I/O here. The column names equal the OLAP `*_events` table columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

OBSERVATION_TYPES = (
    "SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING",
    "GUARDRAIL",
)
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")


@dataclass(slots=True)
class TraceEvent:
    """A piece of a trace's attributes. Many spans of a trace each contribute one."""

    project_id: str
    id: str
    event_ts: datetime  # version: the time this piece was produced by the client
    timestamp: datetime | None = None  # the trace's start: the engine keeps the minimum
    name: str | None = None  # explicit trace name (langfuse.trace.name, trace-create)
    root_name: str | None = None  # fallback: the name of the root span
    user_id: str | None = None
    session_id: str | None = None
    release: str | None = None
    version: str | None = None
    environment: str | None = None
    public: bool | None = None  # true if any piece says so
    bookmarked: bool | None = None
    tags: list[str] = field(default_factory=list)  # union of all pieces
    metadata: str | None = None  # JSON object text
    input: str | None = None  # explicit trace input (JSON text)
    output: str | None = None
    root_input: str | None = None  # fallback: the root span's input
    root_output: str | None = None


@dataclass(slots=True)
class ObservationEvent:
    project_id: str
    id: str
    trace_id: str
    event_ts: datetime
    type: str | None = None  # one of OBSERVATION_TYPES
    name: str | None = None
    parent_observation_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    completion_start_time: datetime | None = None
    level: str | None = None
    status_message: str | None = None
    version: str | None = None
    environment: str | None = None
    input: str | None = None  # JSON text
    output: str | None = None  # JSON text
    metadata: str | None = None  # JSON object text
    model: str | None = None  # model name as provided
    model_parameters: str | None = None  # JSON object text
    usage_details: dict[str, int] | None = None  # normalized: input, output, total, input_cached_tokens, ...
    cost_details: dict[str, float] | None = None  # per usage key plus "total"
    provided_cost: bool | None = None  # True when cost_details came from the client
    prompt_id: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    # the model that priced it (enrichment): its id, '' when the named model matched none, None when
    # this event names no model
    internal_model_id: str | None = None


@dataclass(slots=True)
class ScoreEvent:
    project_id: str
    id: str
    event_ts: datetime
    timestamp: datetime
    name: str
    data_type: str  # NUMERIC | CATEGORICAL | BOOLEAN
    source: str = "API"  # API | EVAL | ANNOTATION
    value: float | None = None
    string_value: str | None = None
    trace_id: str | None = None
    observation_id: str | None = None
    session_id: str | None = None
    dataset_run_id: str | None = None
    comment: str | None = None
    config_id: str | None = None
    author_user_id: str | None = None
    queue_id: str | None = None
    environment: str = "default"
    metadata: str | None = None


TS = pa.timestamp("ms", tz="UTC")
STR = pa.string()

TRACE_SCHEMA = pa.schema([
    ("project_id", STR), ("id", STR), ("event_ts", TS), ("timestamp", TS), ("name", STR),
    ("root_name", STR), ("user_id", STR), ("session_id", STR), ("release", STR), ("version", STR),
    ("environment", STR), ("public", pa.bool_()), ("bookmarked", pa.bool_()), ("tags", pa.list_(STR)),
    ("metadata", STR), ("input", STR), ("output", STR), ("root_input", STR), ("root_output", STR),
])

OBSERVATION_SCHEMA = pa.schema([
    ("project_id", STR), ("id", STR), ("trace_id", STR), ("event_ts", TS), ("type", STR), ("name", STR),
    ("parent_observation_id", STR), ("start_time", TS), ("end_time", TS), ("completion_start_time", TS),
    ("level", STR), ("status_message", STR), ("version", STR), ("environment", STR), ("input", STR),
    ("output", STR), ("metadata", STR), ("model", STR), ("model_parameters", STR),
    ("usage_details", pa.map_(STR, pa.uint64())), ("cost_details", pa.map_(STR, pa.float64())),
    ("provided_cost", pa.bool_()), ("prompt_id", STR), ("prompt_name", STR), ("prompt_version", pa.uint32()),
    ("internal_model_id", STR),
])

SCORE_SCHEMA = pa.schema([
    ("project_id", STR), ("id", STR), ("event_ts", TS), ("timestamp", TS), ("name", STR), ("data_type", STR),
    ("source", STR), ("value", pa.float64()), ("string_value", STR), ("trace_id", STR),
    ("observation_id", STR), ("session_id", STR), ("dataset_run_id", STR), ("comment", STR),
    ("config_id", STR), ("author_user_id", STR), ("queue_id", STR), ("environment", STR), ("metadata", STR),
])


_MAP_COLUMNS = frozenset({"usage_details", "cost_details"})


def _columns(rows: list, schema: pa.Schema) -> pa.Table:
    # Column by column: one list comprehension per field is several times faster than building
    # row dicts, and the worker's serialization, not the engine, is the ingest bottleneck.
    cols = {}
    for name in schema.names:
        values = [getattr(r, name) for r in rows]
        if name in _MAP_COLUMNS:
            values = [list(v.items()) if v else None for v in values]
        cols[name] = values
    return pa.table(cols, schema=schema)


def traces_table(rows: list[TraceEvent]) -> pa.Table:
    return _columns(rows, TRACE_SCHEMA)


def observations_table(rows: list[ObservationEvent]) -> pa.Table:
    return _columns(rows, OBSERVATION_SCHEMA)


def scores_table(rows: list[ScoreEvent]) -> pa.Table:
    return _columns(rows, SCORE_SCHEMA)


@dataclass(slots=True)
class Rows:
    """Everything one blob maps to."""

    traces: list[TraceEvent] = field(default_factory=list)
    observations: list[ObservationEvent] = field(default_factory=list)
    scores: list[ScoreEvent] = field(default_factory=list)
    # Characters of JSON text (input, output, metadata...) in these rows, counted by
    # `ingestion.limits.clamp_rows`: what a row's memory is mostly made of (0 when not counted).
    text_chars: int = 0

    def extend(self, other: Rows) -> None:
        self.traces.extend(other.traces)
        self.observations.extend(other.observations)
        self.scores.extend(other.scores)
        self.text_chars += other.text_chars

    def __len__(self) -> int:
        return len(self.traces) + len(self.observations) + len(self.scores)


# OLAP table, Rows attribute, Arrow builder, and the field holding a row's trace id where every row
# it leads to (through the table's views) belongs to that trace alone: the key its insert names to
# the store's kept reads (storage/olap/results.py). Not for scores: a later event of a score can move
# it to another trace, which a write naming the new trace alone would not tell a read of the old one.
TABLES = (
    ("observation_events", "observations", observations_table, "trace_id"),
    ("trace_events", "traces", traces_table, "id"),
    ("scores", "scores", scores_table, None),
)
