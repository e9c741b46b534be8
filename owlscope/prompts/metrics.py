"""Per-version metrics of a prompt: the read model's (`owlscope.tracing.prompt_usage`)."""

from owlscope.tracing.prompt_usage import prompt_version_metrics

__all__ = ["prompt_version_metrics"]
