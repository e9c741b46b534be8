"""The masker of a project: the instance detectors (MASKING_DETECTORS) plus the project's custom
rules, cached per project. Masking runs at accept, before the blob of a request is written, so no
store (blob, queue, OLAP) ever holds the original text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from owlscope.ingestion.masking import CustomRule, Masker, parse_detectors

if TYPE_CHECKING:
    from owlscope.services import Services


def project_rules(services: Services, project_id: str) -> tuple[CustomRule, ...]:
    """The custom rules of a project (none until a project defines some)."""
    return ()


def build_masker(services: Services, project_id: str) -> Masker | None:
    masker = Masker(parse_detectors(services.settings.masking_detectors), salt=services.settings.salt or "",
                    rules=project_rules(services, project_id))
    return masker if masker.active else None


def masker_for(services: Services, project_id: str) -> Masker | None:
    """The project's masker, or None when nothing is masked (cached with the project TTL cache)."""
    return services.maskers.get_or_load(project_id, lambda: build_masker(services, project_id))


def masked_fields(services: Services, project_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Fields named like an event body's (input, expectedOutput, metadata, comment...) masked, for
    text stored outside ingestion (dataset items)."""
    masker = masker_for(services, project_id)
    return fields if masker is None else masker.event_body(fields)
