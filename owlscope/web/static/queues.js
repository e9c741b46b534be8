/* Annotation queues: the review screen's keyboard shortcuts.
 *
 *  Ctrl/⌘+Enter (anywhere) or c    complete the item (saving the scores) and open the next one
 *  s                               skip to the next item
 *  p                               back to the previous item
 *  Esc                             leave a field (so the letter keys work again)
 * The first score field is focused when the page opens.
 */
(function () {
  "use strict";
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function submit(selector) {
    var form = document.querySelector(selector);
    if (!form || form.dataset.sent) return false;
    var button = form.querySelector("button[type=submit]");
    if (button && button.disabled) return false;
    form.dataset.sent = "1";
    form.requestSubmit ? form.requestSubmit() : form.submit();
    return true;
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-review]")) return;
    var first = document.querySelector("[data-review-first]:not([disabled])");
    if (first) first.focus();
  });
  document.addEventListener("keydown", function (e) {
    if (!document.querySelector("[data-review]")) return;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      if (e.target.closest && e.target.closest("textarea[data-submit-on-ctrl-enter]")) return;  // a comment
      if (submit("[data-review-complete]")) e.preventDefault();
      return;
    }
    if (e.key === "Escape" && typing(document.activeElement)) { document.activeElement.blur(); return; }
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || typing(document.activeElement)) return;
    var target = { c: "[data-review-complete]", s: "[data-review-skip]", p: "[data-review-previous]" }[e.key];
    if (target && submit(target)) e.preventDefault();
  });
})();
