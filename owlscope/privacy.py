"""The MASKING_DETECTORS setting: detector names and modes. A leaf module, so the settings can
validate the list at startup without importing the ingestion mapping (which holds the detectors,
see owlscope.ingestion.masking)."""

from __future__ import annotations

DETECTOR_NAMES = ("jwt", "api_key", "email", "iban", "credit_card", "ip", "phone")


class MaskingConfigError(ValueError):
    """A detector list or custom rule that cannot be used; the message says why."""


def parse_detectors(spec: str | None) -> dict[str, str]:
    """``"email:hash,credit_card"`` -> {"email": "hash", "credit_card": "placeholder"}.

    ``all`` (alone or with a mode, ``all:hash``) names every detector; later entries win; empty
    means none. MaskingConfigError names an unknown detector or mode.
    """
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, mode = part.partition(":")
        name, mode = name.strip().lower(), (mode.strip().lower() or "placeholder")
        if mode not in ("placeholder", "hash"):
            raise MaskingConfigError(f"unknown mode {mode!r} for {name!r}: use :hash or nothing (a placeholder)")
        if name == "all":
            out.update(dict.fromkeys(DETECTOR_NAMES, mode))
        elif name in DETECTOR_NAMES:
            out[name] = mode
        else:
            raise MaskingConfigError(f"unknown detector {name!r}; known: all, {', '.join(DETECTOR_NAMES)}")
    return out
