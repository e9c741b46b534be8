/* Media in pages: every `@@@langfuseMedia:type=…|id=…|source=…@@@` reference in the page's text
 * becomes what it stands for — an image thumbnail (click: full size in a dialog), an audio or
 * video player, or a download link for PDFs and other files.
 *
 * The bytes come from the page's own origin, with the page's access:
 *   /project/<id>/…              → /project/<id>/media/<media id>   (members)
 *   /public/traces/<trace>?…     → /public/media/<media id>?trace=…&project=…&session=…
 *   /public/sessions/<session>?… → /public/media/<media id>?session=…&project=…
 */
(function () {
  "use strict";

  var REF = /@@@langfuseMedia:([^@]+?)@@@/g;
  var SKIP = { SCRIPT: 1, STYLE: 1, TEXTAREA: 1, INPUT: 1, OPTION: 1, TITLE: 1 };

  function mediaUrl(id) {
    var path = window.location.pathname;
    var params = new URLSearchParams(window.location.search);
    var m = path.match(/^\/project\/([^/]+)\//);
    if (m) return "/project/" + m[1] + "/media/" + encodeURIComponent(id);
    var q = new URLSearchParams();
    m = path.match(/^\/public\/traces\/([^/]+)/);
    if (m) {
      q.set("trace", decodeURIComponent(m[1]));
    } else {
      m = path.match(/^\/public\/sessions\/(.+)$/);
      if (!m) return null;
      q.set("session", decodeURIComponent(m[1]));
    }
    ["project", "session"].forEach(function (k) { if (params.get(k) && !q.get(k)) q.set(k, params.get(k)); });
    return "/public/media/" + encodeURIComponent(id) + "?" + q.toString();
  }

  function parse(body) {
    var out = {};
    body.split("|").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i > 0) out[pair.slice(0, i)] = pair.slice(i + 1);
    });
    return out.id && out.type ? out : null;
  }

  function element(ref) {
    var url = mediaUrl(ref.id);
    var major = ref.type.split("/")[0];
    if (major !== "image" && major !== "audio" && major !== "video") major = "file";
    var wrap = document.createElement("span");
    wrap.className = "media media-" + (url ? major : "none");
    wrap.dataset.mediaId = ref.id;
    wrap.dataset.mediaType = ref.type;
    if (!url) {
      wrap.textContent = "[" + ref.type + " media]";
      return wrap;
    }
    if (major === "image") {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "media-thumb";
      button.title = "Show full size";
      button.setAttribute("data-media-open", "");
      var img = document.createElement("img");
      img.src = url;
      img.alt = ref.type + " image";
      img.loading = "lazy";
      button.appendChild(img);
      wrap.appendChild(button);
    } else if (major === "audio" || major === "video") {
      var player = document.createElement(major);
      player.controls = true;
      player.preload = "metadata";
      player.src = url;
      wrap.appendChild(player);
    }
    var link = document.createElement("a");
    link.className = "media-download small";
    link.href = url + (url.indexOf("?") < 0 ? "?" : "&") + "download=1";
    link.setAttribute("download", "");
    link.textContent = major === "file" ? "Download " + ref.type : "Download";
    wrap.appendChild(link);
    return wrap;
  }

  function replaceIn(node) {
    var text = node.nodeValue;
    // a JSON string that is only a reference: show the media, not the quotes around it
    if (/^"@@@langfuseMedia:[^@]+?@@@"$/.test(text)) text = text.slice(1, -1);
    REF.lastIndex = 0;
    if (!REF.test(text)) return;
    REF.lastIndex = 0;
    var frag = document.createDocumentFragment();
    var pos = 0;
    var m;
    while ((m = REF.exec(text)) !== null) {
      var ref = parse(m[1]);
      if (!ref) continue;
      if (m.index > pos) frag.appendChild(document.createTextNode(text.slice(pos, m.index)));
      frag.appendChild(element(ref));
      pos = m.index + m[0].length;
    }
    if (pos < text.length) frag.appendChild(document.createTextNode(text.slice(pos)));
    node.parentNode.replaceChild(frag, node);
  }

  function init(root) {
    if (!root || !root.ownerDocument && root !== document) return;
    var base = root === document ? document.body : root;
    if (!base) return;
    var walker = document.createTreeWalker(base, NodeFilter.SHOW_TEXT, {
      acceptNode: function (n) {
        if (n.nodeValue.indexOf("@@@langfuseMedia:") < 0) return NodeFilter.FILTER_REJECT;
        var p = n.parentNode;
        // raw JSON views stay raw: what they show (and copy) is what was stored
        if (!p || SKIP[p.nodeName] || p.closest(".media, .io-raw")) return NodeFilter.FILTER_REJECT;
        return NodeFilter.FILTER_ACCEPT;
      }
    });
    var found = [];
    while (walker.nextNode()) found.push(walker.currentNode);
    found.forEach(replaceIn);
  }

  function viewer() {
    var dialog = document.getElementById("media-viewer");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "media-viewer";
    dialog.className = "media-viewer";
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn btn-ghost btn-sm media-viewer-close";
    close.textContent = "Close";
    close.addEventListener("click", function () { dialog.close(); });
    var img = document.createElement("img");
    img.className = "media-full";
    img.alt = "";
    dialog.appendChild(close);
    dialog.appendChild(img);
    dialog.addEventListener("click", function (e) { if (e.target === dialog) dialog.close(); });
    document.body.appendChild(dialog);
    return dialog;
  }

  document.addEventListener("click", function (e) {
    var open = e.target.closest && e.target.closest("[data-media-open]");
    if (!open) return;
    e.preventDefault();
    var thumb = open.querySelector("img");
    var dialog = viewer();
    var full = dialog.querySelector("img");
    full.src = thumb.src;
    full.alt = thumb.alt;
    dialog.showModal();
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (e) { init(e.target); });
})();
