"""Media in a real browser: an app sends an image (chat input), audio (output), a PDF (metadata)
and a dataset item with an image through the official SDK; the trace, observation, session and
dataset pages show a thumbnail (full size on click), a player that loads the audio and a
download link that gives back the PDF; a shared session shows its media to a stranger only while
it is shared. Screenshots go to test-artifacts/screenshots/media-*.png."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from conftest import LiveServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support" / "sdk4_scripts"))
import media_flows  # noqa: E402

pytestmark = pytest.mark.browser
T = "media"


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    with LiveServer(make_settings(), run_worker=True) as srv:
        yield srv


def _key(server: LiveServer, project_id: str) -> tuple[str, str]:
    from owlscope.auth.keys import create_api_key

    with server.services.sessions() as session, session.begin():
        key, secret = create_api_key(session, project_id=project_id, salt=server.settings.salt)
        return key.public_key, secret


def _send(base: str, pk: str, sk: str, tag: str) -> dict[str, str]:
    from langfuse import Langfuse, propagate_attributes
    from langfuse.media import LangfuseMedia

    client = Langfuse(public_key=pk, secret_key=sk, base_url=base, flush_interval=0.2)
    session_id = f"photos-{tag}"
    question = {"question": "What is in this photo?", "photo": media_flows.PNG_URI}
    with client.start_as_current_observation(name="describe-photo", input=question) as root:
        with propagate_attributes(session_id=session_id):
            with client.start_as_current_observation(name="vision-llm", as_type="generation", model="gpt-4o", input=[
                    {"role": "user", "content": [{"type": "text", "text": "What is in this photo?"},
                                                 {"type": "image_url", "image_url": {"url": media_flows.PNG_URI}}]}
            ]) as gen:
                gen.update(output={"role": "assistant", "content": "A red rectangle."})
            with client.start_as_current_observation(name="speak", input={"text": "A red rectangle."}) as speak:
                speak.update(output={"audio": media_flows.WAV_URI}, metadata={
                    "report": LangfuseMedia(content_bytes=media_flows.PDF, content_type="application/pdf")})
        root.update(output={"answer": "A red rectangle."})
        trace_id = root.trace_id
    client.create_dataset(name=f"photos-{tag}")
    client.create_dataset_item(dataset_name=f"photos-{tag}", input={
        "image": LangfuseMedia(content_bytes=media_flows.PNG, content_type="image/png")})
    client.flush()  # never shutdown(): the SDK's state is process-wide
    return {"trace": trace_id, "session": session_id, "dataset": f"photos-{tag}"}


def _wait(base: str, auth: tuple[str, str], path: str, ready) -> dict:
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(f"{base}{path}", auth=auth, timeout=10)
        if r.status_code == 200 and ready(r.json()):
            return r.json()
        assert time.monotonic() < deadline, r.text[:500]
        time.sleep(0.2)


def _image_width(locator) -> int:
    locator.wait_for()
    locator.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=locator.element_handle())
    return locator.evaluate("img => img.naturalWidth")


def test_media_in_trace_session_dataset_and_shared_pages(server, new_page) -> None:
    base = server.url
    page = new_page()
    sign_up(page, base, email="ada@example.com", name="Ada Lovelace")
    project_id = onboard(page, org="Acme", project="Vision bot")
    pk, sk = _key(server, project_id)
    sent = _send(base, pk, sk, uuid.uuid4().hex[:8])
    _wait(base, (pk, sk), f"/api/public/traces/{sent['trace']}", lambda t: len(t["observations"]) >= 3)

    # ---- the trace: the root's input holds the photo -----------------------------------------
    page.goto(f"{base}/project/{project_id}/traces/{sent['trace']}")
    detail = page.locator("#detail")
    assert _image_width(detail.locator(".media-image img").first) == 64
    shot(page, T, "trace", full_page=False)
    detail.locator(".media-thumb").first.click()
    viewer = page.locator("#media-viewer")
    expect(viewer).to_be_visible()
    assert _image_width(viewer.locator("img.media-full")) == 64
    shot(page, T, "full-size", full_page=False)
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # ---- observations: the image in the chat, the audio plays, the PDF downloads --------------
    tree = page.get_by_label("Observation tree")
    tree.get_by_text("vision-llm").click()
    expect(detail.locator(".chat-user .media-image img")).to_have_count(1)
    assert _image_width(detail.locator(".chat-user .media-image img")) == 64
    shot(page, T, "observation-image", full_page=False)
    tree.get_by_text("speak").click()
    audio = detail.locator(".media-audio audio")
    expect(audio).to_have_count(1)
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    assert abs(audio.evaluate("a => a.duration") - 0.5) < 0.05
    assert audio.evaluate("a => a.play().then(() => true)")  # the browser can decode and play it
    shot(page, T, "observation-audio", full_page=False)
    with page.expect_download() as download:
        detail.locator(".media-file a.media-download").click()
    assert Path(download.value.path()).read_bytes() == media_flows.PDF

    # ---- the dataset item's image ------------------------------------------------------------
    ds = _wait(base, (pk, sk), f"/api/public/v2/datasets/{quote(sent['dataset'], safe='')}", lambda d: True)
    page.goto(f"{base}/project/{project_id}/datasets/{ds['id']}")
    assert _image_width(page.locator(".media-image img").first) == 64
    shot(page, T, "dataset", full_page=False)

    # ---- the session, shared with a stranger and unshared again -------------------------------
    page.goto(f"{base}/project/{project_id}/sessions/{quote(sent['session'], safe='')}")
    assert _image_width(page.locator(".conversation .media-image img").first) == 64
    page.get_by_role("button", name="Share").click()
    share_url = page.locator("#share-url").input_value()
    page.keyboard.press("Escape")
    shot(page, T, "session")

    stranger = new_page()  # no cookies
    assert stranger.goto(share_url).status == 200
    image = stranger.locator(".conversation .media-image img").first
    assert _image_width(image) == 64
    media_src = image.evaluate("img => img.src")
    assert "/public/media/" in media_src
    shot(stranger, T, "public-session")
    stranger.locator(".conversation > li").nth(0).locator(".turn-name").click()
    assert _image_width(stranger.locator("#detail .media-image img").first) == 64
    stranger.get_by_label("Observation tree").get_by_text("vision-llm").click()
    assert _image_width(stranger.locator("#detail .chat-user .media-image img")) == 64
    shot(stranger, T, "public-trace", full_page=False)

    page.locator("#share-control summary").click()
    page.get_by_role("button", name="Stop sharing").click()
    expect(page.get_by_role("button", name="Share")).to_be_visible()
    assert stranger.request.get(media_src).status == 404
