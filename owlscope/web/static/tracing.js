/* Owlscope tracing pages: small, dependency-free behaviour (event delegation, so it works for
 * htmx-swapped content). Hooks:
 *
 *  <time data-local="datetime|time|short">  shown in the reader's time zone
 *  [data-keynav]                            ↑/↓ (or j/k) move between its rows (tr[data-href] or
 *                                           [data-keynav-item]); Enter opens; a click on a row opens it
 *  [data-search-shortcut]                   "/" focuses it
 *  select[data-range-select]                shows [data-range-custom] for "custom", else submits the form
 *  input[data-range-input]                  a custom range's end: submits the form once both are set
 *  [data-fold-toggle]                       unfolds long text
 *  [data-io-raw="id"]                       switches #id-pretty / #id-raw
 *  [data-history-back]                      goes back one page
 *  textarea[data-submit-on-ctrl-enter]      Ctrl/⌘+Enter submits
 *  canvas[data-chart]                       a dashboard chart fed by #dashboard-data (Chart.js)
 */
(function () {
  "use strict";

  // ---- times in the reader's time zone -------------------------------------------------------
  var FORMATS = {
    datetime: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false },
    time: { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false },
    short: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false },
  };
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      if (el.dataset.done) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      var opts = FORMATS[el.getAttribute("data-local")] || FORMATS.datetime;
      var now = new Date();
      var o = Object.assign({}, opts);
      if (o.month && d.getFullYear() !== now.getFullYear()) o.year = "numeric";
      el.title = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
      el.textContent = new Intl.DateTimeFormat(undefined, o).format(d);
      el.dataset.done = "1";
    });
  }

  // ---- keyboard-friendly rows ------------------------------------------------------------------
  function rowsOf(container) {
    return Array.prototype.slice.call(container.querySelectorAll("tr[data-href], [data-keynav-item]"));
  }
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    var active = document.activeElement;
    if (e.key === "/" && !typing(active)) {
      var search = document.querySelector("[data-search-shortcut]");
      if (search) { e.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (typing(active)) return;
    var container = active && active.closest ? active.closest("[data-keynav]") : null;
    var down = e.key === "ArrowDown" || e.key === "j";
    var up = e.key === "ArrowUp" || e.key === "k";
    if (!down && !up && e.key !== "Enter") return;
    if (!container) {
      if (!down) return;
      container = document.querySelector("[data-keynav]");
      if (!container || document.querySelector("details[data-dropdown][open]")) return;
      var first = rowsOf(container)[0];
      if (first) { e.preventDefault(); first.focus(); }
      return;
    }
    var rows = rowsOf(container);
    var i = rows.indexOf(active);
    if (e.key === "Enter") {
      if (active.matches("tr[data-href]")) { e.preventDefault(); window.location.href = active.getAttribute("data-href"); }
      return;  // links activate themselves
    }
    if (i < 0) return;
    e.preventDefault();
    var next = rows[down ? Math.min(i + 1, rows.length - 1) : Math.max(i - 1, 0)];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  });

  document.addEventListener("click", function (e) {
    var row = e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a, button, input, select, label, summary")) {
      if (e.metaKey || e.ctrlKey) window.open(row.getAttribute("data-href"), "_blank");
      else window.location.href = row.getAttribute("data-href");
      return;
    }
    var fold = e.target.closest("[data-fold-toggle]");
    if (fold) {
      var box = fold.closest("[data-fold]");
      var open = box.classList.toggle("open");
      fold.setAttribute("aria-expanded", open ? "true" : "false");
      if (!fold.dataset.label) fold.dataset.label = fold.textContent;
      fold.textContent = open ? "Show less" : fold.dataset.label;
      return;
    }
    var raw = e.target.closest("[data-io-raw]");
    if (raw) {
      var id = raw.getAttribute("data-io-raw");
      var pretty = document.getElementById(id + "-pretty");
      var rawEl = document.getElementById(id + "-raw");
      if (pretty && rawEl) {
        var showRaw = rawEl.hidden;
        rawEl.hidden = !showRaw;
        pretty.hidden = showRaw;
        raw.setAttribute("aria-pressed", showRaw ? "true" : "false");
      }
      return;
    }
    if (e.target.closest("[data-history-back]")) {
      e.preventDefault();
      window.history.back();
      return;
    }
    var treeRow = e.target.closest(".tree-row");
    if (treeRow) selectTreeRow(treeRow);
  });

  function selectTreeRow(row) {
    var tree = row.closest(".tree");
    if (!tree) return;
    tree.querySelectorAll(".tree-row.selected").forEach(function (r) {
      r.classList.remove("selected");
      r.removeAttribute("aria-current");
    });
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
  }

  // Keep the tree's selection in step with the URL (back/forward through observations).
  window.addEventListener("popstate", function () {
    var tree = document.querySelector(".tree");
    if (!tree) return;
    var params = new URLSearchParams(window.location.search);
    var id = params.get("observation");
    var row = id ? tree.querySelector('.tree-row[data-obs-id="' + CSS.escape(id) + '"]') : tree.querySelector(".tree-root");
    if (row) selectTreeRow(row);
  });

  document.addEventListener("change", function (e) {
    var sel = e.target;
    if (sel.matches("input[data-range-input]") && sel.form && sel.value) {
      // a custom range applies as soon as both ends are set, on every page alike
      var ends = sel.closest("[data-range-picker]").querySelectorAll("input[data-range-input]");
      var complete = Array.prototype.every.call(ends, function (i) { return i.value; });
      if (complete) { if (sel.form.requestSubmit) sel.form.requestSubmit(); else sel.form.submit(); }
      return;
    }
    if (!sel.matches("select[data-range-select]")) return;
    var picker = sel.closest("[data-range-picker]");
    var custom = picker && picker.querySelector("[data-range-custom]");
    if (sel.value === "custom") {
      if (custom) { custom.hidden = false; var from = custom.querySelector("input"); if (from) from.focus(); }
      return;
    }
    if (custom) custom.hidden = true;
    if (sel.form) { if (sel.form.requestSubmit) sel.form.requestSubmit(); else sel.form.submit(); }
  });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.matches && t.matches("textarea[data-submit-on-ctrl-enter]") && t.form) {
      e.preventDefault();
      if (t.form.requestSubmit) t.form.requestSubmit(); else t.form.submit();
    }
  });

  // Copy buttons that are icon-only (owlscope.js handles those with a text label).
  document.addEventListener("click", function (e) {
    var btn = e.target.closest(".icon-btn[data-copy-target]");
    if (!btn) return;
    btn.classList.add("copied");
    window.setTimeout(function () { btn.classList.remove("copied"); }, 1200);
  });

  // A filter form applied with htmx closes its filter menu.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.target;
    if (!e.detail.successful || !form.matches || !form.matches("form[role=search]")) return;
    form.querySelectorAll("details[open]").forEach(function (d) { d.removeAttribute("open"); });
  });

  document.addEventListener("htmx:afterSwap", function () { localTimes(document); });

  // ---- dashboard charts ------------------------------------------------------------------------
  function cssVar(name, fallback) {
    // resolved through an element: the tokens are light-dark() pairs, which only a property resolves
    var probe = document.createElement("span");
    probe.style.color = "var(" + name + ", " + fallback + ")";
    document.body.appendChild(probe);
    var v = getComputedStyle(probe).color;
    probe.remove();
    return v || fallback;
  }
  function label(iso, step) {
    var d = new Date(iso);
    if (step < 86400) return new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false }).format(d);
    return new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" }).format(d);
  }
  var fmt = window.Owlscope.format;
  function money(v) { return fmt.cost(v); }
  function compact(v) { return fmt.compact(v); }
  function charts() {
    var src = document.getElementById("dashboard-data");
    if (!src || !window.Chart) return;
    var data = JSON.parse(src.textContent);
    var grid = cssVar("--border", "#e4e7ec");
    var text = cssVar("--text-3", "#667085");
    var c1 = cssVar("--chart-1", "#6366f1"), c2 = cssVar("--chart-2", "#10b981"), c3 = cssVar("--chart-3", "#f59e0b");
    window.Chart.defaults.color = text;
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.font.size = 11;
    var s = data.series;
    var labels = s.labels.map(function (x) { return label(x, s.step); });
    function base(yFormat) {
      return {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (ctx) { return " " + yFormat(ctx.parsed.y); } } } },
        scales: {
          x: { grid: { display: false }, ticks: { maxTicksLimit: 5, maxRotation: 0, autoSkipPadding: 16 } },
          y: { beginAtZero: true, grid: { color: grid }, border: { display: false }, ticks: { maxTicksLimit: 5, callback: yFormat } },
        },
      };
    }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var kind = canvas.getAttribute("data-chart");
      var cfg;
      if (kind === "traces") {
        cfg = { type: "bar", data: { labels: labels, datasets: [{ data: s.traces, backgroundColor: c1, borderRadius: 2, maxBarThickness: 18 }] }, options: base(compact) };
      } else if (kind === "cost") {
        cfg = { type: "bar", data: { labels: labels, datasets: [{ data: s.cost, backgroundColor: c2, borderRadius: 2, maxBarThickness: 18 }] }, options: base(money) };
      } else if (kind === "tokens") {
        cfg = { type: "bar", data: { labels: labels, datasets: [{ data: s.tokens, backgroundColor: c3, borderRadius: 2, maxBarThickness: 18 }] }, options: base(compact) };
      } else if (kind === "score") {
        var sc = data.scores[Number(canvas.getAttribute("data-index"))];
        if (!sc) return;
        var l, v;
        if (sc.kind === "histogram") {
          l = sc.bins.map(function (b) { return b[0] === b[1] ? String(Number(b[0].toPrecision(3))) : Number(b[0].toPrecision(3)) + "–" + Number(b[1].toPrecision(3)); });
          v = sc.bins.map(function (b) { return b[2]; });
        } else {
          l = sc.values.map(function (x) { return x[0] || "(empty)"; });
          v = sc.values.map(function (x) { return x[1]; });
        }
        var opts = base(compact);
        opts.scales.x.ticks.maxTicksLimit = 10;
        cfg = { type: "bar", data: { labels: l, datasets: [{ data: v, backgroundColor: c1, borderRadius: 2, maxBarThickness: 28 }] }, options: opts };
      }
      if (cfg) new window.Chart(canvas, cfg);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); charts(); });
  // the theme toggle: draw the charts again in the new colours
  document.addEventListener("owlscope:theme", function () {
    if (!window.Chart) return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (c) {
      var chart = window.Chart.getChart(c);
      if (chart) chart.destroy();
    });
    charts();
  });
  document.addEventListener("htmx:load", function (e) { localTimes(e.target); });
})();
