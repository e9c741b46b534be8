"""Masking of sensitive values at ingestion. Pure: no I/O, no storage.

Built-in detectors find e-mail addresses, phone numbers, card numbers (Luhn-checked), IBANs
(mod-97 checked), IPv4/IPv6 addresses, API keys and bearer tokens (common provider prefixes) and
JWTs. Each rule replaces what it finds either by a typed placeholder (``<EMAIL>``) or by a stable
salted hash (``<EMAIL:3f9a0c1b2d4e>``: equal values stay equal, so they can still be joined and
counted, but the value cannot be read back).

The instance default is the setting ``MASKING_DETECTORS``, a comma list of detector names, each
optionally followed by ``:hash`` (``email:hash,credit_card,phone``); ``all`` names every detector.
Projects add custom rules: a regular expression, or a JSON path into an event (``metadata.customer.ssn``),
each with its replacement text.

What is masked: the strings of names, input, output, metadata, status messages, score comments
and tags of legacy events, and every string of an OTLP export (span names, span/event/link/
resource attributes, status messages). What is deliberately not masked: the instrumentation scope, identifiers (trace,
observation, session and user ids, and OTLP attributes whose key ends in ``id``), timestamps,
numbers, booleans, enum-like fields (type, level, environment, release, version, model) and the
keys of objects: they are the structure the product joins and filters on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from owlscope.privacy import DETECTOR_NAMES, MaskingConfigError, parse_detectors

__all__ = [
    "DETECTORS", "CustomRule", "Masker", "MaskingConfigError", "parse_detectors",
]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"[ -]", "", match)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn_ok(digits)


def _iban(match: str) -> bool:
    s = match.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _ip(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _ipv6(match: str) -> bool:
    return match.count(":") >= 2 and any(c not in ":" for c in match) and _ip(match)


def _phone(match: str) -> bool:
    n = sum(c.isdigit() for c in match)
    return 7 <= n <= 15




_KEY_PREFIXES = ("sk-", "sk_", "rk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AKIA", "ASIA",
                 "AIza", "glpat-", "hf_", "Bearer")
_DIGITS = b"0123456789"


@dataclass(frozen=True)
class Detector:
    name: str  # the regex group
    placeholder: str
    pattern: str  # matched text is replaced
    check: Callable[[str], bool] | None = None
    # Cheap tests a string must pass for the pattern to have a chance (most text skips the scan):
    # one of `needs` is a substring, and it holds at least `min_digits` digits.
    needs: tuple[str, ...] = ()
    min_digits: int = 0
    kind: str | None = None  # the detector name in MASKING_DETECTORS, when not `name`
    before: Callable[[str], bool] | None = None  # true for a preceding character that voids a match


# Order matters: the combined pattern tries them left to right at each position, so the more
# specific forms (a JWT, a key with a prefix) win over the general ones (a phone number). Patterns
# start with a character class, never a lookbehind (a lookbehind placed after the first character
# checks what precedes it): the regex engine then skips to candidate characters at C speed.
_DETECTORS: tuple[Detector, ...] = (
    Detector("jwt", "<JWT>", r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}",
             needs=("eyJ",)),
    Detector("api_key", "<API_KEY>",
             r"(?:sk-(?:proj-|ant-|svcacct-|lf-)?[A-Za-z0-9_-]{16,}"
             r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
             r"|xox[abposr]-[A-Za-z0-9-]{10,}"
             r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
             r"|AIza[0-9A-Za-z_-]{35}"
             r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"
             r"|glpat-[A-Za-z0-9_-]{20,}"
             r"|hf_[A-Za-z0-9]{30,})"
             r"|Bearer\s[A-Za-z0-9._~+/=-]{12,}", needs=_KEY_PREFIXES,
             before=lambda c: c.isalnum() or c in "_-"),
    Detector("email", "<EMAIL>",
             r"[A-Za-z0-9](?<![A-Za-z0-9._%+-][A-Za-z0-9])[A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}"
             r"(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b", needs=("@",)),
    Detector("iban", "<IBAN>", r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
             _iban, min_digits=2),
    Detector("credit_card", "<CREDIT_CARD>", r"\d(?<![\d.-]\d)(?:[ -]?\d){12,18}(?![\d.])", _card, min_digits=13),
    Detector("ip", "<IP>", r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?![\w.])", _ip, needs=(".",), min_digits=4),
    Detector("ip6", "<IP>",
             r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*(?:\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])",
             _ipv6, needs=(":",), min_digits=1, kind="ip"),
    Detector("phone", "<PHONE>",
             r"\+(?<![\w+]\+)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}(?![\w])"
             r"|[(\d](?<![\w+(][(\d])(?:(?<=\()\d{3}\) ?|(?<=\d)\d{2}[.-])\d{3}[.-]\d{4}(?![\w])",
             _phone, min_digits=7),
)
DETECTORS: dict[str, Detector] = {d.name: d for d in _DETECTORS}
assert {d.kind or d.name for d in _DETECTORS} == set(DETECTOR_NAMES)


@dataclass(frozen=True)
class CustomRule:
    """A project's rule: `pattern` (a regular expression) or `path` (dot path into an event
    body, e.g. ``metadata.customer.ssn``), with the text that replaces what it finds."""

    replacement: str = "<REDACTED>"
    pattern: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if bool(self.pattern) == bool(self.path):
            raise MaskingConfigError("a rule has either a pattern or a path")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise MaskingConfigError(f"invalid regular expression {self.pattern!r}: {exc}") from None
        if self.pattern and "(?P<" in self.pattern:
            raise MaskingConfigError("named groups (?P<...>) are not allowed in a rule's pattern")
        if self.path and not all(self.path.split(".")):
            raise MaskingConfigError(f"invalid path {self.path!r}: use dot-separated keys like metadata.customer.ssn")
        if len(self.replacement) > 200:
            raise MaskingConfigError("a replacement is at most 200 characters")


# Fields of a legacy event body whose strings are masked (recursively).
EVENT_TEXT_FIELDS = ("name", "input", "output", "expectedOutput", "metadata", "statusMessage", "comment", "tags")


@dataclass
class Masker:
    """Masks strings and structures with the enabled detectors and custom rules."""

    detectors: Mapping[str, str] = field(default_factory=dict)  # name -> placeholder | hash
    salt: str = ""
    rules: tuple[CustomRule, ...] = ()

    def __post_init__(self) -> None:
        self._enabled = [d for d in _DETECTORS if (d.kind or d.name) in self.detectors]
        self._by_group: dict[str, Detector] = {d.name: d for d in self._enabled}
        self._custom: list[str] = []
        for i, rule in enumerate(r for r in self.rules if r.pattern):
            group = f"custom{i}"
            self._custom.append(f"(?P<{group}>{rule.pattern})")
            self._by_group[group] = Detector(group, rule.replacement, rule.pattern)
        # one combined pattern per set of detectors whose gates a string passes, built on first use
        self._compiled: dict[tuple[str, ...], re.Pattern | None] = {}
        self._rx = self._pattern(tuple(d.name for d in self._enabled))
        self._paths = [(r.path.split("."), r.replacement) for r in self.rules if r.path]
        self._key = self.salt.encode()

    def _pattern(self, names: tuple[str, ...]) -> re.Pattern | None:
        try:
            return self._compiled[names]
        except KeyError:
            pass
        parts = [f"(?P<{n}>{DETECTORS[n].pattern})" for n in names] + self._custom
        rx = self._compiled[names] = re.compile("|".join(parts)) if parts else None
        return rx

    @property
    def active(self) -> bool:
        return self._rx is not None or bool(self._paths)

    def _replace(self, m: re.Match) -> str:
        group = m.lastgroup
        text = m.group(group)
        det = self._by_group[group]
        if det.check is not None and not det.check(text):
            return text
        start = m.start()
        if det.before is not None and start and det.before(m.string[start - 1]):
            return text
        prefix = ""
        if text.startswith("Bearer") and group == "api_key":  # only the token is replaced
            prefix, text = text[:7], text[7:]
        if self.detectors.get(det.kind or group) == "hash":
            digest = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:12]
            return f"{prefix}{det.placeholder[:-1]}:{digest}>"
        return prefix + det.placeholder

    def text(self, s: str) -> str:
        """`s` with every detected value replaced."""
        if self._rx is None or len(s) < 6:
            return s
        digits = -1
        names = []
        for d in self._enabled:
            if d.needs:
                for needle in d.needs:
                    if needle in s:
                        break
                else:
                    continue
            if d.min_digits:
                if digits < 0:
                    raw = s.encode()
                    digits = len(raw) - len(raw.translate(None, _DIGITS))
                if digits < d.min_digits:
                    continue
            names.append(d.name)
        rx = self._pattern(tuple(names))
        return s if rx is None else rx.sub(self._replace, s)

    def value(self, v: Any) -> Any:
        """A JSON-like value with every string in it masked (keys of objects are kept)."""
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    def apply_paths(self, body: dict[str, Any]) -> None:
        """Replace the values found at the custom JSON paths (in place)."""
        for keys, replacement in self._paths:
            _replace_path(body, keys, replacement)

    def event_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A legacy event body with its text fields masked and the custom paths replaced."""
        out = dict(body)
        if self._rx is not None:
            for name in EVENT_TEXT_FIELDS:
                if name in out and out[name] is not None:
                    out[name] = self.value(out[name])
        if self._paths:
            self.apply_paths(out)
        return out

    def events(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Legacy ingestion events (validated) with their bodies masked."""
        return [{**ev, "body": self.event_body(ev["body"])} if isinstance(ev.get("body"), Mapping) else ev
                for ev in events]

    def otlp(self, req: Any) -> None:
        """Mask an ExportTraceServiceRequest in place (its strings; ids stay)."""
        for rs in req.resource_spans:
            self._attributes(rs.resource.attributes, "")
            for ss in rs.scope_spans:  # the instrumentation scope names a library: kept
                for span in ss.spans:
                    original = span.name
                    name = self.text(original)
                    if name is not original:
                        span.name = name
                    if span.status.message:
                        span.status.message = self.text(span.status.message)
                    self._attributes(span.attributes, "")
                    for event in span.events:
                        event.name = self.text(event.name)
                        self._attributes(event.attributes, "")
                    for link in span.links:
                        self._attributes(link.attributes, "")

    def _attributes(self, kvs: Any, prefix: str) -> None:
        for kv in kvs:
            key = prefix + kv.key
            if _is_identifier(kv.key):
                continue
            self._any_value(kv.value, key)

    def _any_value(self, v: Any, key: str) -> None:
        kind = v.WhichOneof("value")
        if kind == "string_value":
            original = s = v.string_value
            if self._paths:
                s = self._attribute_paths(s, key)
            s = self.text(s)
            if s is not original:
                v.string_value = s
        elif kind == "array_value":
            for item in v.array_value.values:
                self._any_value(item, key)
        elif kind == "kvlist_value":
            self._attributes(v.kvlist_value.values, key + ".")

    def _attribute_paths(self, s: str, key: str) -> str:
        """Custom paths on an OTLP attribute. ``metadata.customer.ssn`` reaches the attribute
        ``langfuse.observation.metadata.customer.ssn`` (replaced whole), and the ``ssn`` of the
        JSON text held by ``...metadata.customer`` or ``...metadata``."""
        segments = key.split(".")
        for keys, replacement in self._paths:
            try:
                at = segments.index(keys[0])
            except ValueError:
                continue
            held = segments[at:]
            if held == keys:
                return replacement
            if len(held) < len(keys) and keys[: len(held)] == held and s[:1] == "{":
                try:
                    doc = orjson.loads(s)
                except orjson.JSONDecodeError:
                    continue
                if _replace_path(doc, keys[len(held):], replacement):
                    s = orjson.dumps(doc).decode()
        return s


def _replace_path(doc: Any, keys: list[str], replacement: str) -> bool:
    node = doc
    for k in keys[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(k), dict):
            return False
        node = node[k]
    if isinstance(node, dict) and keys[-1] in node:
        node[keys[-1]] = replacement
        return True
    return False


def _is_identifier(key: str) -> bool:
    last = key.rsplit(".", 1)[-1].lower()
    return last == "id" or last.endswith("_id") or last in ("sessionid", "userid", "traceid")
