"""Media flows as an application writes them with the official langfuse SDK (v4.14 or v5).

Imported in-process by the v5 tests and run by the v4 tests with the interpreter of the SDK 4
venv (OWLSCOPE_SDK4_PYTHON):

    $OWLSCOPE_SDK4_PYTHON media_flows.py media TAG LLM_BASE_URL     # prints the ids as JSON
    $OWLSCOPE_SDK4_PYTHON media_flows.py resolve '<json object>'    # prints it with media resolved

It imports nothing of owlscope: it is a plain SDK user.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
import wave
import zlib
from typing import Any

import langfuse
from langfuse import get_client
from langfuse.media import LangfuseMedia


def png_bytes(width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid, solid-colour PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG = png_bytes()
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A short 440 Hz square wave: a real, playable WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        period = rate // 440
        w.writeframes(bytes(200 if (i // (period // 2)) % 2 else 56 for i in range(int(seconds * rate))))
    return buf.getvalue()


WAV = wav_bytes()


def data_uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


PNG_URI, WAV_URI = data_uri("image/png", PNG), data_uri("audio/wav", WAV)


def flow_media(tag: str, llm: str | None) -> dict[str, Any]:
    """An OpenAI-wrapper call with an image, a PDF in metadata, audio in an output and a dataset
    item whose input holds the same image."""
    from langfuse.openai import openai

    client = openai.OpenAI(base_url=llm, api_key="test-key")
    lf = get_client()
    with lf.start_as_current_observation(name=f"media-{tag}") as root:
        trace_id = root.trace_id
        client.chat.completions.create(model="gpt-4o", name=f"vision-{tag}", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": PNG_URI}},
        ]}])
        with lf.start_as_current_observation(name=f"speak-{tag}") as speak:
            speak.update(input={"text": "say hi"}, output={"transcript": "hi", "audio": WAV_URI},
                         metadata={"report": LangfuseMedia(content_bytes=PDF, content_type="application/pdf")})
    dataset = f"media-ds-{tag}"
    lf.create_dataset(name=dataset)
    item = lf.create_dataset_item(dataset_name=dataset, input={
        "question": "Which colour?", "image": LangfuseMedia(content_bytes=PNG, content_type="image/png")})
    return {"trace_id": trace_id, "dataset": dataset, "item_id": item.id}


def resolve(obj: Any) -> Any:
    return get_client().resolve_media_references(obj=obj, resolve_with="base64_data_uri")


def main() -> None:
    client = get_client()
    if sys.argv[1] == "resolve":
        print(json.dumps({"sdk_version": langfuse.__version__, "resolved": resolve(json.loads(sys.argv[2]))}))
        return
    result = flow_media(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    client.flush()
    client.shutdown()
    print(json.dumps({"sdk_version": langfuse.__version__, **result}))


if __name__ == "__main__":
    main()
