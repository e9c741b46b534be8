"""The server-rendered web UI: Jinja2 templates, htmx, vendored static files, no build step.

`install_ui(app)` (called by owlscope.app.create_app) mounts /static, builds the app's template
environment, adds the session, CSRF and security middleware and includes the UI routers
(owlscope.web.routes). The handlers that turn errors on non-/api paths into pages are
owlscope.web.errors.ui_error_handler / ui_http_handler, which create_app passes to
install_error_handlers. See templates/base.html for what the layout offers.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from owlscope.web.middleware import CSRFMiddleware, LazySessionMiddleware, UIGuardMiddleware
from owlscope.web.routes import ROUTERS
from owlscope.web.templating import STATIC_DIR, build_templates


def install_ui(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.state.templates = build_templates()
    # add_middleware puts the last one added outermost: sessions → guard → CSRF → app.
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(UIGuardMiddleware)
    app.add_middleware(LazySessionMiddleware)
    for router in ROUTERS:
        app.include_router(router)


__all__ = ["install_ui"]
