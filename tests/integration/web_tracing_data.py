"""Realistic tracing data for the UI tests, inserted straight into OLAP with the Arrow row builders.

`seed(olap, project_id)` writes, relative to `now`:
- "chat-turn" traces t-chat-1..3 in session "sess-1" (user alice, production): a root span with a
  generation (chat messages in and out, gpt-4o usage and cost), a tool span and a WARNING event;
- "rag-answer" t-rag (user bob, staging, session sess-2): an ERROR generation ("Timeout ...");
- "summarize" t-sum (no user, production, tags ["batch"]);
- scores: quality (numeric) on t-chat-1/2, helpful (boolean) on t-chat-1, tone (categorical) on an
  observation of t-chat-1, and a session score on sess-1.
`bulk(olap, project_id, n)` adds n small traces "bulk-i", one second apart (for paging).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)
from owlscope.storage.olap.client import Olap


def insert(olap: Olap, traces=(), observations=(), scores=()) -> None:
    if traces:
        olap.insert_arrow("trace_events", traces_table(list(traces)))
    if observations:
        olap.insert_arrow("observation_events", observations_table(list(observations)))
    if scores:
        olap.insert_arrow("scores", scores_table(list(scores)))


@dataclass
class Seeded:
    project_id: str
    now: datetime
    chat_ids: list[str]
    generation_ids: list[str]


QUESTIONS = [
    ("How do I reset my password?", "Open Settings → Security and choose “Reset password”. You will get an email "
                                    "with a link that is valid for one hour."),
    ("And if I no longer have access to that email?", "Then contact support with your account id; we verify "
                                                       "your identity and change the address for you."),
    ("Thanks! Can I enable two-factor authentication too?", "Yes: Settings → Security → Two-factor. Scan the "
                                                             "QR code with an authenticator app."),
]


def seed(olap: Olap, project_id: str, now: datetime | None = None, *, prefix: str = "") -> Seeded:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    traces, obs, scores = [], [], []
    chat_ids, gen_ids = [], []
    history: list[dict] = [{"role": "system", "content": "You are a helpful support assistant."}]
    for i, (q, a) in enumerate(QUESTIONS, start=1):
        t0 = now - timedelta(minutes=30) + timedelta(minutes=2 * i)
        tid, root, gen, tool, evt = (f"{prefix}t-chat-{i}", f"{prefix}o-root-{i}", f"{prefix}o-gen-{i}",
                                     f"{prefix}o-tool-{i}", f"{prefix}o-evt-{i}")
        chat_ids.append(tid)
        gen_ids.append(gen)
        history = [*history, {"role": "user", "content": q}]
        traces.append(TraceEvent(
            project_id, tid, t0, timestamp=t0, name="chat-turn", user_id="alice", session_id="sess-1",
            environment="production", release="2024.11", version="v3", tags=["support", "web"],
            input=json.dumps({"question": q}), output=json.dumps({"answer": a}),
            metadata=json.dumps({"tenant": "acme", "plan": "pro"})))
        obs += [
            ObservationEvent(project_id, root, tid, t0, type="SPAN", name="handle-request", start_time=t0,
                             end_time=t0 + timedelta(seconds=2.4), environment="production",
                             input=json.dumps({"question": q}), output=json.dumps({"answer": a})),
            ObservationEvent(project_id, tool, tid, t0, type="TOOL", name="search-docs", parent_observation_id=root,
                             start_time=t0 + timedelta(milliseconds=50), end_time=t0 + timedelta(milliseconds=420),
                             environment="production", input=json.dumps({"query": q}),
                             output=json.dumps([{"doc": "security.md", "score": 0.91}])),
            ObservationEvent(project_id, gen, tid, t0, type="GENERATION", name="llm-call",
                             parent_observation_id=root, start_time=t0 + timedelta(milliseconds=450),
                             end_time=t0 + timedelta(seconds=2.3),
                             completion_start_time=t0 + timedelta(milliseconds=900), model="gpt-4o",
                             model_parameters=json.dumps({"temperature": 0.2, "max_tokens": 512}),
                             input=json.dumps(history), output=json.dumps({"role": "assistant", "content": a}),
                             usage_details={"input": 120 * i, "output": 40 + i, "total": 120 * i + 40 + i},
                             cost_details={"input": 0.0003 * i, "output": 0.0004, "total": 0.0003 * i + 0.0004},
                             prompt_name="support-answer", prompt_version=2, environment="production"),
            ObservationEvent(project_id, evt, tid, t0, type="EVENT", name="cache-miss", parent_observation_id=root,
                             start_time=t0 + timedelta(milliseconds=30), level="WARNING",
                             status_message="embedding cache cold", environment="production"),
        ]
        history = [*history, {"role": "assistant", "content": a}]
    t_rag = now - timedelta(minutes=10)
    traces.append(TraceEvent(project_id, f"{prefix}t-rag", t_rag, timestamp=t_rag, name="rag-answer", user_id="bob",
                             session_id="sess-2", environment="staging", tags=["rag"],
                             input=json.dumps("What is our refund policy?")))
    obs.append(ObservationEvent(project_id, f"{prefix}o-rag-gen", f"{prefix}t-rag", t_rag, type="GENERATION",
                                name="answer", start_time=t_rag, end_time=t_rag + timedelta(seconds=30),
                                model="claude-3-5-sonnet", level="ERROR",
                                status_message="Timeout from provider after 30s", environment="staging",
                                usage_details={"input": 900, "output": 0, "total": 900},
                                cost_details={"total": 0.0027}))
    t_sum = now - timedelta(minutes=5)
    traces.append(TraceEvent(project_id, f"{prefix}t-sum", t_sum, timestamp=t_sum, name="summarize",
                             environment="production", tags=["batch"], input=json.dumps("x" * 3000),
                             output=json.dumps("A short summary.")))
    obs.append(ObservationEvent(project_id, f"{prefix}o-sum", f"{prefix}t-sum", t_sum, type="GENERATION",
                                name="summarize-llm", start_time=t_sum, end_time=t_sum + timedelta(seconds=1.1),
                                model="gpt-4o-mini", environment="production",
                                usage_details={"input": 800, "output": 60, "total": 860},
                                cost_details={"total": 0.00016}))
    ts = now - timedelta(minutes=1)
    scores += [
        ScoreEvent(project_id, f"{prefix}sc-q1", ts, ts, "quality", "NUMERIC", "API", value=0.9,
                   trace_id=chat_ids[0], environment="production"),
        ScoreEvent(project_id, f"{prefix}sc-q2", ts, ts, "quality", "NUMERIC", "EVAL", value=0.4,
                   trace_id=chat_ids[1], environment="production", comment="misses the point"),
        ScoreEvent(project_id, f"{prefix}sc-h1", ts, ts, "helpful", "BOOLEAN", "API", value=1.0,
                   string_value="True", trace_id=chat_ids[0], environment="production"),
        ScoreEvent(project_id, f"{prefix}sc-t1", ts, ts, "tone", "CATEGORICAL", "API", string_value="friendly",
                   trace_id=chat_ids[0], observation_id=gen_ids[0], environment="production"),
        ScoreEvent(project_id, f"{prefix}sc-s1", ts, ts, "resolved", "NUMERIC", "API", value=1.0,
                   session_id="sess-1", environment="production"),
    ]
    insert(olap, traces, obs, scores)
    return Seeded(project_id, now, chat_ids, gen_ids)


def bulk(olap: Olap, project_id: str, n: int, *, start: datetime | None = None, same_second: bool = False,
         environment: str = "production", name: str = "bulk") -> list[str]:
    """n traces with one span each; newest last. `same_second`: all share one start (ties)."""
    start = (start or datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    traces, obs, ids = [], [], []
    for i in range(n):
        ts = start if same_second else start + timedelta(seconds=i)
        tid = f"{name}-{i:04d}"
        ids.append(tid)
        traces.append(TraceEvent(project_id, tid, ts, timestamp=ts, name=name, user_id=f"user-{i % 7}",
                                 environment=environment))
        obs.append(ObservationEvent(project_id, f"{tid}-o", tid, ts, type="SPAN", name="work", start_time=ts,
                                    end_time=ts + timedelta(milliseconds=100 + i), environment=environment))
    insert(olap, traces, obs)
    return ids


# ---- an app with a signed-in owner -----------------------------------------------------------
@dataclass
class Site:
    app: object
    owner: object  # support.web.WebUser
    project_id: str

    @property
    def services(self):
        return self.app.state.services

    @property
    def olap(self) -> Olap:
        return self.services.olap

    @property
    def base(self) -> str:
        return f"/project/{self.project_id}"

    def add_member(self, email: str, role: str):
        """A user with `role` in the project's organization, signed in (a WebUser)."""
        from owlscope.auth.passwords import hash_password
        from owlscope.storage.oltp.models import OrganizationMembership, Project, User
        from support.web import PASSWORD, WebUser

        with self.services.sessions() as s, s.begin():
            org_id = s.get(Project, self.project_id).org_id
            user = User(email=email, password_hash=hash_password(PASSWORD))
            s.add(user)
            s.flush()
            s.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=role))
        member = WebUser(self.app)
        assert member.sign_in(email).status_code == 303
        return member


def wait_scores(site: Site, predicate, timeout: float = 10, **params) -> list[dict]:
    """The project's scores (list_scores_v2 params) once `predicate(scores)` holds (the worker writes
    them a moment after they are accepted)."""
    import time

    from owlscope.tracing.scores import list_scores_v2

    deadline = time.monotonic() + timeout
    while True:
        found = list_scores_v2(site.olap, site.project_id, limit=100, fields="score", **params)["data"]
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"scores did not arrive: {found}")
        time.sleep(0.1)


def open_site(make_settings, stack: str = "embedded", *, run_worker: bool = False):
    """A context manager: the app running (TestClient lifespan), an owner signed up with a project."""
    from contextlib import contextmanager

    from fastapi.testclient import TestClient

    from owlscope.app import create_app
    from support.web import WebUser

    @contextmanager
    def cm():
        app = create_app(make_settings(stack), run_worker=run_worker)
        with TestClient(app):
            owner = WebUser(app)
            owner.sign_up("owner@example.com", name="Olive Owner")
            project_id = owner.onboard("Acme", "Support bot")
            yield Site(app, owner, project_id)

    return cm()


def trace_ids_in(html: str) -> list[str]:
    """Trace ids of the table rows, in order."""
    import re
    from urllib.parse import unquote

    return [unquote(m) for m in re.findall(r'<tr data-href="/project/[^/"]+/traces/([^"?]+)"', html)]


def next_link(html: str) -> str | None:
    import html as h
    import re

    m = re.search(r'<a class="btn btn-secondary btn-sm" href="([^"]+)" hx-get="[^"]*" hx-target="#trace-results" '
                  r'hx-push-url="true" rel="next"', html)
    return h.unescape(m.group(1)) if m else None
