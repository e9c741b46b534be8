"""Annotation queues: traces, observations and sessions lined up for people to score."""
