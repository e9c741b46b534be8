"""Helpers of the dataset and experiment pages: finding a dataset by id, item and run counts,
JSON form fields, values shown as text, the upload's column mapping and what the comparison of
runs highlights. Only `dataset_by_id` and `dataset_counts` read the store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select

from owlscope.datasets.store import dataset_to_api, find_dataset_by_id
from owlscope.datasets.uploads import FIELDS
from owlscope.errors import InvalidRequest, NotFound
from owlscope.services import Services
from owlscope.storage.oltp.dataset_models import DatasetItem, DatasetRun
from owlscope.web.views.prompt_parts import word_segments

_JSONISH = re.compile(r"^\s*([{\[\"]|-?\d|true\b|false\b|null\b)")
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
IGNORE = "ignore"
MAX_WORD_DIFF = 20_000  # characters: longer outputs are compared, not diffed word by word
KNOWN_COLUMNS = {"input": "input", "expectedOutput": "expectedOutput", "expected_output": "expectedOutput",
                 "metadata": "metadata"}


def dataset_by_id(services: Services, project_id: str, dataset_id: str) -> dict[str, Any]:
    """The dataset (API shape) with this id in the project, else NotFound."""
    with services.sessions() as session:
        ds = find_dataset_by_id(session, project_id, dataset_id)
        if ds is None:
            raise NotFound("Dataset not found in this project")
        return dataset_to_api(ds)


def dataset_counts(services: Services, project_id: str, dataset_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """dataset id -> {active, archived, runs, lastRun} for the datasets list."""
    ids = list(dataset_ids)
    out: dict[str, dict[str, Any]] = {i: {"active": 0, "archived": 0, "runs": 0, "lastRun": None} for i in ids}
    if not ids:
        return out
    with services.sessions() as session:
        for ds_id, status, n in session.execute(
            select(DatasetItem.dataset_id, DatasetItem.status, func.count())
            .where(DatasetItem.project_id == project_id, DatasetItem.dataset_id.in_(ids))
            .group_by(DatasetItem.dataset_id, DatasetItem.status)
        ):
            out[ds_id]["archived" if status == "ARCHIVED" else "active"] += n
        for ds_id, n, last in session.execute(
            select(DatasetRun.dataset_id, func.count(), func.max(DatasetRun.created_at))
            .where(DatasetRun.project_id == project_id, DatasetRun.dataset_id.in_(ids))
            .group_by(DatasetRun.dataset_id)
        ):
            out[ds_id]["runs"], out[ds_id]["lastRun"] = n, last
    return out


# ---- JSON in forms ------------------------------------------------------------------------------
def parse_value(text: str, what: str) -> Any:
    """A form field holding an item's input, expected output or metadata: empty is None; text that
    looks like JSON must be valid JSON; anything else is kept as a plain string."""
    if text is None or not text.strip():
        return None
    if _JSONISH.match(text):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if text.lstrip()[:1] in "{[\"":
                raise InvalidRequest(
                    f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}). "
                    "Write plain text without a leading { [ or \" to store it as a string."
                ) from None
    return text.replace("\r\n", "\n")


def parse_schema(text: str, what: str) -> Any:
    """A JSON Schema field: empty is None (no schema), otherwise a JSON object."""
    if not (text or "").strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object (a JSON Schema)")
    return value


def as_text(value: Any) -> str:
    """A stored value as the form shows it, so that `parse_value` reads it back unchanged: plain
    strings as they are (also "3 apples": a leading digit alone does not make it JSON); strings that
    would read back as JSON (e.g. "42", "true", '"quoted"') and everything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str) and not _reads_as_json(value):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _reads_as_json(text: str) -> bool:
    """Whether `parse_value` would read this text as JSON rather than keep it as a string."""
    if not _JSONISH.match(text):
        return False
    if text.lstrip()[:1] in "{[\"":
        return True  # parse_value refuses invalid JSON there, so show it quoted
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def output_text(value: Any) -> str:
    """An output for display: a chat message's content, a string as is, anything else as JSON."""
    if isinstance(value, dict) and set(value) <= {"role", "content"} and isinstance(value.get("content"), str):
        return value["content"]
    return as_text(value)


# ---- uploads ------------------------------------------------------------------------------------
def check_upload_id(upload_id: str) -> str:
    if not _UPLOAD_ID.match(upload_id or ""):
        raise NotFound("This upload has expired; upload the file again")
    return upload_id


def upload_key(project_id: str, upload_id: str) -> str:
    return f"datasets/uploads/{project_id}/{check_upload_id(upload_id)}"


def default_mapping(columns: Sequence[str]) -> list[str]:
    """Per column, the item field it fills by default: a column named like a field fills it (the
    first one, when two names mean the same field; the rest are ignored); without any, every
    column goes to input."""
    known = [KNOWN_COLUMNS.get(c) for c in columns]
    if not any(known):
        return ["input"] * len(columns)
    out: list[str] = []
    for k in known:
        out.append(k if k and k not in out else IGNORE)
    return out


def mapping_from_form(columns: Sequence[str], choices: Sequence[str]) -> dict[str, list[str]]:
    """`{field: [columns]}` from one choice (a field or "ignore") per column."""
    if len(choices) != len(columns):
        raise InvalidRequest("Choose what each column fills (the form did not match the upload)")
    mapping: dict[str, list[str]] = {}
    for col, choice in zip(columns, choices, strict=True):
        if choice == IGNORE:
            continue
        if choice not in FIELDS:
            raise InvalidRequest(f"Column {col!r}: choose one of {', '.join(FIELDS)} or ignore")
        mapping.setdefault(choice, []).append(col)
    if "input" not in mapping:
        raise InvalidRequest("Map at least one column to input")
    return mapping


# ---- comparing runs -----------------------------------------------------------------------------
def _key(value: Any) -> str:
    return json.dumps(output_text(value) if value is not None else None, sort_keys=True, ensure_ascii=False)


def compare_rows(items: list[dict[str, Any]], run_names: list[str]) -> list[dict[str, Any]]:
    """The compared items, each with what the page highlights: `differs` (the runs' outputs are
    not all the same) and per run `marks`: `matches` (the output equals the expected output),
    `best`/`worst` (the score names on which this run is highest/lowest, when the runs' values
    differ) and `segments` (its output as (text, changed) runs against the first run's output)."""
    out = []
    for item in items:
        cells = item["runs"]
        present = [n for n in run_names if cells.get(n) is not None]
        outputs = {_key(cells[n].get("output")) for n in present}
        expected = _key(item.get("expectedOutput")) if item.get("expectedOutput") is not None else None
        marks: dict[str, dict[str, Any]] = {
            n: {"matches": False, "best": set(), "worst": set(), "segments": ()} for n in run_names}
        for n in present:
            marks[n]["matches"] = expected is not None and _key(cells[n].get("output")) == expected
        if len(present) > 1 and len(outputs) > 1:  # the words each later run changed vs the first
            first = output_text(cells[present[0]].get("output"))
            for n in present[1:]:
                text = output_text(cells[n].get("output"))
                if text != first and max(len(first), len(text)) <= MAX_WORD_DIFF:
                    marks[n]["segments"] = word_segments(first, text)[1]
        names = sorted({s for n in present for s in cells[n]["scores"]})
        for s in names:
            vals = {n: cells[n]["scores"][s] for n in present if isinstance(cells[n]["scores"].get(s), int | float)}
            if len(vals) > 1 and len(set(vals.values())) > 1:
                hi, lo = max(vals.values()), min(vals.values())
                for n, v in vals.items():
                    if v == hi:
                        marks[n]["best"].add(s)
                    elif v == lo:
                        marks[n]["worst"].add(s)
        out.append({**item, "differs": len(present) > 1 and len(outputs) > 1, "marks": marks})
    return out
