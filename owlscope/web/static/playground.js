/* The playground page (templates/playground/page.html): dependency-free.
 *
 * State comes from <script type="application/json" id="pg-boot"> ({state, connections, maxColumns,
 * base, projectUrl}); the pieces are cloned from the page's <template id="tpl-pg-*"> elements.
 * Each column POSTs its run as JSON to `<base>/run` and reads the server-sent events of the answer
 * (delta, tool_call, done, error) from the streamed response body. Ctrl+Enter runs every column.
 */
(function () {
  "use strict";

  var VAR_RE = /\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}/g;
  var ROLES = ["system", "developer", "user", "assistant", "tool"];
  var boot, state, columns = [], pendingItem = null;

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function clone(id) { return document.getElementById(id).content.firstElementChild.cloneNode(true); }
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }
  function pretty(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 2); }

  // ---- messages ---------------------------------------------------------------------------
  function renderMessages() {
    var list = $("#pg-messages");
    list.textContent = "";
    state.messages.forEach(function (m, i) {
      var li = clone("tpl-pg-message");
      var role = $("[data-pg-role]", li), content = $("[data-pg-content]", li);
      ROLES.forEach(function (r) {
        var o = document.createElement("option");
        o.value = r; o.textContent = r; role.appendChild(o);
      });
      li.dataset.index = String(i);
      if (m.type === "placeholder") {
        role.hidden = true; content.hidden = true;
        $("[data-pg-placeholder-label]", li).hidden = false;
        var name = $("[data-pg-placeholder-name]", li);
        name.hidden = false; name.value = m.name || "";
        name.setAttribute("aria-label", "Placeholder " + (i + 1) + " name");
      } else {
        role.value = ROLES.indexOf(m.role) >= 0 ? m.role : "user";
        role.setAttribute("aria-label", "Message " + (i + 1) + " role");
        content.value = m.content || "";
        content.setAttribute("aria-label", "Message " + (i + 1) + " content");
        content.rows = Math.min(12, Math.max(2, (m.content || "").split("\n").length));
        if (m.role === "tool") {
          var tid = $("[data-pg-tool-call-id]", li);
          tid.hidden = false; tid.value = m.tool_call_id || "";
          tid.setAttribute("aria-label", "Message " + (i + 1) + " tool call id");
        }
        if (m.tool_calls && m.tool_calls.length) {
          var pre = $("[data-pg-msg-calls]", li);
          pre.hidden = false; pre.textContent = JSON.stringify(m.tool_calls, null, 2);
        }
      }
      list.appendChild(li);
    });
    renderVariables();
  }

  function messageAt(el) { return state.messages[parseInt(el.closest("[data-pg-message]").dataset.index, 10)]; }

  function usedVariables() {
    var seen = [];
    state.messages.forEach(function (m) {
      if (m.type === "placeholder") return;
      var match;
      VAR_RE.lastIndex = 0;
      while ((match = VAR_RE.exec(m.content || "")) !== null) {
        if (seen.indexOf(match[1]) < 0) seen.push(match[1]);
      }
    });
    return seen;
  }

  function renderVariables() {
    var box = $("#pg-variables");
    var names = usedVariables();
    var holders = state.messages.filter(function (m) { return m.type === "placeholder" && m.name; })
      .map(function (m) { return m.name; });
    var focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    box.textContent = "";
    names.forEach(function (n) { box.appendChild(varField("var", n, state.variables[n] || "", "Variable " + n)); });
    holders.forEach(function (n) {
      box.appendChild(varField("ph", n, state.placeholders[n] || "", "Placeholder " + n + " messages (JSON list)"));
    });
    $("#pg-no-vars").hidden = names.length + holders.length > 0;
    if (focused) { var again = box.querySelector('[data-key="' + CSS.escape(focused) + '"]'); if (again) again.focus(); }
  }

  function varField(kind, name, value, label) {
    var wrap = document.createElement("label");
    wrap.className = "pg-field";
    var span = document.createElement("span");
    span.textContent = label;
    var input = document.createElement("textarea");
    input.rows = kind === "ph" ? 3 : 1;
    input.className = kind === "ph" ? "mono" : "";
    input.value = value;
    input.dataset.key = kind + ":" + name;
    input.dataset.pgVar = kind;
    input.dataset.name = name;
    if (kind === "ph") input.placeholder = '[{"role": "user", "content": "..."}]';
    wrap.appendChild(span); wrap.appendChild(input);
    return wrap;
  }

  // ---- tools and structured output ---------------------------------------------------------
  function renderTools() {
    var box = $("#pg-tools");
    box.textContent = "";
    state.tools.forEach(function (t, i) {
      var el = clone("tpl-pg-tool");
      el.dataset.index = String(i);
      var name = $("[data-pg-tool-name]", el), desc = $("[data-pg-tool-desc]", el), params = $("[data-pg-tool-params]", el);
      name.value = t.name || ""; name.setAttribute("aria-label", "Tool " + (i + 1) + " name");
      desc.value = t.description || ""; desc.setAttribute("aria-label", "Tool " + (i + 1) + " description");
      params.value = typeof t.parameters === "string" ? t.parameters : JSON.stringify(t.parameters || {}, null, 2);
      params.setAttribute("aria-label", "Tool " + (i + 1) + " parameters (JSON schema)");
      box.appendChild(el);
    });
  }

  function readTools() {
    return $$("[data-pg-tool]").map(function (el, i) {
      var raw = $("[data-pg-tool-params]", el).value.trim() || "{}";
      var params;
      try { params = JSON.parse(raw); } catch (e) { throw new Error("Tool " + (i + 1) + ": the parameters are not valid JSON"); }
      return { name: $("[data-pg-tool-name]", el).value.trim(), description: $("[data-pg-tool-desc]", el).value, parameters: params };
    });
  }

  function readSchema() {
    if (!$("#pg-structured").checked) return null;
    try { return JSON.parse($("#pg-schema").value || "{}"); }
    catch (e) { throw new Error("The output schema is not valid JSON"); }
  }

  // ---- columns -----------------------------------------------------------------------------
  function connection(provider) {
    return boot.connections.filter(function (c) { return c.provider === provider; })[0];
  }

  function providerFor(model) {
    var hit = boot.connections.filter(function (c) { return model && c.models.indexOf(model) >= 0; })[0];
    return (hit || boot.connections[0] || { provider: "" }).provider;
  }

  function addColumn(settings) {
    if (columns.length >= boot.maxColumns) return;
    var el = clone("tpl-pg-column");
    var n = columns.length + 1;
    var select = $("[data-pg-provider]", el), model = $("[data-pg-model]", el);
    boot.connections.forEach(function (c) {
      var o = document.createElement("option");
      o.value = c.provider; o.textContent = c.provider + " (" + c.adapter + ")"; select.appendChild(o);
    });
    select.value = settings.provider || providerFor(settings.model);
    model.value = settings.model || ((connection(select.value) || { models: [] }).models[0] || "");
    model.setAttribute("list", "pg-models");
    select.setAttribute("aria-label", "Column " + n + " connection");
    model.setAttribute("aria-label", "Column " + n + " model");
    $$("[data-pg-param]", el).forEach(function (input) {
      var key = input.getAttribute("data-pg-param");
      var v = (settings.params || {})[key];
      input.value = v === undefined || v === null ? "" : String(v);
      input.setAttribute("aria-label", "Column " + n + " " + key.replace("_", " "));
    });
    $("[data-pg-more]", el).open = ["frequency_penalty", "presence_penalty", "seed"].some(function (k) {
      return settings.params && settings.params[k] !== undefined;
    });
    $("[data-pg-output]", el).setAttribute("aria-label", "Column " + n + " answer");
    $("#pg-columns").appendChild(el);
    columns.push({ el: el, result: null });
    updateColumns();
  }

  function updateColumns() {
    $("#pg-column-count").textContent = String(columns.length);
    $("[data-pg-add-column]").disabled = columns.length >= boot.maxColumns;
    columns.forEach(function (c) { $("[data-pg-remove-column]", c.el).hidden = columns.length < 2; });
    $("#pg-columns").style.setProperty("--pg-cols", String(columns.length));
    var models = $("#pg-models");
    models.textContent = "";
    var all = [];
    boot.connections.forEach(function (c) { c.models.forEach(function (m) { if (all.indexOf(m) < 0) all.push(m); }); });
    all.forEach(function (m) { var o = document.createElement("option"); o.value = m; models.appendChild(o); });
  }

  function columnSettings(col) {
    var params = {};
    $$("[data-pg-param]", col.el).forEach(function (input) {
      if (input.value !== "") params[input.getAttribute("data-pg-param")] = Number(input.value);
    });
    return { provider: $("[data-pg-provider]", col.el).value, model: $("[data-pg-model]", col.el).value.trim(), params: params };
  }

  function runRequest(col) {
    return {
      messages: state.messages, variables: state.variables, placeholders: state.placeholders,
      tools: readTools(), output_schema: readSchema(), model: columnSettings(col), source: state.source
    };
  }

  // ---- running -----------------------------------------------------------------------------
  function showError(col, message, traceId) {
    var box = $("[data-pg-error]", col.el);
    box.hidden = false;
    box.textContent = message;
    col.el.dataset.state = "error";
    if (traceId) traceLink(col, traceId);
  }

  function traceLink(col, traceId) {
    var a = $("[data-pg-trace-link]", col.el);
    a.href = boot.projectUrl + "/traces/" + encodeURIComponent(traceId);
    a.hidden = false;
  }

  function stat(dl, label, value) {
    var div = document.createElement("div");
    var dt = document.createElement("dt"); dt.textContent = label;
    var dd = document.createElement("dd"); dd.textContent = value;
    div.appendChild(dt); div.appendChild(dd); dl.appendChild(div);
  }

  var fmt = window.Owlscope.format;
  function money(v) { return fmt.cost(v === null || v === undefined ? NaN : v); }

  function showCall(col, ev) {
    var el = clone("tpl-pg-call");
    $("[data-pg-call-name]", el).textContent = ev.name;
    $("[data-pg-call-id]", el).textContent = ev.id;
    var args = ev.arguments;
    try { args = JSON.stringify(JSON.parse(ev.arguments), null, 2); } catch (e) { /* shown as written */ }
    $("[data-pg-call-args]", el).textContent = args;
    el.dataset.callId = ev.id;
    $("[data-pg-call-result]", el).setAttribute("aria-label", "Result of " + ev.name);
    $("[data-pg-calls]", col.el).appendChild(el);
  }

  function onEvent(col, name, data, out) {
    if (name === "delta") {
      if (!col.text) out.textContent = "";
      col.text = (col.text || "") + data.text;
      out.textContent = col.text;
    } else if (name === "tool_call") {
      if (!col.text) out.textContent = "";
      showCall(col, data);
    } else if (name === "done") {
      col.result = data;
      col.el.dataset.state = "done";
      if (data.output !== null && typeof data.output === "object" && !data.tool_calls.length) {
        out.textContent = pretty(data.output);
        out.classList.add("mono");
      } else if (!data.text && !data.tool_calls.length) {
        out.innerHTML = '<span class="muted">(empty answer)</span>';
      }
      var dl = $("[data-pg-stats]", col.el);
      stat(dl, "Latency", fmt.duration(data.latency_ms / 1000));
      if (data.ttft_ms !== null) stat(dl, "First token", fmt.duration(data.ttft_ms / 1000));
      var u = data.usage || {};
      stat(dl, "Tokens", u.total !== undefined ? (fmt.number(u.input) + " in · " + fmt.number(u.output) + " out") : "—");
      stat(dl, "Cost", money(data.cost ? data.cost.total : null));
      if (data.model) stat(dl, "Model", data.model);
      $("[data-pg-use-answer]", col.el).disabled = false;
      $("[data-pg-save-item]", col.el).disabled = false;
      if (data.trace_id) traceLink(col, data.trace_id);
    } else if (name === "error") {
      showError(col, data.message, data.trace_id);
    }
  }

  function resetColumn(col) {
    col.result = null; col.text = "";
    var out = $("[data-pg-output]", col.el);
    out.innerHTML = '<span class="muted pg-waiting">Waiting for the answer…</span>';
    out.classList.remove("mono");
    $("[data-pg-calls]", col.el).textContent = "";
    $("[data-pg-stats]", col.el).textContent = "";
    $("[data-pg-error]", col.el).hidden = true;
    $("[data-pg-trace-link]", col.el).hidden = true;
    $("[data-pg-use-answer]", col.el).disabled = true;
    $("[data-pg-save-item]", col.el).disabled = true;
    col.el.dataset.state = "running";
    return out;
  }

  function runColumn(col) {
    var out = resetColumn(col);
    var body;
    try { body = JSON.stringify(runRequest(col)); } catch (e) { showError(col, e.message); return Promise.resolve(); }
    col.request = JSON.parse(body);
    return fetch(boot.base + "/run", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf(), "Accept": "text/event-stream" }
    }).then(function (resp) {
      if (!resp.ok) {
        return resp.json().then(function (j) { showError(col, j.message || resp.statusText); },
          function () { showError(col, "The run failed (HTTP " + resp.status + ")."); });
      }
      var reader = resp.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) {
            if (col.el.dataset.state === "running") showError(col, "The answer ended early.");
            return;
          }
          buffer += decoder.decode(r.value, { stream: true });
          var at;
          while ((at = buffer.indexOf("\n\n")) >= 0) {
            var block = buffer.slice(0, at); buffer = buffer.slice(at + 2);
            var name = "message", data = "";
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) name = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
            });
            if (data) onEvent(col, name, JSON.parse(data), out);
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (e) { showError(col, "The run failed: " + e.message); });
  }

  function runAll() {
    sync();
    columns.forEach(function (c) { runColumn(c); });
  }

  // ---- reading the editor back -------------------------------------------------------------
  function sync() {
    $$("[data-pg-message]").forEach(function (li) {
      var m = messageAt(li);
      if (m.type === "placeholder") { m.name = $("[data-pg-placeholder-name]", li).value.trim(); return; }
      m.role = $("[data-pg-role]", li).value;
      m.content = $("[data-pg-content]", li).value;
      if (m.role === "tool") m.tool_call_id = $("[data-pg-tool-call-id]", li).value;
    });
  }

  // ---- saving ------------------------------------------------------------------------------
  function postJSON(path, payload) {
    return fetch(boot.base + path, {
      method: "POST", body: JSON.stringify(payload), credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }
    }).then(function (resp) {
      return resp.json().then(function (j) {
        if (!resp.ok) throw new Error(j.message || resp.statusText);
        return j;
      });
    });
  }

  function dialogResult(dialog, error, html) {
    var err = $("[data-pg-dialog-error]", dialog), done = $("[data-pg-dialog-done]", dialog);
    err.hidden = !error; err.textContent = error || "";
    done.hidden = !html;
    done.textContent = "";
    if (html) done.appendChild(html);
  }

  function link(text, href) {
    var span = document.createElement("span");
    var a = document.createElement("a");
    a.href = href; a.textContent = text;
    span.appendChild(a);
    return span;
  }

  function savePrompt(form) {
    sync();
    var dialog = form.closest("dialog");
    var payload;
    try {
      payload = {
        name: form.elements.name.value.trim(), type: form.elements.type.value,
        commit_message: form.elements.commit_message.value,
        labels: form.elements.labels.value.split(/[\s,]+/).filter(Boolean),
        messages: state.messages, tools: readTools(), output_schema: readSchema(),
        model: columns.length ? columnSettings(columns[0]) : null
      };
    } catch (e) { dialogResult(dialog, e.message); return; }
    if (payload.model && (!payload.model.provider || !payload.model.model)) payload.model = null;
    postJSON("/save-prompt", payload).then(function (j) {
      dialogResult(dialog, null, link("Saved " + j.name + " version " + j.version, j.url));
    }, function (e) { dialogResult(dialog, e.message); });
  }

  function saveItem(form) {
    var dialog = form.closest("dialog"), col = pendingItem;
    if (!col || !col.result) { dialogResult(dialog, "Run the column first."); return; }
    postJSON("/save-item", {
      dataset: form.elements.dataset.value.trim(), run: col.request, output: col.result.output,
      trace_id: col.result.trace_id, observation_id: col.result.observation_id
    }).then(function (j) {
      dialogResult(dialog, null, link("Saved to " + j.datasetName, j.url));
    }, function (e) { dialogResult(dialog, e.message); });
  }

  // ---- events ------------------------------------------------------------------------------
  function colOf(el) {
    var node = el.closest("[data-pg-column]");
    return columns.filter(function (c) { return c.el === node; })[0];
  }

  document.addEventListener("click", function (e) {
    var t = e.target.closest("button, a");
    if (!t || !$("[data-playground]")) return;
    if (t.hasAttribute("data-pg-add-message")) {
      sync();
      var last = state.messages[state.messages.length - 1];
      state.messages.push({ role: last && last.role === "user" ? "assistant" : "user", content: "" });
      renderMessages();
    } else if (t.hasAttribute("data-pg-add-placeholder")) {
      sync(); state.messages.push({ type: "placeholder", name: "history" }); renderMessages();
    } else if (t.hasAttribute("data-pg-remove-message")) {
      sync(); state.messages.splice(state.messages.indexOf(messageAt(t)), 1); renderMessages();
    } else if (t.hasAttribute("data-pg-add-tool")) {
      state.tools = readToolsLoose(); state.tools.push({ name: "", description: "", parameters: { type: "object", properties: {} } });
      renderTools();
    } else if (t.hasAttribute("data-pg-remove-tool")) {
      var idx = parseInt(t.closest("[data-pg-tool]").dataset.index, 10);
      state.tools = readToolsLoose(); state.tools.splice(idx, 1); renderTools();
    } else if (t.hasAttribute("data-pg-add-column")) {
      addColumn(columns.length ? columnSettings(columns[columns.length - 1]) : {});
    } else if (t.hasAttribute("data-pg-remove-column")) {
      var c = colOf(t);
      columns.splice(columns.indexOf(c), 1); c.el.remove(); updateColumns();
    } else if (t.hasAttribute("data-pg-run-all")) {
      runAll();
    } else if (t.hasAttribute("data-pg-run-column")) {
      sync(); runColumn(colOf(t));
    } else if (t.hasAttribute("data-pg-use-answer")) {
      var col = colOf(t);
      sync();
      var msg = { role: "assistant", content: col.result.text || "" };
      if (col.result.tool_calls.length) msg.tool_calls = col.result.tool_calls;
      state.messages.push(msg); renderMessages();
    } else if (t.hasAttribute("data-pg-add-result")) {
      var call = t.closest("[data-pg-call]"), owner = colOf(t);
      sync();
      var has = state.messages.some(function (m) {
        return (m.tool_calls || []).some(function (tc) { return tc.id === call.dataset.callId; });
      });
      if (!has) state.messages.push({ role: "assistant", content: owner.result ? owner.result.text : "", tool_calls: owner.result ? owner.result.tool_calls : [] });
      state.messages.push({ role: "tool", tool_call_id: call.dataset.callId, content: $("[data-pg-call-result]", call).value });
      t.disabled = true;
      renderMessages();
    } else if (t.hasAttribute("data-pg-save-item")) {
      pendingItem = colOf(t);
      var d = document.getElementById("pg-save-item");
      dialogResult(d, null); d.showModal();
    } else if (t.hasAttribute("data-pg-open")) {
      var dlg = document.getElementById(t.getAttribute("data-pg-open"));
      dialogResult(dlg, null); dlg.showModal();
    } else if (t.hasAttribute("data-pg-close")) {
      t.closest("dialog").close();
    }
  });

  function readToolsLoose() {
    return $$("[data-pg-tool]").map(function (el) {
      return { name: $("[data-pg-tool-name]", el).value, description: $("[data-pg-tool-desc]", el).value,
               parameters: $("[data-pg-tool-params]", el).value };
    });
  }

  document.addEventListener("input", function (e) {
    var t = e.target;
    if (t.matches("[data-pg-content]")) {
      messageAt(t).content = t.value;
      renderVariables();
    } else if (t.matches("[data-pg-placeholder-name]")) {
      messageAt(t).name = t.value.trim();
      renderVariables();
    } else if (t.matches("[data-pg-var]")) {
      (t.dataset.pgVar === "var" ? state.variables : state.placeholders)[t.dataset.name] = t.value;
    } else if (t.matches("#pg-structured")) {
      $("#pg-schema").hidden = !t.checked;
    }
  });

  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches("[data-pg-role]")) { sync(); renderMessages(); }
    else if (t.matches("#pg-structured")) { $("#pg-schema").hidden = !t.checked; }
    else if (t.matches("[data-pg-provider]")) {
      var model = $("[data-pg-model]", t.closest("[data-pg-column]"));
      var c = connection(t.value);
      if (c && c.models.length && c.models.indexOf(model.value) < 0) model.value = c.models[0];
    }
  });

  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.matches("[data-pg-save-prompt-form]")) { e.preventDefault(); savePrompt(f); }
    else if (f.matches("[data-pg-save-item-form]")) { e.preventDefault(); saveItem(f); }
  });

  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && $("[data-playground]")) { e.preventDefault(); runAll(); }
  });

  function init() {
    var el = document.getElementById("pg-boot");
    if (!el) return;
    boot = JSON.parse(el.textContent);
    state = boot.state;
    state.variables = state.variables || {};
    state.placeholders = state.placeholders || {};
    state.tools = state.tools || [];
    if (state.output_schema) {
      $("#pg-structured").checked = true;
      $("#pg-schema").hidden = false;
      $("#pg-schema").value = JSON.stringify(state.output_schema, null, 2);
    } else {
      $("#pg-schema").value = JSON.stringify({ type: "object", properties: { answer: { type: "string" } },
                                               required: ["answer"], additionalProperties: false }, null, 2);
    }
    renderMessages();
    renderTools();
    addColumn({ model: state.model.model, params: state.model.params });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
