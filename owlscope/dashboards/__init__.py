"""Custom dashboards: widgets (a metrics query plus a chart type), presets, and dashboards that
place them on a grid. Widget data comes from the metrics engine of `owlscope.tracing.metrics`."""
