/* Prompts, datasets and experiments pages: small, dependency-free, event delegation.
 *
 *  <form data-prompt-form>            shows [data-show-for=TYPE] for the checked [data-prompt-type]
 *  <button data-add-row="tpl-id">     appends the <template id="tpl-id">'s content to the closest
 *                                     field's [data-rows]
 *  <button data-remove-row>           removes its [data-row]
 *  <input data-check-all="name">      checks or unchecks every checkbox named `name` in its form
 *  <form data-min-checked="N"         enables [data-needs-checked] buttons when at least N boxes named
 *        data-check-name="name">      `name` are checked
 */
(function () {
  "use strict";

  function showForType(form) {
    var checked = form.querySelector("[data-prompt-type]:checked") || form.querySelector("select[data-prompt-type]");
    if (!checked) return;
    form.querySelectorAll("[data-show-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-show-for") !== checked.value;
    });
  }

  function updateChecked(form) {
    var name = form.getAttribute("data-check-name");
    var min = parseInt(form.getAttribute("data-min-checked") || "1", 10);
    var n = form.querySelectorAll('input[type=checkbox][name="' + name + '"]:checked').length;
    form.querySelectorAll("[data-needs-checked]").forEach(function (b) { b.disabled = n < min; });
    form.querySelectorAll("[data-checked-count]").forEach(function (el) { el.textContent = String(n); });
  }

  var counter = 0;

  document.addEventListener("click", function (e) {
    var add = e.target.closest("[data-add-row]");
    if (add) {
      var tpl = document.getElementById(add.getAttribute("data-add-row"));
      var field = add.closest(".field") || document;
      var rows = field.querySelector("[data-rows]");
      if (tpl && rows) {
        var node = tpl.content.cloneNode(true);
        counter += 1;
        node.querySelectorAll("[id]").forEach(function (el) { el.id = el.id + "-" + counter; });
        node.querySelectorAll("label[for]").forEach(function (el) { el.htmlFor = el.htmlFor + "-" + counter; });
        rows.appendChild(node);
        var areas = rows.querySelectorAll("textarea");
        if (areas.length) areas[areas.length - 1].focus();
      }
    }
    var remove = e.target.closest("[data-remove-row]");
    if (remove) {
      var row = remove.closest("[data-row]");
      if (row) row.remove();
    }
  });

  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches("[data-prompt-type]")) {
      var form = el.closest("form[data-prompt-form]");
      if (form) showForType(form);
    }
    if (el.matches("[data-check-all]") && el.form) {
      var name = el.getAttribute("data-check-all");
      el.form.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
        box.checked = el.checked;
      });
    }
    if (el.matches("input[type=checkbox]") && el.form && el.form.matches("[data-check-name]")) {
      updateChecked(el.form);
    }
  });

  function init(root) {
    root.querySelectorAll("form[data-prompt-form]").forEach(showForType);
    root.querySelectorAll("form[data-check-name]").forEach(updateChecked);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
