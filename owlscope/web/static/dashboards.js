/* Custom dashboards: the widget editor's choices per view, the grid (drag a tile's title to move it,
 * its corner to resize it; arrow keys on either do the same), and the tiles' charts (Chart.js).
 *
 *  select[data-view-select]     shows only the options (data-view) of the chosen view in its form
 *  #dash-board[data-editable]   tiles .dash-tile (data-x/y/w/h, data-layout-url) on a 12-column grid
 *  canvas[data-dash-chart]      a chart drawn from its JSON spec (see web/dashboard_charts.py)
 */
(function () {
  "use strict";

  // ---- widget editor ---------------------------------------------------------------------------
  function syncView(form) {
    var view = form.querySelector("[data-view-select]").value;
    form.querySelectorAll("select").forEach(function (select) {
      var scoped = select.querySelectorAll("option[data-view]");
      if (!scoped.length) return;
      scoped.forEach(function (o) { var on = o.getAttribute("data-view") === view; o.hidden = !on; o.disabled = !on; });
      var chosen = select.options[select.selectedIndex];
      if (chosen && chosen.disabled) {
        var first = Array.prototype.find.call(select.options, function (o) { return !o.disabled; });
        if (first) select.value = first.value;
      }
    });
  }
  function initForms(root) {
    root.querySelectorAll("form[data-widget-form]").forEach(function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = "1";
      syncView(form);
      form.querySelector("[data-view-select]").addEventListener("change", function () { syncView(form); });
    });
  }

  // ---- the grid --------------------------------------------------------------------------------
  var COLUMNS = 12;
  function token() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; } catch (e) { return ""; }
  }
  function pos(tile) {
    return { x: +tile.dataset.x, y: +tile.dataset.y, w: +tile.dataset.w, h: +tile.dataset.h };
  }
  function place(tile, p) {
    p.w = Math.max(1, Math.min(COLUMNS, p.w));
    p.x = Math.max(0, Math.min(COLUMNS - p.w, p.x));
    p.y = Math.max(0, p.y);
    p.h = Math.max(2, Math.min(100, p.h));
    tile.dataset.x = p.x; tile.dataset.y = p.y; tile.dataset.w = p.w; tile.dataset.h = p.h;
    tile.style.gridColumn = (p.x + 1) + " / span " + p.w;
    tile.style.gridRow = (p.y + 1) + " / span " + p.h;
    return p;
  }
  function same(a, b) { return a.x === b.x && a.y === b.y && a.w === b.w && a.h === b.h; }
  function status(text, bad) {
    var el = document.getElementById("dash-status");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("dash-status-error", !!bad);
  }
  function save(tile, before) {
    var p = pos(tile);
    status("Saving…");
    fetch(tile.getAttribute("data-layout-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token() },
      body: JSON.stringify({ x: p.x, y: p.y, width: p.w, height: p.h }),
    }).then(function (r) {
      if (r.ok) { status("Layout saved"); return; }
      return r.json().then(function (b) { place(tile, before); status(b.message || "Could not save the layout", true); });
    }).catch(function () { place(tile, before); status("Could not save the layout", true); });
  }
  function cell(board) {
    var cs = getComputedStyle(board);
    var gap = parseFloat(cs.columnGap) || 0, rgap = parseFloat(cs.rowGap) || 0;
    var row = parseFloat(cs.gridAutoRows) || 40;
    return { col: (board.clientWidth - gap * (COLUMNS - 1)) / COLUMNS + gap, row: row + rgap };
  }
  function initBoard() {
    var board = document.getElementById("dash-board");
    if (!board || board.getAttribute("data-editable") !== "true" || board.dataset.ready) return;
    board.dataset.ready = "1";
    var drag = null;
    board.addEventListener("pointerdown", function (e) {
      var handle = e.target.closest(".dash-move, .dash-resize");
      if (!handle || e.button !== 0) return;
      var tile = handle.closest(".dash-tile");
      e.preventDefault();
      handle.setPointerCapture(e.pointerId);
      drag = { tile: tile, handle: handle, resize: handle.classList.contains("dash-resize"), sx: e.clientX, sy: e.clientY,
               start: pos(tile), cell: cell(board) };
      tile.classList.add("dash-dragging");
    });
    board.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var dx = Math.round((e.clientX - drag.sx) / drag.cell.col), dy = Math.round((e.clientY - drag.sy) / drag.cell.row);
      var s = drag.start;
      place(drag.tile, drag.resize ? { x: s.x, y: s.y, w: s.w + dx, h: s.h + dy } : { x: s.x + dx, y: s.y + dy, w: s.w, h: s.h });
    });
    function end() {
      if (!drag) return;
      var d = drag;
      drag = null;
      d.tile.classList.remove("dash-dragging");
      if (!same(pos(d.tile), d.start)) save(d.tile, d.start);
    }
    board.addEventListener("pointerup", end);
    board.addEventListener("pointercancel", end);
    board.addEventListener("keydown", function (e) {
      var handle = e.target.closest && e.target.closest(".dash-move, .dash-resize");
      var step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
      if (!handle || !step) return;
      e.preventDefault();
      var tile = handle.closest(".dash-tile"), before = pos(tile), p = pos(tile);
      if (handle.classList.contains("dash-resize")) { p.w += step[0]; p.h += step[1]; } else { p.x += step[0]; p.y += step[1]; }
      if (!same(place(tile, p), before)) save(tile, before);
    });
  }

  // ---- charts ----------------------------------------------------------------------------------
  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }
  var PALETTE = ["#6366f1", "#10b981", "#f59e0b", "#ef4444", "#06b6d4", "#8b5cf6", "#ec4899", "#84cc16", "#f97316", "#64748b"];
  function formatter(kind) {
    var compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
    if (kind === "cost") return function (v) { return v === 0 ? "$0" : Math.abs(v) >= 1 ? "$" + v.toFixed(2) : "$" + Number(v.toPrecision(2)); };
    if (kind === "percent") return function (v) { return (v * 100).toFixed(1) + "%"; };
    if (kind === "ms") return function (v) { return v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms"; };
    return function (v) { return compact.format(v); };
  }
  function timeLabel(iso) {
    return new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false }).format(new Date(iso));
  }
  function chartConfig(spec) {
    var fmt = formatter(spec.format);
    var grid = cssVar("--border", "#e4e7ec");
    var labels = spec.time ? spec.labels.map(timeLabel) : spec.labels;
    var type = { LINE_TIME_SERIES: "line", AREA_TIME_SERIES: "line", BAR_TIME_SERIES: "bar", HORIZONTAL_BAR: "bar",
                 VERTICAL_BAR: "bar", PIE: "pie", HISTOGRAM: "bar" }[spec.chart] || "bar";
    var pie = type === "pie";
    var datasets = spec.series.map(function (s, i) {
      var color = PALETTE[i % PALETTE.length];
      var d = { label: s.label, data: s.data, borderColor: color, backgroundColor: pie ? labels.map(function (_, j) { return PALETTE[j % PALETTE.length]; }) : color };
      if (type === "line") { d.pointRadius = 0; d.borderWidth = 2; d.tension = 0.2; d.spanGaps = true; d.fill = spec.chart === "AREA_TIME_SERIES"; if (d.fill) d.backgroundColor = color + "33"; }
      if (type === "bar") { d.borderRadius = 2; d.maxBarThickness = 28; }
      return d;
    });
    var horizontal = spec.chart === "HORIZONTAL_BAR";
    var stacked = spec.chart === "BAR_TIME_SERIES";
    var options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: pie || datasets.length > 1, position: "bottom", labels: { boxWidth: 10 } },
                 tooltip: { callbacks: { label: function (ctx) { var v = pie ? ctx.parsed : (horizontal ? ctx.parsed.x : ctx.parsed.y); return " " + (ctx.dataset.label || "") + ": " + fmt(v); } } } },
    };
    if (!pie) {
      var valueAxis = { beginAtZero: true, stacked: stacked, grid: { color: grid }, border: { display: false }, ticks: { maxTicksLimit: 5, callback: fmt } };
      var catAxis = { stacked: stacked, grid: { display: false }, ticks: { maxTicksLimit: spec.time ? 6 : 12, maxRotation: 0, autoSkipPadding: 12 } };
      options.indexAxis = horizontal ? "y" : "x";
      options.scales = horizontal ? { x: valueAxis, y: catAxis } : { x: catAxis, y: valueAxis };
      options.interaction = { mode: "index", intersect: false };
    }
    return { type: type, data: { labels: labels, datasets: datasets }, options: options };
  }
  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-dash-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      canvas.dataset.drawn = "1";
      window.Chart.defaults.color = cssVar("--text-3", "#667085");
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      window.Chart.defaults.font.size = 11;
      new window.Chart(canvas, chartConfig(JSON.parse(canvas.getAttribute("data-dash-chart"))));
    });
  }

  function init(root) { initForms(root); initBoard(); drawCharts(root); }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
