"""Annotation and comments on traces, observations and sessions.

The annotation panel writes scores of the project's score configs with source ANNOTATION and the
signed-in user as author, through the same ingestion path as the public scores API
(`accept_events` with a `score-create` event): the score is stored durably at once and becomes
readable after the worker's next flush, so the panel shows what was saved right away. A subject
has one annotation score per config: setting it again updates that score (same id).

VIEWERs see annotations and comments; MEMBER and up write them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.errors import InvalidRequest, NotFound, OwlscopeError
from owlscope.ingestion.errors import InvalidPayload
from owlscope.ingestion.scores import normalize_score_body
from owlscope.pipeline.accept import accept_events
from owlscope.pipeline.masking import masker_for
from owlscope.services import Services
from owlscope.tracing.observations import get_observation
from owlscope.tracing.scores import delete_score, get_score, list_scores_v2
from owlscope.tracing.session_stats import session_traces
from owlscope.tracing.traces import fetch_traces
from owlscope.tracing_config.comments import create_comment, list_comments
from owlscope.tracing_config.score_configs import list_score_configs
from owlscope.web import numbers
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render, safe_next
from owlscope.web.views.tracing_common import user_names
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
NextUrl = Annotated[str, Form(alias="next")]
KINDS = ("trace", "observation", "session")
_SCORE_NS = uuid.UUID("6c1d2a44-5b0f-4c55-9a51-0d7f3f0a9e21")


@dataclass(frozen=True)
class Subject:
    """What is annotated or commented on, checked to exist in the project."""

    kind: str  # trace | observation | session
    id: str
    trace_id: str | None
    environment: str

    @property
    def dom_id(self) -> str:
        return f"{self.kind}-{hashlib.sha1(self.id.encode()).hexdigest()[:12]}"

    @property
    def comment_type(self) -> str:
        return self.kind.upper()

    def score_fields(self) -> dict[str, str]:
        if self.kind == "session":
            return {"sessionId": self.id}
        if self.kind == "observation":
            return {"traceId": self.trace_id or "", "observationId": self.id}
        return {"traceId": self.id}

    def owns(self, score: dict[str, Any]) -> bool:
        if self.kind == "session":
            return score.get("sessionId") == self.id and not score.get("traceId")
        if self.kind == "observation":
            return score.get("observationId") == self.id and score.get("traceId") == self.trace_id
        return score.get("traceId") == self.id and not score.get("observationId")


def resolve_subject(services: Services, project_id: str, kind: str, object_id: str,
                    trace_id: str | None = None) -> Subject:
    """The subject, or NotFound when it is not in this project (another project's ids included)."""
    kind = (kind or "").lower()
    if kind not in KINDS or not object_id:
        raise InvalidRequest("Annotate a trace, an observation or a session")
    olap = services.olap
    if kind == "trace":
        row = fetch_traces(olap, project_id, [object_id], io=False).get(object_id)
        if row is None:
            raise NotFound("Trace not found in this project")
        return Subject("trace", object_id, object_id, row["t_env"] or "default")
    if kind == "observation":
        obs = get_observation(olap, project_id, object_id)
        if obs is None or (trace_id and obs["traceId"] != trace_id):
            raise NotFound("Observation not found in this project")
        return Subject("observation", object_id, obs["traceId"], obs["environment"] or "default")
    traces = session_traces(olap, project_id, [object_id])
    if not traces:
        raise NotFound("Session not found in this project")
    first = min(traces, key=lambda t: t["t_ts"])
    return Subject("session", object_id, None, first["t_env"] or "default")


def subject_scores(services: Services, project_id: str, subject: Subject) -> list[dict[str, Any]]:
    """Every score of the subject itself (any source), newest first."""
    if subject.kind == "session":
        found = list_scores_v2(services.olap, project_id, session_id=subject.id, limit=100, fields="score")
    else:
        found = list_scores_v2(services.olap, project_id, trace_id=subject.trace_id or subject.id, limit=100,
                               fields="score")
    return [s for s in found["data"] if subject.owns(s)]


def active_configs(services: Services, project_id: str) -> list[dict[str, Any]]:
    page = list_score_configs(services.sessions, project_id=project_id, page=PageRequest(1, 100))
    return sorted((c for c in page.data if not c["isArchived"]), key=lambda c: c["name"].lower())


def panel_context(services: Services, ctx: ProjectContext, subject: Subject, scores: list[dict[str, Any]] | None,
                  *, saved: str | None = None, error: str | None = None,
                  error_config: str | None = None) -> dict[str, Any]:
    """Values of annotations/_panel.html: the configs with their current annotation score."""
    if scores is None:
        scores = subject_scores(services, ctx.project.id, subject)
    configs = active_configs(services, ctx.project.id)
    current: dict[str, dict[str, Any]] = {}
    for s in sorted(scores, key=lambda s: s.get("updatedAt") or "", reverse=True):
        if s.get("source") != "ANNOTATION":
            continue
        for c in configs:
            if c["id"] not in current and (s.get("configId") == c["id"] or (not s.get("configId")
                                                                          and s.get("name") == c["name"])):
                current[c["id"]] = s
    authors = user_names(services, {s.get("authorUserId") for s in current.values() if s.get("authorUserId")})
    return {"subject": subject, "configs": configs, "current": current, "authors": authors,
            "can_annotate": ctx.can("MEMBER"), "saved": saved, "error": error, "error_config": error_config,
            "project_url": ctx.url}


def comments_context(services: Services, ctx: ProjectContext, subject: Subject, *,
                     error: str | None = None, draft: str = "") -> dict[str, Any]:
    page = list_comments(services.sessions, project_id=ctx.project.id, object_type_filter=subject.comment_type,
                         object_id=subject.id, page=PageRequest(1, 100))
    authors = user_names(services, {c["authorUserId"] for c in page.data if c["authorUserId"]})
    return {"subject": subject, "comments": page.data, "authors": authors, "can_comment": ctx.can("MEMBER"),
            "error": error, "draft": draft, "project_url": ctx.url}


# ---- writing a score -------------------------------------------------------------------------
def parse_value(config: dict[str, Any], raw: str) -> float | str:
    """The form's value for a config: a number in range, a category label, or true/false (1/0)."""
    text = (raw or "").strip()
    if not text:
        raise InvalidRequest(f"Choose a value for {config['name']}")
    dt = config["dataType"]
    if dt == "NUMERIC":
        try:
            number = float(text)
        except ValueError:
            raise InvalidRequest(f"{config['name']} needs a number") from None
        lo, hi = config.get("minValue"), config.get("maxValue")
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidRequest(f"{config['name']} needs a finite number")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise InvalidRequest(f"{config['name']} must be between {numbers.compact(lo) if lo is not None else '−∞'}"
                                 f" and {numbers.compact(hi) if hi is not None else '∞'}")
        return number
    if dt == "BOOLEAN":
        if text.lower() in ("1", "true", "yes"):
            return 1
        if text.lower() in ("0", "false", "no"):
            return 0
        raise InvalidRequest(f"{config['name']} is true or false")
    labels = [c["label"] for c in config.get("categories") or []]
    if text not in labels:
        raise InvalidRequest(f"{config['name']} must be one of: {', '.join(labels)}")
    return text


def annotation_score_id(project_id: str, subject: Subject, config_id: str) -> str:
    return str(uuid.uuid5(_SCORE_NS, f"{project_id}|{subject.kind}|{subject.trace_id or ''}|{subject.id}|{config_id}"))


def write_annotation(services: Services, *, project_id: str, user_id: str, subject: Subject,
                     config: dict[str, Any], value: float | str, comment: str | None,
                     existing: dict[str, Any] | None, queue_id: str | None = None) -> dict[str, Any]:
    """Store an ANNOTATION score of `config` on the subject (from an annotation queue's review when
    `queue_id` is given); returns the score as it will read back."""
    label = None
    if config["dataType"] == "CATEGORICAL" and isinstance(value, str):
        # store the category's value with its label (rude=0, neutral=1, friendly=2: "friendly" is 2)
        label = value
        value = next(c["value"] for c in config.get("categories") or [] if c["label"] == label)
    body = {
        "id": existing["id"] if existing else annotation_score_id(project_id, subject, config["id"]),
        "name": config["name"], "value": value, "dataType": config["dataType"], "configId": config["id"],
        "source": "ANNOTATION", "authorUserId": user_id, "environment": subject.environment,
        **subject.score_fields(),
    }
    if label is not None:
        body["stringValue"] = label
    if queue_id:
        body["queueId"] = queue_id
    if comment:
        body["comment"] = comment
    try:
        score = normalize_score_body(body)
    except InvalidPayload as exc:
        raise InvalidRequest(exc.message) from exc
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    accept_events(services, project_id=project_id,
                  events=[{"id": str(uuid.uuid4()), "type": "score-create", "timestamp": now, "body": score}])
    if config["dataType"] == "BOOLEAN":
        string_value: str | None = "True" if value == 1 else "False"
    else:
        string_value = label if label is not None else (value if isinstance(value, str) else None)
    return {**score, "updatedAt": now, "stringValue": string_value}


def _subject_from_form(services: Services, ctx: ProjectContext, kind: str, object_id: str, trace_id: str) -> Subject:
    return resolve_subject(services, ctx.project.id, kind, object_id, trace_id or None)


def _panel(request: Request, values: dict[str, Any], status: int = 200) -> Response:
    return render(request, "annotations/_panel.html", {"values": values}, status_code=status)


def _panel_and_scores(request: Request, services: Services, values: dict[str, Any],
                      scores: list[dict[str, Any]]) -> Response:
    """The panel, and the subject's scores table swapped out of band (a trace's or an observation's
    page shows one), so the table shows what was just saved without a reload."""
    panel = _panel(request, values)
    subject: Subject = values["subject"]
    if subject.kind == "session":
        return panel
    authors = user_names(services, {s.get("authorUserId") for s in scores if s.get("authorUserId")})
    table = render(request, "traces/_scores.html", {"scores": scores, "authors": authors, "subject": subject,
                                                    "oob": True, "public_view": False})
    return Response(panel.body + table.body, media_type="text/html", headers={
        k: v for k, v in panel.headers.items() if k.lower() not in ("content-length", "content-type")})


@router.get("/project/{project_id}/annotate")
def annotation_panel(request: Request, ctx: ProjectCtx, services: WebServices, kind: str = "", id: str = "",
                     trace: str = "") -> Response:
    require_role(ctx, "VIEWER")
    subject = resolve_subject(services, ctx.project.id, kind, id, trace or None)
    return _panel(request, panel_context(services, ctx, subject, None))


@router.post("/project/{project_id}/annotate")
def annotate(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "", id: FormStr = "",
             trace: FormStr = "", config_id: FormStr = "", value: FormStr = "", comment: FormStr = "",
             next_url: NextUrl = "") -> Response:
    require_role(ctx, "MEMBER")
    subject = _subject_from_form(services, ctx, kind, id, trace)
    scores = subject_scores(services, ctx.project.id, subject)
    config = next((c for c in active_configs(services, ctx.project.id) if c["id"] == config_id), None)
    if config is None:
        raise NotFound("Score config not found (or archived) in this project")
    current = panel_context(services, ctx, subject, scores)["current"].get(config["id"])
    try:
        parsed = parse_value(config, value)
        if len(comment) > 2000:
            raise InvalidRequest("A comment on a score is at most 2000 characters")
        shown = write_annotation(services, project_id=ctx.project.id, user_id=ctx.user.id, subject=subject,
                                 config=config, value=parsed, comment=comment.strip() or None, existing=current)
    except OwlscopeError as exc:
        if not is_htmx(request):
            raise
        values = panel_context(services, ctx, subject, scores, error=exc.message, error_config=config["id"])
        return _panel(request, values, status=exc.status)
    scores = [s for s in scores if s["id"] != shown["id"]] + [shown]
    if not is_htmx(request):
        flash(request, f"Saved {config['name']}.")
        return redirect(request, safe_next(next_url, ctx.url))
    return _panel_and_scores(request, services, panel_context(services, ctx, subject, scores, saved=config["id"]),
                             scores)


@router.post("/project/{project_id}/annotate/clear")
def clear_annotation(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "",
                     id: FormStr = "", trace: FormStr = "", score_id: FormStr = "", next_url: NextUrl = "") -> Response:
    require_role(ctx, "MEMBER")
    subject = _subject_from_form(services, ctx, kind, id, trace)
    score = get_score(services.olap, ctx.project.id, score_id)
    if score is None or score.get("source") != "ANNOTATION" or not subject.owns(score):
        raise NotFound("Annotation not found on this object")
    delete_score(services.olap, ctx.project.id, score_id)
    if not is_htmx(request):
        flash(request, f"Removed {score['name']}.")
        return redirect(request, safe_next(next_url, ctx.url))
    scores = [s for s in subject_scores(services, ctx.project.id, subject) if s["id"] != score_id]
    return _panel_and_scores(request, services, panel_context(services, ctx, subject, scores), scores)


# ---- comments --------------------------------------------------------------------------------
@router.get("/project/{project_id}/comments")
def comments(request: Request, ctx: ProjectCtx, services: WebServices, kind: str = "", id: str = "",
             trace: str = "") -> Response:
    require_role(ctx, "VIEWER")
    subject = resolve_subject(services, ctx.project.id, kind, id, trace or None)
    return render(request, "annotations/_comments.html", {"values": comments_context(services, ctx, subject)})


@router.post("/project/{project_id}/comments")
def add_comment(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "", id: FormStr = "",
                trace: FormStr = "", content: FormStr = "", next_url: NextUrl = "") -> Response:
    require_role(ctx, "MEMBER")
    subject = _subject_from_form(services, ctx, kind, id, trace)
    try:
        create_comment(services.sessions, olap=None, masker=masker_for(services, ctx.project.id),
                       project_id=ctx.project.id, data={
            "objectType": subject.comment_type, "objectId": subject.id, "content": content,
            "authorUserId": ctx.user.id})
    except OwlscopeError as exc:
        if not is_htmx(request):
            raise
        values = comments_context(services, ctx, subject, error=exc.message, draft=content)
        return render(request, "annotations/_comments.html", {"values": values}, status_code=exc.status)
    if not is_htmx(request):
        flash(request, "Comment added.")
        return redirect(request, safe_next(next_url, ctx.url))
    return render(request, "annotations/_comments.html", {"values": comments_context(services, ctx, subject)})
