"""Project configuration of tracing: model definitions (prices), score configs, comments.

Plain functions over the OLTP store (and the OLAP store for comment targets), called by the public
API and the UI alike. Inputs are the API's request shapes (pydantic models or dicts); problems
raise the domain errors of `owlscope.errors`.
"""
