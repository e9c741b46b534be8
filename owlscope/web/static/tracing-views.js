/* The trace page's views of its observations, drawn from the rows in #trace-rows
 * (owlscope/web/views/trace_layout.py tree_rows: id, n name, t type, d depth, s/e start/end in ms
 * from the first observation, l level, m latency · cost text, k children):
 *
 *  [data-view] tabs in [data-trace-views]  switch the panels [data-view-panel] (tree, timeline, graph);
 *                                           the choice is kept in localStorage
 *  nav[data-vtree]                          the tree, virtualised: only the rows in sight are in the page
 *  [data-timeline]                          a time axis with one bar per observation (gaps show as
 *                                           space), zoom (buttons, Ctrl+wheel), pan (wheel, drag),
 *                                           timings on hover; virtualised like the tree
 *
 * Rows are links with the same htmx attributes as the server-rendered tree, so a click loads the
 * observation's detail pane. window.__owlTraceViews.ready (ms since navigation) is set once the
 * first view has been drawn: the browser tests read it to measure the render time.
 */
(function () {
  "use strict";

  var ROW_H = 40;
  var TL_ROW_H = 26;
  var OVERSCAN = 12;
  var SHORT = { GENERATION: "GEN", SPAN: "SPAN", EVENT: "EVT", AGENT: "AGENT", TOOL: "TOOL", CHAIN: "CHAIN",
    RETRIEVER: "RETR", EVALUATOR: "EVAL", EMBEDDING: "EMBED", GUARDRAIL: "GUARD" };
  var fmt = (window.Owlscope && window.Owlscope.format) || { duration: function (s) { return s + "s"; } };

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function cap(t) { return t.charAt(0) + t.slice(1).toLowerCase(); }

  function linkAttrs(nav, row) {
    var href = nav.dataset.pageBase + nav.dataset.pageSep + "observation=" + encodeURIComponent(row.id);
    return 'href="' + esc(href) + '" data-obs-id="' + esc(row.id) + '" hx-get="' +
      esc(nav.dataset.partialBase + encodeURIComponent(row.id) + nav.dataset.partialSuffix) +
      '" hx-target="#detail" hx-swap="outerHTML" hx-push-url="' + esc(href) + '"';
  }

  function process(el) { if (window.htmx) window.htmx.process(el); }

  // ---- the virtualised tree --------------------------------------------------------------------
  function VirtualTree(nav, rows, span) {
    var body = nav.querySelector("[data-vtree-body]");
    body.style.height = rows.length * ROW_H + "px";
    var drawn = [-1, -1];
    var selected = nav.dataset.selected;

    function rowHtml(r, i) {
      var t = r.t.toLowerCase();
      var left = Math.min(r.s / span * 100, 99.5);
      var width = r.e === null ? 0 : Math.max(Math.min((r.e - r.s) / span * 100, 100 - left), 0.4);
      var cls = "tree-row" + (r.id === selected ? " selected" : "") +
        (r.l === "ERROR" ? " tree-error" : r.l === "WARNING" ? " tree-warning" : "");
      return '<a class="' + cls + '" ' + linkAttrs(nav, r) + ' data-keynav-item data-index="' + i + '" style="top:' +
        (i * ROW_H) + "px;--depth:" + (Math.min(r.d, 12) + 1) + '"' + (r.id === selected ? ' aria-current="true"' : "") + ">" +
        '<span class="tree-label"><span class="obs-type obs-' + t + '" title="' + cap(r.t) + '">' + (SHORT[r.t] || r.t.slice(0, 5)) +
        '</span><span class="tree-name">' + esc(r.n) + "</span>" +
        (r.l === "ERROR" || r.l === "WARNING" ? '<span class="level-dot level-' + r.l.toLowerCase() + '"></span>' : "") +
        '</span><span class="tree-meta">' + esc(r.m) + '</span><span class="tree-bar" aria-hidden="true"><span class="bar obs-bar-' + t +
        (r.e === null ? " bar-point" : "") + '" style="left:' + left.toFixed(3) + "%;width:" + width.toFixed(3) + '%"></span></span></a>';
    }

    function draw(force) {
      var top = nav.scrollTop - body.offsetTop;
      var first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
      var last = Math.min(rows.length, Math.ceil((top + nav.clientHeight) / ROW_H) + OVERSCAN);
      if (!force && first === drawn[0] && last === drawn[1]) return;
      var focused = document.activeElement && body.contains(document.activeElement) ? document.activeElement.dataset.obsId : null;
      var html = [];
      for (var i = first; i < last; i++) html.push(rowHtml(rows[i], i));
      body.innerHTML = html.join("");
      drawn = [first, last];
      process(body);
      if (focused) {
        var again = body.querySelector('[data-obs-id="' + CSS.escape(focused) + '"]');
        if (again) again.focus({ preventScroll: true });
      }
    }
    var pending = false;
    nav.addEventListener("scroll", function () {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; draw(false); });
    });
    nav.addEventListener("click", function (e) {
      var a = e.target.closest("a[data-obs-id]");
      if (a) selected = a.dataset.obsId;
      else if (e.target.closest(".tree-root")) selected = "";
    });
    // arrow keys past the drawn rows: scroll one row and keep going
    nav.addEventListener("keydown", function (e) {
      var a = document.activeElement;
      if (!a || !a.dataset || a.dataset.index === undefined) return;
      var i = Number(a.dataset.index) + (e.key === "ArrowDown" || e.key === "j" ? 1 : e.key === "ArrowUp" || e.key === "k" ? -1 : 0);
      if (i === Number(a.dataset.index) || i < 0 || i >= rows.length) return;
      e.preventDefault();
      e.stopPropagation();
      var y = body.offsetTop + i * ROW_H;
      if (y < nav.scrollTop) nav.scrollTop = y;
      else if (y + ROW_H > nav.scrollTop + nav.clientHeight) nav.scrollTop = y + ROW_H - nav.clientHeight;
      draw(true);
      var next = body.querySelector('[data-index="' + i + '"]');
      if (next) next.focus({ preventScroll: true });
    }, true);
    if (selected) {
      var at = rows.findIndex(function (r) { return r.id === selected; });
      if (at > 0) nav.scrollTop = Math.max(0, at * ROW_H - nav.clientHeight / 2);
    }
    draw(true);
    return { draw: draw };
  }

  // ---- the timeline ----------------------------------------------------------------------------
  function niceStep(range, target) {
    var raw = range / target;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  function Timeline(box, nav, rows, span) {
    var view = [0, span];
    box.innerHTML =
      '<div class="tl-toolbar"><span class="muted small" data-tl-range></span><span class="tl-zoom">' +
      '<button type="button" class="btn btn-ghost btn-sm" data-tl-zoom="out" aria-label="Zoom out">−</button>' +
      '<button type="button" class="btn btn-ghost btn-sm" data-tl-zoom="in" aria-label="Zoom in">+</button>' +
      '<button type="button" class="btn btn-ghost btn-sm" data-tl-zoom="fit">Fit</button></span></div>' +
      '<div class="tl-head"><div class="tl-name-h">Observation</div><div class="tl-axis" data-tl-axis></div></div>' +
      '<div class="tl-scroll" data-tl-scroll><div class="tl-body" data-tl-body></div></div>' +
      '<div class="tl-tip" data-tl-tip hidden></div>';
    var scroll = box.querySelector("[data-tl-scroll]");
    var body = box.querySelector("[data-tl-body]");
    var axis = box.querySelector("[data-tl-axis]");
    var tip = box.querySelector("[data-tl-tip]");
    var label = box.querySelector("[data-tl-range]");
    body.style.height = rows.length * TL_ROW_H + "px";
    var drawn = [-1, -1];

    function pct(ms) { return (ms - view[0]) / (view[1] - view[0]) * 100; }

    function drawAxis() {
      var range = view[1] - view[0];
      var step = niceStep(range, 6);
      var html = [];
      for (var t = Math.ceil(view[0] / step) * step; t <= view[1] + 1e-9; t += step) {
        html.push('<span class="tl-tick" style="left:' + pct(t).toFixed(3) + '%">' + esc(fmt.duration(t / 1000)) + "</span>");
      }
      axis.innerHTML = html.join("");
      label.textContent = fmt.duration(view[0] / 1000) + " – " + fmt.duration(view[1] / 1000) +
        (range < span - 1e-6 ? " (zoomed)" : "");
    }

    function rowHtml(r, i) {
      var t = r.t.toLowerCase();
      var left = pct(r.s);
      var end = r.e === null ? r.s : r.e;
      var width = Math.max(pct(end) - left, 0);
      return '<div class="tl-row' + (r.l === "ERROR" ? " tl-error" : "") + '" style="top:' + (i * TL_ROW_H) + 'px" data-index="' + i + '">' +
        '<a class="tl-name" ' + linkAttrs(nav, r) + ' style="padding-left:' + (6 + Math.min(r.d, 16) * 10) + 'px">' +
        '<span class="obs-type obs-' + t + '">' + (SHORT[r.t] || r.t.slice(0, 5)) + '</span><span class="tree-name">' + esc(r.n) + "</span></a>" +
        '<div class="tl-track"><span class="tl-bar obs-bar-' + t + (r.e === null ? " tl-point" : "") + '" data-tl-bar style="left:' +
        left.toFixed(4) + "%;width:" + width.toFixed(4) + '%"></span></div></div>';
    }

    function draw(force) {
      var top = scroll.scrollTop;
      var first = Math.max(0, Math.floor(top / TL_ROW_H) - OVERSCAN);
      var last = Math.min(rows.length, Math.ceil((top + scroll.clientHeight) / TL_ROW_H) + OVERSCAN);
      if (!force && first === drawn[0] && last === drawn[1]) return;
      var html = [];
      for (var i = first; i < last; i++) html.push(rowHtml(rows[i], i));
      body.innerHTML = html.join("");
      drawn = [first, last];
      process(body);
    }
    function redraw() { drawAxis(); draw(true); }

    function zoom(factor, at) {  // at: 0..1 position in the view that stays put
      var range = view[1] - view[0];
      var next = Math.min(Math.max(range * factor, Math.max(span / 1e5, 0.01)), span);
      var centre = view[0] + range * (at === undefined ? 0.5 : at);
      var start = centre - next * (at === undefined ? 0.5 : at);
      start = Math.min(Math.max(start, 0), span - next);
      view = [start, start + next];
      redraw();
    }
    function pan(fraction) {
      var range = view[1] - view[0];
      var start = Math.min(Math.max(view[0] + range * fraction, 0), span - range);
      view = [start, start + range];
      redraw();
    }
    box.addEventListener("click", function (e) {
      var b = e.target.closest("[data-tl-zoom]");
      if (!b) return;
      var kind = b.getAttribute("data-tl-zoom");
      if (kind === "fit") { view = [0, span]; redraw(); } else zoom(kind === "in" ? 0.5 : 2);
    });
    function trackFraction(e) {
      var track = body.querySelector(".tl-track") || axis;
      var rect = track.getBoundingClientRect();
      return Math.min(Math.max((e.clientX - rect.left) / rect.width, 0), 1);
    }
    scroll.addEventListener("wheel", function (e) {
      if (e.ctrlKey || e.metaKey) { e.preventDefault(); zoom(e.deltaY < 0 ? 0.8 : 1.25, trackFraction(e)); }
      else if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) { e.preventDefault(); pan(e.deltaX / 600); }
    }, { passive: false });
    var drag = null;
    scroll.addEventListener("mousedown", function (e) {
      if (!e.target.closest(".tl-track")) return;
      drag = { x: e.clientX, view: view.slice(), width: e.target.closest(".tl-track").getBoundingClientRect().width };
    });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var range = drag.view[1] - drag.view[0];
      var start = Math.min(Math.max(drag.view[0] - (e.clientX - drag.x) / drag.width * range, 0), span - range);
      view = [start, start + range];
      redraw();
    });
    var pending = false;
    scroll.addEventListener("scroll", function () {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; draw(false); });
    });
    scroll.addEventListener("mousemove", function (e) {
      var rowEl = e.target.closest(".tl-row");
      if (!rowEl || drag) { tip.hidden = true; return; }
      var r = rows[Number(rowEl.dataset.index)];
      var dur = r.e === null ? "no end" : fmt.duration((r.e - r.s) / 1000);
      tip.innerHTML = "<strong>" + esc(r.n) + '</strong><span class="muted"> · ' + cap(r.t) + "</span><br>" +
        "start +" + esc(fmt.duration(r.s / 1000)) + (r.e === null ? "" : " · end +" + esc(fmt.duration(r.e / 1000))) +
        "<br>duration " + esc(dur) + (r.m ? "<br>" + esc(r.m) : "");
      tip.hidden = false;
      var rect = box.getBoundingClientRect();
      tip.style.left = Math.min(e.clientX - rect.left + 14, rect.width - 240) + "px";
      tip.style.top = (e.clientY - rect.top + 16) + "px";
    });
    scroll.addEventListener("mouseleave", function () { tip.hidden = true; });
    redraw();
    return { redraw: redraw };
  }

  // ---- the view tabs ---------------------------------------------------------------------------
  function init() {
    var root = document.querySelector("[data-trace-views]");
    var data = document.getElementById("trace-rows");
    if (!root || !data) return;
    var rows = JSON.parse(data.textContent);
    var nav = root.querySelector("nav.tree");
    var span = 0;
    rows.forEach(function (r) { span = Math.max(span, r.e === null ? r.s : r.e); });
    span = Math.max(span, 0.001);
    var timeline = null;
    var tree = nav.hasAttribute("data-vtree") ? VirtualTree(nav, rows, span) : null;
    var split = root.closest(".trace-split");

    function show(name) {
      var tabs = root.querySelectorAll("[data-view]");
      if (!root.querySelector('[data-view="' + name + '"]')) name = "tree";
      tabs.forEach(function (t) { t.setAttribute("aria-selected", t.getAttribute("data-view") === name ? "true" : "false"); });
      root.querySelectorAll("[data-view-panel]").forEach(function (p) { p.hidden = p.getAttribute("data-view-panel") !== name; });
      if (split) split.classList.toggle("trace-split-wide", name !== "tree");
      if (name === "timeline") {
        var box = root.querySelector("[data-timeline]");
        if (!timeline) timeline = Timeline(box, nav, rows, span); else timeline.redraw();
      }
      if (name === "tree" && tree) tree.draw(true);
      try { window.localStorage.setItem("owl-trace-view", name); } catch (err) { /* private mode */ }
    }
    root.addEventListener("click", function (e) {
      var tab = e.target.closest("[data-view]");
      if (tab) show(tab.getAttribute("data-view"));
    });
    var saved = null;
    try { saved = window.localStorage.getItem("owl-trace-view"); } catch (err) { saved = null; }
    show(saved || "tree");
    window.__owlTraceViews = { rows: rows.length, ready: performance.now() };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
