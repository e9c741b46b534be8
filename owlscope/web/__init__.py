"""The server-rendered web UI: Jinja2 templates, htmx, vendored static files, no build step.

`install_ui(app)` (called by owlscope.app.create_app) mounts /static, adds the session, CSRF and
security middleware, includes the UI routers (views/) and sets the handlers that turn errors on
non-/api paths into pages. See docs in templates/base.html for what the layout offers.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from owlscope.web.errors import ui_error_handler, ui_http_handler
from owlscope.web.middleware import CSRFMiddleware, LazySessionMiddleware, UIGuardMiddleware
from owlscope.web.templating import STATIC_DIR


def install_ui(app: FastAPI) -> None:
    from owlscope.web.views import routers

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    # add_middleware puts the last one added outermost: sessions → guard → CSRF → app.
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(UIGuardMiddleware)
    app.add_middleware(LazySessionMiddleware)
    for router in routers():
        app.include_router(router)
    app.state.ui_error_handler = ui_error_handler
    app.state.ui_http_handler = ui_http_handler


__all__ = ["install_ui"]
