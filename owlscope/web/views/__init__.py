"""UI routers, one module per area, listed in `owlscope.web.routes`."""
