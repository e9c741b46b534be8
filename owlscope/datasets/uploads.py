"""Filling datasets in bulk: items from traces or observations, lists of items, and CSV/JSON uploads.

Each call is all or nothing: one transaction, and the first invalid row is reported by its number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.items import item_to_api, upsert_item_in
from owlscope.datasets.olap_reads import observations_by_key, trace_summaries
from owlscope.datasets.store import find_dataset
from owlscope.errors import InvalidRequest, NotFound
from owlscope.ingestion.masking import Masker
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.db import write_transaction

MAX_UPLOAD_ROWS = 10_000
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
FIELDS = ("input", "expectedOutput", "metadata")
_ITEM_KEYS = {"input": "input", "expectedOutput": "expectedOutput", "expected_output": "expectedOutput",
              "metadata": "metadata"}


def bulk_add_items(
    sessions: sessionmaker[Session], *, masker: Masker | None, project_id: str, dataset_name: str, items: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Add (or upsert, when they carry an `id`) many items in one transaction. Each item is a dict
    with the API's keys: input, expectedOutput, metadata, id, status, sourceTraceId,
    sourceObservationId. A failing row is reported as `row N: ...` and nothing is stored."""
    if len(items) > MAX_UPLOAD_ROWS:
        raise InvalidRequest(f"at most {MAX_UPLOAD_ROWS} items can be added at once, not {len(items)}")
    now = utcnow()
    with write_transaction(sessions) as session:
        ds = find_dataset(session, project_id, dataset_name)
        out = []
        for n, it in enumerate(items, start=1):
            if not isinstance(it, Mapping):
                raise InvalidRequest(f"row {n}: an item must be an object")
            try:
                item = upsert_item_in(
                    session, ds, masker=masker, item_id=it.get("id"), input=it.get("input"),
                    expected_output=it.get("expectedOutput"), metadata=it.get("metadata"),
                    source_trace_id=it.get("sourceTraceId"), source_observation_id=it.get("sourceObservationId"),
                    status=it.get("status"), now=now,
                )
            except InvalidRequest as exc:
                raise InvalidRequest(f"row {n}: {exc.message}") from exc
            out.append(item_to_api(item, ds.name))
        return out


def add_items_from_traces(
    sessions: sessionmaker[Session], olap: Olap, *, masker: Masker | None, project_id: str, dataset_name: str,
    sources: Iterable[tuple[str, str | None]], metadata: Any = None,
) -> list[dict[str, Any]]:
    """One item per (trace_id, observation_id or None): the observation's (else the trace's) input
    becomes the item's input and its output the expected output; the source ids are kept. A
    source that does not exist (yet) in the project is a 404 naming it; nothing is stored then."""
    sources = list(sources)
    obs_keys = [(t, o) for t, o in sources if o]
    obs = observations_by_key(olap, project_id, obs_keys) if obs_keys else {}
    trace_ids = [t for t, o in sources if not o]
    traces = trace_summaries(olap, project_id, trace_ids) if trace_ids else {}
    rows = []
    for trace_id, obs_id in sources:
        src = obs.get((trace_id, obs_id)) if obs_id else traces.get(trace_id)
        if src is None:
            what = f"observation {obs_id!r} of trace {trace_id!r}" if obs_id else f"trace {trace_id!r}"
            raise NotFound(f"{what} not found")
        rows.append({"input": src["input"], "expectedOutput": src["output"], "metadata": metadata,
                     "sourceTraceId": trace_id, "sourceObservationId": obs_id})
    return bulk_add_items(sessions, masker=masker, project_id=project_id, dataset_name=dataset_name, items=rows)


# ---- uploads -----------------------------------------------------------------------------------

def _records(data: bytes) -> tuple[list[dict[str, Any]], str]:
    """The rows of an upload as dicts, and its format: "json" (an array of objects, or one object
    per line) or "csv" (a header row; `,`, `;` or tab separated)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidRequest(f"the upload is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    text = data.decode("utf-8-sig", errors="strict") if data else ""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            parsed = orjson.loads(stripped)
            records = parsed if isinstance(parsed, list) else [parsed]
        except orjson.JSONDecodeError:
            try:
                records = [orjson.loads(line) for line in stripped.splitlines() if line.strip()]
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"the upload is neither JSON nor JSON Lines: {exc}") from exc
        for n, r in enumerate(records, start=1):
            if not isinstance(r, dict):
                raise InvalidRequest(f"row {n}: each JSON record must be an object")
        return records, "json"
    if not stripped:
        raise InvalidRequest("the upload is empty")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames:
        raise InvalidRequest("the CSV upload has no header row")
    records = []
    for n, row in enumerate(reader, start=1):
        if None in row:
            raise InvalidRequest(f"row {n}: more values than header columns")
        records.append(dict(row))
    return records, "csv"


def upload_columns(data: bytes) -> list[str]:
    """The columns (CSV header, or keys of the JSON records) of an upload, to build a mapping."""
    records, _ = _records(data)
    seen: dict[str, None] = {}
    for r in records[:1000]:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def _cell(value: Any, fmt: str) -> Any:
    """CSV cells that hold JSON (objects, arrays, numbers, booleans) become those values."""
    if fmt != "csv" or not isinstance(value, str):
        return value
    s = value.strip()
    if s and (s[0] in '{["-0123456789' or s in ("true", "false", "null")):
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            return value
    return value


def parse_upload(data: bytes, mapping: Mapping[str, Sequence[str] | str] | None = None) -> list[dict[str, Any]]:
    """Items from a CSV or JSON upload, ready for `bulk_add_items`.

    `mapping` maps item fields (input, expectedOutput, metadata) to one column or a list of
    columns: one column gives that column's value (CSV cells holding JSON are parsed), several give
    an object {column: value}. Without a mapping, columns named input, expectedOutput (or
    expected_output) and metadata are used; if there are none, every column goes to input. A
    mapped column missing from the upload is a 400; so is a row with no input."""
    records, fmt = _records(data)
    if len(records) > MAX_UPLOAD_ROWS:
        raise InvalidRequest(f"the upload has {len(records)} rows; at most {MAX_UPLOAD_ROWS} are allowed")
    columns = upload_columns(data) if records else []
    if mapping is None:
        found = {_ITEM_KEYS[c]: [c] for c in columns if c in _ITEM_KEYS}
        resolved: dict[str, list[str]] = found or {"input": columns}
    else:
        resolved = {}
        for fld, cols in mapping.items():
            if fld not in FIELDS:
                raise InvalidRequest(f"mapping key {fld!r} must be one of {', '.join(FIELDS)}")
            cols = [cols] if isinstance(cols, str) else list(cols)
            missing = [c for c in cols if c not in columns]
            if missing:
                raise InvalidRequest(f"mapping for {fld} names column(s) not in the upload: {', '.join(missing)}"
                                     f" (columns: {', '.join(columns)})")
            if cols:
                resolved[fld] = cols
    if "input" not in resolved:
        raise InvalidRequest("map at least one column to input")
    items = []
    for n, rec in enumerate(records, start=1):
        item: dict[str, Any] = {}
        for fld, cols in resolved.items():
            if len(cols) == 1:
                item[fld] = _cell(rec.get(cols[0]), fmt)
            else:
                item[fld] = {c: _cell(rec.get(c), fmt) for c in cols}
        if item.get("input") in (None, ""):
            raise InvalidRequest(f"row {n}: input is empty")
        items.append(item)
    return items
