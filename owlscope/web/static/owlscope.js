/* Owlscope UI behaviour: small, dependency-free, event delegation (works for htmx-swapped content).
 *
 *  <details data-dropdown>           one open at a time; closes on outside click and Escape;
 *                                    arrow keys move through its [role=menuitem] entries
 *  <select data-autosubmit>          submits its form on change
 *  <button data-copy-target="id">    copies the value (inputs) or text of #id
 *  <form data-confirm="question">    asks before submitting
 *  <form data-confirm-name="x">      enables [data-confirm-submit] only when [data-confirm-input] is x
 *  [data-dismiss]                    removes the closest .alert
 *  <form data-score-form>            shows [data-show-for="TYPE ..."] for the selected [data-type-select]
 *  <form data-reset-on-success>      is cleared after a successful htmx request
 */
(function () {
  "use strict";

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
    var question = form.getAttribute("data-confirm");
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
    root.querySelectorAll("form[data-confirm-name]").forEach(updateConfirm);
    root.querySelectorAll("form[data-score-form]").forEach(showForType);
    var created = root.querySelector("#key-created");
    if (created) created.focus();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
