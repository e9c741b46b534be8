"""The public API: one router per resource, listed in `owlscope.api.routes`."""
