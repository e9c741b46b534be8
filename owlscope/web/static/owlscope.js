/* Owlscope UI behaviour: small, dependency-free, event delegation (works for htmx-swapped content).
 *
 *  <details data-dropdown>           one open at a time; closes on outside click and Escape;
 *                                    arrow keys move through its [role=menuitem] entries
 *  <select data-autosubmit>          submits its form on change
 *  <button data-copy-target="id">    copies the value (inputs) or text of #id
 *  <form data-confirm="question">    asks before submitting (a submit button's own data-confirm wins)
 *  <form data-confirm-name="x">      enables [data-confirm-submit] only when [data-confirm-input] is x
 *  [data-dismiss]                    removes the closest .alert
 *  <form data-score-form>            shows [data-show-for="TYPE ..."] for the selected [data-type-select]
 *  <form data-reset-on-success>      is cleared after a successful htmx request
 *  <a data-download-path="p">        on click, points at p with the address bar's filters + format
 *  [data-sidebar-toggle]             collapses/expands the sidebar (cookie owl_sidebar, read by the server)
 *  [data-theme-toggle]               switches light/dark (cookie owl_theme, read by the server)
 *  textarea (any)                    grows with its text (up to 70% of the window); data-autogrow="off" opts out
 *  [data-bulk="name"]                a bulk-action toolbar for the checkboxes input[name=name][form=<its form id>]:
 *                                    shows the count, enables [data-bulk-action] buttons while any is checked;
 *                                    input[data-bulk-all] checks them all
 *  [data-md-toggle]                  switches a rendered-markdown block ([data-md]) and its raw text
 *
 * Owlscope.format.cost/duration/number/compact: the number format of owlscope/web/numbers.py (the
 * Jinja filters of the same names), for values drawn in the browser.
 */
(function () {
  "use strict";

  // ---- one number format (keep in step with owlscope/web/numbers.py) --------------------------
  function finite(v) { return typeof v === "number" && isFinite(v); }
  function strip(text) { return text.indexOf(".") < 0 ? text : text.replace(/0+$/, "").replace(/\.$/, ""); }
  function group(text) {
    var parts = text.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }
  var format = {
    cost: function (usd) {
      if (!finite(usd)) return "\u2014";
      if (usd === 0) return "$0";
      var sign = usd < 0 ? "-" : "";
      usd = Math.abs(usd);
      if (Math.round(usd * 100) / 100 >= 1) return sign + "$" + group(usd.toFixed(2));
      var decimals = Math.min(Math.max(2 - Math.floor(Math.log10(usd)), 0), 12);
      return sign + "$" + strip(usd.toFixed(decimals));
    },
    duration: function (seconds) {
      if (!finite(seconds) || seconds < 0) return "\u2014";
      var ms = Math.round(seconds * 1000);
      if (ms < 1000) return ms + "ms";
      if (seconds < 59.995) return seconds.toFixed(2) + "s";
      var s = Math.round(seconds);
      if (s < 3600) return Math.floor(s / 60) + "m " + (s % 60) + "s";
      if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor(s % 3600 / 60) + "m";
      return Math.floor(s / 86400) + "d " + Math.floor(s % 86400 / 3600) + "h";
    },
    number: function (v, digits) {
      if (v === null || v === undefined) return "";
      if (!finite(v)) return String(v);
      if (Number.isInteger(v)) return group(String(v));
      var sign = v < 0 ? "-" : "";
      return sign + group(strip(Math.abs(v).toFixed(digits === undefined ? 4 : digits)));
    },
    compact: function (n) {
      if (!finite(n)) return "\u2014";
      if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + "B";
      if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + "M";
      return format.number(n, 2);
    },
  };
  window.Owlscope = Object.assign(window.Owlscope || {}, { format: format });

  // ---- reader's display choices (cookies the server reads to render <html data-...>) ----------
  function setPref(name, value) {
    document.cookie = name + "=" + value + "; path=/; max-age=31536000; samesite=lax";
  }
  function sidebarCollapsed() {
    var sidebar = document.querySelector(".sidebar");
    return sidebar ? sidebar.getBoundingClientRect().width < 120 : false;
  }
  function darkNow() {
    var t = document.documentElement.getAttribute("data-theme");
    if (t) return t === "dark";
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-sidebar-toggle]")) {
      var next = sidebarCollapsed() ? "expanded" : "collapsed";
      document.documentElement.setAttribute("data-sidebar", next);
      setPref("owl_sidebar", next);
      return;
    }
    if (e.target.closest("[data-theme-toggle]")) {
      var theme = darkNow() ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", theme);
      setPref("owl_theme", theme);
      document.dispatchEvent(new CustomEvent("owlscope:theme", { detail: theme }));
    }
    var md = e.target.closest("[data-md-toggle]");
    if (md) {
      var box = md.closest("[data-md-box]");
      if (!box) return;
      var raw = box.classList.toggle("md-show-raw");
      md.setAttribute("aria-pressed", raw ? "true" : "false");
    }
  });

  // ---- text areas grow with their text ----------------------------------------------------------
  function grow(area) {
    if (area.getAttribute("data-autogrow") === "off" || !area.offsetParent) return;  // hidden: no height to read
    var max = Math.round(window.innerHeight * 0.7);
    area.style.height = "auto";
    var h = Math.min(area.scrollHeight + 2, max);
    area.style.height = h + "px";
    area.style.overflowY = area.scrollHeight + 2 > max ? "auto" : "hidden";
  }
  document.addEventListener("input", function (e) {
    if (e.target.tagName === "TEXTAREA") grow(e.target);
  });

  // ---- bulk actions on checked rows -------------------------------------------------------------
  function bulkBoxes(bar) {
    var form = bar.closest("form") || document.getElementById(bar.getAttribute("data-bulk-form"));
    var name = bar.getAttribute("data-bulk");
    if (!form) return [];
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.type === "checkbox" && el.name === name;
    });
  }
  function bulkUpdate(bar) {
    var boxes = bulkBoxes(bar);
    var n = boxes.filter(function (b) { return b.checked; }).length;
    bar.querySelectorAll("[data-bulk-count]").forEach(function (el) { el.textContent = format.number(n); });
    bar.querySelectorAll("[data-bulk-action]").forEach(function (el) { el.disabled = n === 0; });
    bar.classList.toggle("bulk-active", n > 0);
    document.querySelectorAll("input[data-bulk-all='" + bar.getAttribute("data-bulk") + "']").forEach(function (all) {
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    });
  }
  function bulkBars() { return document.querySelectorAll("[data-bulk]"); }
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.type !== "checkbox") return;
    var allFor = el.getAttribute("data-bulk-all");
    bulkBars().forEach(function (bar) {
      var name = bar.getAttribute("data-bulk");
      if (allFor === name) bulkBoxes(bar).forEach(function (b) { b.checked = el.checked; });
      if (allFor === name || el.name === name) bulkUpdate(bar);
    });
  });

  function closeDropdowns(except) {
    document.querySelectorAll("details[data-dropdown][open]").forEach(function (d) {
      if (d !== except) d.removeAttribute("open");
    });
  }

  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (d.matches && d.matches("details[data-dropdown]") && d.open) closeDropdowns(d);
  }, true);

  document.addEventListener("click", function (e) {
    var dl = e.target.closest && e.target.closest("a[data-download-path]");
    if (dl && !dl.closest("[data-download-fixed]")) {
      var params = new URLSearchParams(window.location.search);
      ["cursor", "n", "total", "page", "format"].forEach(function (k) { params.delete(k); });
      if (dl.getAttribute("href").indexOf("status=") !== -1 && !params.has("status")) {
        params.set("status", new URLSearchParams(dl.getAttribute("href").split("?")[1]).get("status"));
      }
      params.set("format", dl.getAttribute("data-download-format"));
      dl.setAttribute("href", dl.getAttribute("data-download-path") + "?" + params.toString());
    }
    var open = document.querySelectorAll("details[data-dropdown][open]");
    open.forEach(function (d) { if (!d.contains(e.target)) d.removeAttribute("open"); });

    var dismiss = e.target.closest("[data-dismiss]");
    if (dismiss) {
      var alert = dismiss.closest(".alert");
      if (alert) alert.remove();
    }

    var copy = e.target.closest("[data-copy-target]");
    if (copy) copyFrom(copy);
  });

  document.addEventListener("keydown", function (e) {
    var d = document.querySelector("details[data-dropdown][open]");
    if (!d) return;
    if (e.key === "Escape") {
      d.removeAttribute("open");
      var summary = d.querySelector("summary");
      if (summary) summary.focus();
      return;
    }
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    // Arrow keys move through the open menu's items (Tab works too).
    var items = Array.prototype.slice.call(d.querySelectorAll("[role=menuitem]"));
    if (!items.length) return;
    e.preventDefault();
    var i = items.indexOf(document.activeElement);
    var next = e.key === "ArrowDown" ? (i + 1) % items.length : (i <= 0 ? items.length - 1 : i - 1);
    items[next].focus();
  });

  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches("[data-autosubmit]") && el.form) {
      if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
    }
    if (el.matches("[data-type-select]")) showForType(el.closest("form"));
  });

  document.addEventListener("input", function (e) {
    var input = e.target;
    if (!input.matches("[data-confirm-input]")) return;
    var form = input.closest("form[data-confirm-name]");
    if (form) updateConfirm(form);
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = (e.submitter && e.submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  function updateConfirm(form) {
    var input = form.querySelector("[data-confirm-input]");
    var button = form.querySelector("[data-confirm-submit]");
    if (input && button) button.disabled = input.value.trim() !== form.getAttribute("data-confirm-name");
  }

  function showForType(form) {
    if (!form) return;
    var select = form.querySelector("[data-type-select]");
    if (!select) return;
    form.querySelectorAll("[data-show-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-for").split(" ").indexOf(select.value) < 0;
    });
  }

  function copyFrom(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) return;
    var text = "value" in target && target.tagName !== "PRE" ? target.value : target.textContent;
    var done = function () { feedback(button, "Copied"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(target, text) && done(); });
    } else if (fallbackCopy(target, text)) {
      done();
    }
  }

  function fallbackCopy(target, text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    area.remove();
    if (!ok && target.select) target.select();
    return ok;
  }

  function feedback(button, text) {
    var label = button.querySelector("span");
    if (!label) return;
    var before = label.getAttribute("data-label") || label.textContent;
    label.setAttribute("data-label", before);
    label.textContent = text;
    button.classList.add("copied");
    window.setTimeout(function () { label.textContent = before; button.classList.remove("copied"); }, 1500);
  }

  function flash(message) {
    var area = document.getElementById("flashes");
    if (!area) return;
    var div = document.createElement("div");
    div.className = "alert alert-error flash";
    div.setAttribute("role", "alert");
    div.textContent = message;
    area.appendChild(div);
  }

  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.target;
    if (e.detail.successful && form.matches && form.matches("form[data-reset-on-success]")) form.reset();
  });

  document.addEventListener("htmx:sendError", function () {
    flash("Could not reach the server. Check your connection and try again.");
  });

  function init(root) {
    root.querySelectorAll("textarea").forEach(grow);
    bulkBars().forEach(bulkUpdate);
    root.querySelectorAll("form[data-confirm-name]").forEach(updateConfirm);
    root.querySelectorAll("form[data-score-form]").forEach(showForType);
    var created = root.querySelector("#key-created");
    if (created) created.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
