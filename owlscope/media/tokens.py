"""Signed, expiring tokens for the upload and download URLs the web serves for a local store.

Signed with the instance's SESSION_SECRET (every web process of a deployment shares it), so any
process can accept a URL another one handed out. The purpose is part of the signature: a download
token cannot be used to upload.
"""

from __future__ import annotations

import time
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from owlscope.config import Settings
from owlscope.errors import Forbidden


def _serializer(settings: Settings, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(settings.session_secret or "", salt=f"owlscope-media-{purpose}")


def sign(settings: Settings, purpose: str, *, project_id: str, media_id: str, expires_at: float) -> str:
    return _serializer(settings, purpose).dumps({"p": project_id, "m": media_id, "e": int(expires_at)})


def verify(settings: Settings, purpose: str, token: str, *, media_id: str) -> str:
    """The project id the token grants access to; Forbidden when invalid, expired or for another media."""
    try:
        data: Any = _serializer(settings, purpose).loads(token)
    except BadSignature:
        raise Forbidden("Invalid media URL signature") from None
    if not isinstance(data, dict) or data.get("m") != media_id or not isinstance(data.get("p"), str):
        raise Forbidden("Invalid media URL signature")
    if data.get("e", 0) < time.time():
        raise Forbidden("The media URL has expired; request a new one")
    return data["p"]
