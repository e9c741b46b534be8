"""Owlscope: an open-source LLM engineering platform that speaks the Langfuse wire protocol."""

__version__ = "0.1.0"
