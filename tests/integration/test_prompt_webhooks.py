"""Prompt webhooks end to end on both stacks: configured in the project settings (secret shown
once), a local HTTP receiver that checks the x-langfuse-signature, fails the first attempt and sees
the retry; created, updated (labels) and deleted versions; the delivery log in the UI."""

from __future__ import annotations

import html
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from fastapi.testclient import TestClient

from owlscope.app import create_app
from owlscope.integrations import webhooks
from owlscope.prompts.model import PromptInput
from support.web import WebUser


class Receiver:
    """Answers 500 to the first request of each event, then 200; keeps what it received."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[dict] = []
        self.seen: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["content-length"]))
                valid = webhooks.verify(body, self.headers.get("x-langfuse-signature", ""), outer.secret)
                event = orjson.loads(body)
                n = outer.seen[event["id"]] = outer.seen.get(event["id"], 0) + 1
                outer.received.append({"valid": valid, "event": event, "attempt": n,
                                       "signature": self.headers.get("x-langfuse-signature")})
                self.send_response(500 if n == 1 else 200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait(self, predicate, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, self.received
            time.sleep(0.05)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def test_signature_format() -> None:
    header = webhooks.sign(b'{"a":1}', "s3cret", 1700000000)
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert webhooks.verify(b'{"a":1}', header, "s3cret")
    assert not webhooks.verify(b'{"a":2}', header, "s3cret") and not webhooks.verify(b'{"a":1}', header, "other")
    assert not webhooks.verify(b'{"a":1}', "garbage", "s3cret")


def test_webhook_delivery_with_retry(make_settings, stack, receiver, monkeypatch) -> None:
    monkeypatch.setattr(webhooks, "RETRY_BASE_SECONDS", 0.3)
    app = create_app(make_settings(stack, encryption_key="5e" * 32), run_worker=True)
    with TestClient(app):
        services = app.state.services
        owner = WebUser(app)
        owner.sign_up("owner@example.com", name="Owner")
        pid = owner.onboard("Acme", "Hooks")
        base = f"/project/{pid}/settings/integrations"
        page = owner.get(base)
        assert page.status_code == 200 and "data-webhook-empty" in page.text

        bad = owner.post(f"{base}/webhook", {"url": "ftp://nowhere"})
        assert bad.status_code == 400 and "http" in html.unescape(bad.text)
        made = owner.post(f"{base}/webhook", {"url": receiver.url})
        assert made.status_code == 200 and "data-webhook-secret" in made.text
        secret = re.search(r"whsec_[A-Za-z0-9_-]+", made.text).group(0)
        receiver.secret = secret
        later = html.unescape(owner.get(base).text)
        assert secret not in later and receiver.url in later and secret[-4:] in later  # shown once, then a hint

        # A prompt version created, then relabelled, then deleted: three events, each retried once.
        services.prompts.create(pid, PromptInput(name="greeting", type="text", prompt="Hi {{name}}"))
        receiver.wait(lambda: any(r["attempt"] == 2 and r["event"]["action"] == "created" for r in receiver.received))
        services.prompts.update_labels(pid, "greeting", 1, ["production"])
        services.prompts.delete(pid, "greeting", version=1)
        receiver.wait(lambda: sum(r["attempt"] == 2 for r in receiver.received) == 3)

        assert all(r["valid"] for r in receiver.received), receiver.received
        # Deliveries run side by side, so they may arrive in any order; the events carry their time.
        firsts = sorted((r for r in receiver.received if r["attempt"] == 1), key=lambda r: r["event"]["timestamp"])
        assert [r["event"]["action"] for r in firsts] == ["created", "updated", "deleted"]
        retried = {r["event"]["id"]: r["event"] for r in receiver.received if r["attempt"] == 2}
        assert {e["id"] for e in (r["event"] for r in firsts)} == set(retried)  # the same event, sent again
        event = firsts[0]["event"]
        assert event["type"] == "prompt-version" and event["apiVersion"] == "v1"
        assert event["prompt"]["name"] == "greeting" and event["prompt"]["version"] == 1
        assert "production" in firsts[1]["event"]["prompt"]["labels"]

        def log_done() -> bool:
            rows = webhooks.list_deliveries(services, pid)
            return len(rows) == 3 and all(r["status"] == "delivered" for r in rows)

        receiver.wait(log_done)
        rows = webhooks.list_deliveries(services, pid)
        assert [r["action"] for r in rows] == ["deleted", "updated", "created"]
        assert all(r["attempts"] == 2 and r["statusCode"] == 200 for r in rows)
        log = owner.get(base).text
        assert log.count('data-status="delivered"') == 3 and "greeting v1" in log

        # Deleted: prompt changes record no more deliveries.
        assert owner.post(f"{base}/webhook/delete", {}).status_code == 303
        services.prompts.create(pid, PromptInput(name="quiet", type="text", prompt="x"))
        assert len(webhooks.list_deliveries(services, pid)) == 3


def test_failing_endpoint_gives_up_after_max_attempts(make_settings, monkeypatch) -> None:
    monkeypatch.setattr(webhooks, "RETRY_BASE_SECONDS", 0.05)
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 3)
    app = create_app(make_settings("embedded"), run_worker=True)
    with TestClient(app):
        services = app.state.services
        owner = WebUser(app)
        owner.sign_up("owner@example.com")
        pid = owner.onboard("Acme", "Dead")
        webhooks.configure_webhook(services, pid, "http://127.0.0.1:9/closed")
        services.prompts.create(pid, PromptInput(name="p", type="text", prompt="x"))
        deadline = time.monotonic() + 20
        while (rows := webhooks.list_deliveries(services, pid))[0]["status"] != "failed":
            assert time.monotonic() < deadline, rows
            time.sleep(0.05)
        assert rows[0]["attempts"] == 3 and rows[0]["statusCode"] is None and rows[0]["error"]
        assert webhooks.sweep(services) == 0  # nothing pending is left to retry
