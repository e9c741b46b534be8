"""Errors raised by the pure ingestion layer (mapping and validation, no I/O)."""

from __future__ import annotations

from typing import Any


class InvalidPayload(Exception):
    """The client sent something we cannot accept. `message` is meant for the client (HTTP 400)."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class PayloadLimit(InvalidPayload):
    """The request is over a size limit (HTTP 413); the message names the limit."""
