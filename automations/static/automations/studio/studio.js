/* The design studio: the flow as cards, validated as you type, saved through the automations API,
   with the live debug panel of development runs below.

   Everything that came from a caller, a receiver or a flow (run bodies, headers, traces, errors,
   names) is put in the page with textContent and never as markup: the page lives on the app's origin. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("studio-config").textContent);
  var canEdit = config.can_edit;

  // ---- the actions: what the palette offers and which form each step gets -----------------------
  var ACTIONS = {
    condition: {label: "Condition", text: "Compare two values and run the then or else steps.", fields: [
      {key: "if.left", label: "Left", type: "text", template: true, required: true},
      {key: "if.op", label: "Operator", type: "select", options: config.ops, required: true},
      {key: "if.right", label: "Right", type: "value", template: true, hideWhen: {"if.op": "exists"}}
    ], lanes: ["then", "else"], make: function () {
      return {"if": {left: "{{ payload.x }}", op: "exists"}, then: [], "else": []};
    }},
    set: {label: "Set variable", text: "Store a value in a variable the next steps read.", fields: [
      {key: "name", label: "Variable name", type: "text", required: true},
      {key: "value", label: "Value", type: "value", template: true, required: true}
    ], make: function () { return {name: "", value: ""}; }},
    http_request: {label: "HTTP request", text: "Call another service and keep its status, body and headers.", fields: [
      {key: "method", label: "Method", type: "select", options: config.methods},
      {key: "url", label: "URL", type: "text", template: true, required: true},
      {key: "headers", label: "Headers", type: "pairs"},
      {key: "body", label: "Body (JSON)", type: "json", template: true},
      {key: "timeout_s", label: "Timeout (s)", type: "number"},
      {key: "save_as", label: "Save as", type: "text", required: true}
    ], make: function () { return {method: "POST", url: "https://", save_as: "reply"}; }},
    create_request: {label: "Create request", text: "Open a support conversation for a lead.", fields: [
      {key: "first_text", label: "First text", type: "text", template: true, required: true},
      {key: "lead.fullname", label: "Lead's full name", type: "text", template: true, required: true},
      {key: "lead.email", label: "Lead's e-mail", type: "text", template: true},
      {key: "department", label: "Department (id, optional)", type: "text", template: true},
      {key: "attributes", label: "Attributes (JSON)", type: "json", template: true},
      {key: "save_as", label: "Save as", type: "text", required: true}
    ], make: function () {
      return {first_text: "{{ payload.message }}", lead: {fullname: "{{ payload.name }}", email: "{{ payload.email }}"},
        save_as: "request"};
    }},
    send_message: {label: "Send message", text: "Add a message to a conversation.", fields: [
      {key: "request", label: "Request (id)", type: "text", template: true, required: true},
      {key: "text", label: "Text", type: "text", template: true, required: true},
      {key: "save_as", label: "Save as", type: "text"}
    ], make: function () { return {request: "{{ request.request_id }}", text: ""}; }},
    close_request: {label: "Close request", text: "Close a conversation.", fields: [
      {key: "request", label: "Request (id)", type: "text", template: true, required: true}
    ], make: function () { return {request: "{{ request.request_id }}"}; }},
    emit_event: {label: "Emit event", text: "Publish a custom event to the project's REST Hooks.", fields: [
      {key: "name", label: "Event name", type: "text", required: true},
      {key: "attributes", label: "Attributes (JSON)", type: "json", template: true}
    ], make: function () { return {name: "order.received"}; }},
    response: {label: "Response", text: "Answer the caller: status, JSON body, headers.", fields: [
      {key: "status", label: "Status", type: "number", required: true},
      {key: "body", label: "Body (JSON)", type: "json", template: true},
      {key: "headers", label: "Headers", type: "pairs"},
      {key: "end", label: "End the flow after answering", type: "checkbox"}
    ], make: function () { return {status: 200, body: {success: true}}; }},
    for_each: {label: "For each", text: "Run steps once per item of a list.", fields: [
      {key: "items", label: "Items", type: "text", template: true, required: true},
      {key: "as", label: "Each item as", type: "text", required: true}
    ], lanes: ["steps"], make: function () { return {items: "{{ payload.items }}", as: "item", steps: []}; }},
    log: {label: "Log", text: "Write a line to the run's trace.", fields: [
      {key: "message", label: "Message", type: "text", template: true, required: true}
    ], make: function () { return {message: ""}; }},
    stop: {label: "Stop", text: "End the flow here.", fields: [], make: function () { return {}; }}
  };
  var LANE_TITLES = {then: "then", "else": "else", steps: "for each item"};

  // ---- small helpers -------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) { return; }
      if (key === "text") { node.textContent = value; } else if (key.slice(0, 2) === "on") {
        node.addEventListener(key.slice(2), value);
      } else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }
  function button(label, onclick, attrs) {
    var b = el("button", Object.assign({type: "button"}, attrs || {}), [label]);
    b.addEventListener("click", onclick);
    return b;
  }
  function clone(value) { return JSON.parse(JSON.stringify(value)); }
  function getPath(object, key) {
    return key.split(".").reduce(function (at, part) { return at && typeof at === "object" ? at[part] : undefined; }, object);
  }
  function setPath(object, key, value) {
    var parts = key.split("."), at = object;
    parts.slice(0, -1).forEach(function (part) {
      if (!at[part] || typeof at[part] !== "object") { at[part] = {}; }
      at = at[part];
    });
    if (value === undefined) { delete at[parts[parts.length - 1]]; } else { at[parts[parts.length - 1]] = value; }
  }
  function pretty(value) { return typeof value === "string" ? value : JSON.stringify(value, null, 2); }

  function api(method, url, body) {
    var options = {method: method, credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRFToken": config.csrf}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      var json = (response.headers.get("Content-Type") || "").indexOf("json") !== -1;
      return (json ? response.json() : response.text()).then(function (data) {
        return {status: response.status, ok: response.ok, json: json, data: data};
      });
    });
  }
  // ---- state ---------------------------------------------------------------------------------------
  var automation = null;           // as the API last answered it
  var flow = {steps: []};          // being edited
  var dirty = false;
  var problems = {errors: [], warnings: []};
  var lastRunFailures = {};        // step id -> error of the newest development run
  var cards = new Map();           // step object -> its card element
  var openSteps = new Set();       // step objects whose form is unfolded

  function allIds(steps, into) {
    (steps || []).forEach(function (step) {
      if (step && typeof step === "object") {
        if (step.id) { into.add(step.id); }
        ["then", "else", "steps"].forEach(function (lane) { allIds(step[lane], into); });
      }
    });
    return into;
  }
  function newId(action, reserved) {
    var ids = allIds(flow.steps, new Set(reserved || [])), n = 1;
    while (ids.has(action + "_" + n)) { n += 1; }
    return action + "_" + n;
  }
  function withNewIds(step) {
    var copy = clone(step), given = new Set();
    (function renew(s) {
      s.id = newId(s.action, given);
      given.add(s.id);
      ["then", "else", "steps"].forEach(function (lane) { (s[lane] || []).forEach(renew); });
    }(copy));
    return copy;
  }

  // ---- variables in scope, for the template hints ---------------------------------------------------
  var secretNames = [];
  // What a step's templates can read: the request, and the names set by the steps that run before
  // it (in the order of the document: earlier steps, enclosing conditions and loops).
  function scopeNames(upTo) {
    var names = ["payload", "query", "headers", "method", "path", "raw_body"];
    (function walk(steps) {
      for (var i = 0; i < (steps || []).length; i += 1) {
        var step = steps[i];
        if (step === upTo) { return true; }
        if (!step || typeof step !== "object") { continue; }
        if (step.action === "for_each" && step.as) { names.push(step.as); }
        // A lane sees what was set before its step, not what its sibling lane sets; the steps
        // after the step may read what either lane set.
        var lanes = ["then", "else", "steps"], before = names.length, added = [];
        for (var j = 0; j < lanes.length; j += 1) {
          if (walk(step[lanes[j]])) { return true; }
          added = added.concat(names.splice(before));
        }
        names = names.concat(added);
        if (step.save_as) { names.push(step.save_as); }
        if (step.action === "set" && step.name) { names.push(step.name); }
      }
      return false;
    }(flow.steps));
    secretNames.forEach(function (name) { names.push("secrets." + name); });
    return names.filter(function (name, i) { return names.indexOf(name) === i; });
  }

  // ---- changes -------------------------------------------------------------------------------------
  var validateTimer = null;
  function changed(structure) {
    dirty = true;
    setSaveState("Unsaved changes");
    if (structure) { renderFlow(); }
    clearTimeout(validateTimer);
    validateTimer = setTimeout(validate, 350);
  }
  function setSaveState(text, kind) {
    var state = document.getElementById("save-state");
    state.textContent = text;
    state.className = kind || "";
  }

  // ---- the flow as cards ---------------------------------------------------------------------------
  var focusAfterRender = null;     // {step, selector}
  function renderFlow() {
    var container = document.getElementById("flow");
    cards = new Map();
    container.replaceChildren(renderLane(flow.steps, "steps", "The flow"));
    showProblems();
    if (focusAfterRender) {
      var card = cards.get(focusAfterRender.step);
      var target = card && (card.querySelector(focusAfterRender.selector) || card.querySelector(".card-title"));
      if (target) { target.focus(); }
      focusAfterRender = null;
    }
  }

  function renderLane(steps, laneName, title) {
    var list = el("ol", {"class": "lane", "data-lane": laneName});
    steps.forEach(function (step, index) { list.appendChild(renderCard(steps, index)); });
    if (!steps.length) {
      list.appendChild(el("li", {"class": "lane-empty muted",
        text: laneName === "steps" && steps === flow.steps ? "No steps yet: add the first one, e.g. a Condition or a Response." : "No steps yet."}));
    }
    var parts = [list];
    if (canEdit) {
      parts.push(button("+ Add step", function () { openPalette(steps); },
        {"class": "add-step", "aria-label": "Add a step to " + title}));
    }
    return el("div", {"class": "lane-wrap"}, parts);
  }

  function summary(step) {
    switch (step.action) {
      case "condition": return step["if"] ? [step["if"].left, step["if"].op, step["if"].op === "exists" ? "" : pretty(step["if"].right)].join(" ") : "";
      case "http_request": return (step.method || "GET") + " " + (step.url || "");
      case "response": return String(step.status) + (step.end ? " · ends the flow" : "");
      case "set": return (step.name || "?") + " = " + pretty(step.value);
      case "create_request": return step.first_text || "";
      case "send_message": return step.text || "";
      case "emit_event": return step.name || "";
      case "for_each": return (step.items || "") + " as " + (step.as || "");
      case "log": return step.message || "";
      default: return "";
    }
  }

  function renderCard(steps, index) {
    var step = steps[index];
    var spec = ACTIONS[step && step.action] || {label: String(step && step.action), fields: []};
    var open = openSteps.has(step);
    var formId = "form-" + (step.id || index) + "-" + Math.random().toString(36).slice(2, 7);
    var title = button("", function () {
      if (openSteps.has(step)) { openSteps.delete(step); } else { openSteps.add(step); }
      focusAfterRender = {step: step, selector: ".card-title"};
      renderFlow();
    }, {"class": "card-title", "aria-expanded": open ? "true" : "false", "aria-controls": formId});
    title.append(el("span", {"class": "card-action", text: spec.label}), el("span", {"class": "card-id", text: step.id || ""}),
      el("span", {"class": "card-summary", text: summary(step)}));
    var tools = null;
    if (canEdit) {
      tools = el("div", {"class": "card-tools"}, [
        button("↑", function () { move(steps, index, -1); }, {"class": "small move-up", "aria-label": "Move " + (step.id || "step") + " up", disabled: index === 0}),
        button("↓", function () { move(steps, index, 1); }, {"class": "small move-down", "aria-label": "Move " + (step.id || "step") + " down", disabled: index === steps.length - 1}),
        button("Duplicate", function () { duplicate(steps, index); }, {"class": "small duplicate"}),
        button("Delete", function () { remove(steps, index); }, {"class": "small danger delete"})
      ]);
    }
    var head = el("div", {"class": "card-head"}, [
      canEdit ? el("span", {"class": "grip", title: "Drag to reorder", "aria-hidden": "true", text: "⠿"}) : null, title, tools]);
    var card = el("li", {"class": "card action-" + step.action, "data-step": step.id || "", "data-action": step.action}, [
      head, el("div", {"class": "card-notes"})]);
    if (open) { card.appendChild(renderForm(step, spec, formId)); }
    (spec.lanes || []).forEach(function (lane) {
      if (!Array.isArray(step[lane])) { step[lane] = []; }
      card.appendChild(el("div", {"class": "branch branch-" + lane}, [
        el("div", {"class": "branch-title", text: LANE_TITLES[lane]}),
        renderLane(step[lane], lane, (step.id || "step") + " " + LANE_TITLES[lane])
      ]));
    });
    if (canEdit) { draggable(card, head, steps, index); }
    cards.set(step, card);
    return card;
  }

  // ---- reordering, duplicating, deleting ------------------------------------------------------------
  function move(steps, index, by) {
    var to = index + by;
    if (to < 0 || to >= steps.length) { return; }
    var step = steps.splice(index, 1)[0];
    steps.splice(to, 0, step);
    focusAfterRender = {step: step, selector: by < 0 ? ".move-up:not([disabled])" : ".move-down:not([disabled])"};
    changed(true);
  }
  function duplicate(steps, index) {
    var copy = withNewIds(steps[index]);
    steps.splice(index + 1, 0, copy);
    openSteps.add(copy);
    focusAfterRender = {step: copy, selector: ".card-title"};
    changed(true);
  }
  function remove(steps, index) {
    var step = steps.splice(index, 1)[0];
    openSteps.delete(step);
    var neighbour = steps[Math.min(index, steps.length - 1)];
    if (neighbour) { focusAfterRender = {step: neighbour, selector: ".card-title"}; }
    changed(true);
    if (!neighbour) { var add = document.querySelector(".add-step"); if (add) { add.focus(); } }
  }
  var dragged = null;
  // Only the grip starts a drag: a draggable card would take the mouse from its text fields.
  function draggable(card, handle, steps, index) {
    var grip = handle.querySelector(".grip");
    grip.addEventListener("mousedown", function () { card.setAttribute("draggable", "true"); });
    grip.addEventListener("mouseup", function () { card.removeAttribute("draggable"); });
    card.addEventListener("dragstart", function (event) {
      event.stopPropagation();
      dragged = {steps: steps, index: index};
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", String(index));
      card.classList.add("dragging");
    });
    card.addEventListener("dragend", function () { card.classList.remove("dragging"); card.removeAttribute("draggable"); dragged = null; });
    card.addEventListener("dragover", function (event) {
      if (dragged && dragged.steps === steps) { event.preventDefault(); event.stopPropagation(); card.classList.add("drop-target"); }
    });
    card.addEventListener("dragleave", function () { card.classList.remove("drop-target"); });
    card.addEventListener("drop", function (event) {
      if (!dragged || dragged.steps !== steps) { return; }
      event.preventDefault();
      event.stopPropagation();
      var step = steps.splice(dragged.index, 1)[0];
      steps.splice(index, 0, step);
      dragged = null;
      changed(true);
    });
  }

  // ---- the palette ---------------------------------------------------------------------------------
  var paletteTarget = null;
  function openPalette(steps) {
    paletteTarget = steps;
    var list = document.getElementById("palette-actions");
    list.replaceChildren();
    Object.keys(ACTIONS).forEach(function (action) {
      var spec = ACTIONS[action];
      var choice = button("", function () { addStep(action); }, {"class": "palette-action", "data-action": action});
      choice.append(el("strong", {text: spec.label}), el("span", {"class": "muted", text: spec.text}));
      list.appendChild(el("li", {}, [choice]));
    });
    var dialog = document.getElementById("palette");
    dialog.showModal();
    list.querySelector("button").focus();
  }
  function addStep(action) {
    var step = Object.assign({id: newId(action), action: action}, ACTIONS[action].make());
    paletteTarget.push(step);
    openSteps.add(step);
    document.getElementById("palette").close();
    focusAfterRender = {step: step, selector: "input, select, textarea"};
    changed(true);
  }

  // ---- the form of a step --------------------------------------------------------------------------
  function renderForm(step, spec, formId) {
    var form = el("div", {"class": "card-form", id: formId});
    form.appendChild(field(step, {key: "id", label: "Step id", type: "text"}));
    spec.fields.forEach(function (f) { form.appendChild(field(step, f)); });
    var hint = el("p", {"class": "hint muted"}, ["Templates read: "]);
    var names = scopeNames(step);
    names.forEach(function (name, i) {
      hint.appendChild(el("code", {text: "{{ " + name + " }}"}));
      if (i < names.length - 1) { hint.appendChild(document.createTextNode(" ")); }
    });
    if (spec.fields.some(function (f) { return f.template; })) { form.appendChild(hint); }
    updateVisibility(form, step);
    return form;
  }
  function updateVisibility(form, step) {
    form.querySelectorAll("[data-hide-key]").forEach(function (row) {
      row.hidden = getPath(step, row.getAttribute("data-hide-key")) === row.getAttribute("data-hide-value");
    });
  }
  var fieldCounter = 0;
  function field(step, f) {
    var id = "f" + (fieldCounter += 1);
    var value = getPath(step, f.key);
    var control, error = el("span", {"class": "field-error error", role: "alert"});
    var row = el("div", {"class": "field field-" + f.type, "data-key": f.key});
    if (f.hideWhen) {
      var hideKey = Object.keys(f.hideWhen)[0];
      row.setAttribute("data-hide-key", hideKey);
      row.setAttribute("data-hide-value", f.hideWhen[hideKey]);
    }
    function store(v) {
      setPath(step, f.key, v);
      var card = cards.get(step);
      if (card) {
        card.querySelector(".card-summary").textContent = summary(step);
        if (f.key === "id") { card.querySelector(".card-id").textContent = step.id || ""; card.setAttribute("data-step", step.id || ""); }
        updateVisibility(card.querySelector(".card-form"), step);
      }
      changed(false);
    }
    var disabled = !canEdit;
    if (f.type === "select") {
      control = el("select", {id: id, disabled: disabled});
      var options = (f.required ? [] : [""]).concat(f.options);
      options.forEach(function (option) { control.appendChild(el("option", {value: option, text: option || "(default)"})); });
      control.value = value === undefined ? "" : value;
      control.addEventListener("change", function () { store(control.value || undefined); });
    } else if (f.type === "checkbox") {
      control = el("input", {type: "checkbox", id: id, disabled: disabled});
      control.checked = value === true;
      control.addEventListener("change", function () { store(control.checked ? true : undefined); });
    } else if (f.type === "number") {
      control = el("input", {type: "text", inputmode: "numeric", id: id, readonly: disabled});
      control.value = value === undefined ? "" : String(value);
      control.addEventListener("input", function () {
        var raw = control.value.trim();
        if (raw === "") { store(f.required ? "" : undefined); return; }
        store(/^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw);
      });
    } else if (f.type === "json" || f.type === "value") {
      control = el("textarea", {id: id, rows: f.type === "json" ? 4 : 1, spellcheck: "false", readonly: disabled});
      control.value = value === undefined ? "" : (f.type === "value" && typeof value === "string" ? value : JSON.stringify(value, null, 2));
      control.addEventListener("input", function () {
        var raw = control.value;
        error.textContent = "";
        if (raw.trim() === "") { store(f.required ? "" : undefined); return; }
        try { store(JSON.parse(raw)); } catch (e) {
          // A value field takes text as text; a JSON field takes a lone template ("{{ payload }}").
          if (f.type === "value" || /^\s*\{\{[^]*\}\}\s*$/.test(raw)) { store(f.type === "value" ? raw : raw.trim()); } else {
            error.textContent = "Not JSON yet: " + e.message;
          }
        }
      });
    } else if (f.type === "pairs") {
      control = pairs(value || {}, function (object) { store(Object.keys(object).length ? object : undefined); });
    } else {
      control = el("input", {type: "text", id: id, readonly: disabled, spellcheck: "false"});
      control.value = value === undefined ? "" : String(value);
      control.addEventListener("input", function () {
        store(control.value === "" && !f.required && f.key !== "id" ? undefined : control.value);
      });
    }
    if (f.type === "pairs") {
      row.append(el("span", {"class": "field-label", text: f.label}), control, error);
    } else {
      row.append(el("label", {"for": id, "class": "field-label", text: f.label}), control, error);
    }
    return row;
  }
  // Key/value rows (headers): the object is rebuilt from the rows on every change.
  function pairs(object, store) {
    var box = el("div", {"class": "pairs"});
    var rows = el("div", {"class": "pair-rows"});
    function collect() {
      var result = {};
      rows.querySelectorAll(".pair").forEach(function (pair) {
        var inputs = pair.querySelectorAll("input");
        if (inputs[0].value.trim()) { result[inputs[0].value.trim()] = inputs[1].value; }
      });
      store(result);
    }
    function addRow(name, value) {
      var key = el("input", {type: "text", "aria-label": "Header name", placeholder: "Name", readonly: !canEdit});
      var val = el("input", {type: "text", "aria-label": "Header value", placeholder: "Value", readonly: !canEdit});
      key.value = name; val.value = typeof value === "string" ? value : JSON.stringify(value);
      key.addEventListener("input", collect);
      val.addEventListener("input", collect);
      var pair = el("div", {"class": "pair"}, [key, val]);
      if (canEdit) { pair.appendChild(button("Remove", function () { pair.remove(); collect(); }, {"class": "small"})); }
      rows.appendChild(pair);
      return key;
    }
    Object.keys(object).forEach(function (name) { addRow(name, object[name]); });
    box.appendChild(rows);
    if (canEdit) { box.appendChild(button("+ Header", function () { addRow("", "").focus(); }, {"class": "small"})); }
    return box;
  }

  // ---- validation ----------------------------------------------------------------------------------
  // A problem names its step by id (and path); the API's older messages are strings starting with
  // the path and "(id 'x', ...)", read the same way.
  function normalise(problem) {
    if (problem && typeof problem === "object") { return problem; }
    var text = String(problem);
    var id = /\(id '([^']+)'/.exec(text);
    var path = /^(steps\[[^\s]*?\])(?=[\s:])/.exec(text);
    return {message: text, step_id: id ? id[1] : null, path: path ? path[1] : null};
  }
  function stepAtPath(path) {
    if (!path) { return null; }
    var parts = path.match(/(steps|then|else)\[(\d+)\]/g);
    var at = null, list = flow.steps;
    (parts || []).forEach(function (part) {
      var m = /(\w+)\[(\d+)\]/.exec(part);
      if (at) { list = at[m[1]]; }
      at = list && list[Number(m[2])];
    });
    return at || null;
  }
  function cardFor(problem) {
    var card = null;
    if (problem.step_id) { card = document.querySelector('.card[data-step="' + CSS.escape(problem.step_id) + '"]'); }
    if (!card && problem.path) { card = cards.get(stepAtPath(problem.path)) || null; }
    return card;
  }
  function showProblems() {
    var banner = document.getElementById("flow-problems");
    banner.replaceChildren();
    document.querySelectorAll(".card").forEach(function (card) {
      card.classList.remove("has-error", "has-warning", "failed-last-run");
      card.querySelector(".card-notes").replaceChildren();
    });
    [["errors", "error"], ["warnings", "warning"]].forEach(function (kind) {
      (problems[kind[0]] || []).map(normalise).forEach(function (problem) {
        var card = cardFor(problem);
        var note = el("p", {"class": "note " + kind[1], text: problem.message});
        if (card) {
          card.classList.add("has-" + kind[1]);
          card.querySelector(".card-notes").appendChild(note);
        } else {
          banner.appendChild(el("li", {"class": kind[1], text: problem.message}));
        }
      });
    });
    Object.keys(lastRunFailures).forEach(function (stepId) {
      var card = document.querySelector('.card[data-step="' + CSS.escape(stepId) + '"]');
      if (card) {
        card.classList.add("failed-last-run");
        card.querySelector(".card-notes").appendChild(
          el("p", {"class": "note error run-failure", text: "Failed in the latest run: " + lastRunFailures[stepId]}));
      }
    });
    var count = (problems.errors || []).length, warnings = (problems.warnings || []).length;
    var state = document.getElementById("validation-state");
    state.textContent = count ? count + " error(s)" + (warnings ? ", " + warnings + " warning(s)" : "")
      : (warnings ? warnings + " warning(s)" : "The flow is valid.");
    state.className = count ? "error" : (warnings ? "warning" : "muted");
  }
  function validate() {
    var sent = JSON.stringify(flow);
    api("POST", config.automations + "validate/", {flow: flow}).then(function (answer) {
      if (sent !== JSON.stringify(flow)) { return; }   // edited meanwhile: a newer check follows
      if (answer.ok) {
        problems = {errors: answer.data.errors || [], warnings: answer.data.warnings || []};
      } else if (answer.status === 400 && answer.json) {
        problems = {errors: [].concat(answer.data.flow || answer.data.errors || []), warnings: answer.data.warnings || []};
      }
      showProblems();
    }).catch(function () { /* the next change tries again */ });
  }

  // ---- saving and the header -----------------------------------------------------------------------
  // The automation's settings as the API takes them: lists one per line, auth by secret name.
  function settingsBody() {
    function lines(id) { return document.getElementById(id).value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean); }
    var body = {cors_origins: lines("setting-cors"), ip_allowlist: lines("setting-ips"), auth: null};
    var type = document.getElementById("auth-type").value;
    if (type) {
      body.auth = {type: type};
      [["header", "auth-header"], ["username", "auth-username"], ["secret", "auth-secret"], ["prefix", "auth-prefix"]].forEach(function (pair) {
        var label = document.getElementById(pair[1]).closest("label");
        var value = document.getElementById(pair[1]).value.trim();
        if (label.getAttribute("data-auth").split(" ").indexOf(type) !== -1 && value) { body.auth[pair[0]] = value; }
      });
    }
    return body;
  }
  function showSettings() {
    document.getElementById("setting-cors").value = (automation.cors_origins || []).join("\n");
    document.getElementById("setting-ips").value = (automation.ip_allowlist || []).join("\n");
    var auth = automation.auth || {};
    document.getElementById("auth-type").value = auth.type || "";
    document.getElementById("auth-header").value = auth.header || "";
    document.getElementById("auth-username").value = auth.username || "";
    document.getElementById("auth-secret").value = auth.secret || "";
    document.getElementById("auth-prefix").value = auth.prefix || "";
    showAuthFields();
  }
  function showAuthFields() {
    var type = document.getElementById("auth-type").value;
    document.querySelectorAll("[data-auth]").forEach(function (label) {
      label.hidden = !type || label.getAttribute("data-auth").split(" ").indexOf(type) === -1;
    });
  }
  function loaded(data) {
    automation = data;
    flow = data.flow && Array.isArray(data.flow.steps) ? clone(data.flow) : {steps: []};
    document.getElementById("automation-name").value = data.name;
    document.getElementById("automation-enabled").checked = data.enabled;
    document.getElementById("production-url").textContent = data.production_url;
    document.getElementById("development-url").textContent = data.development_url;
    showSettings();
    openSteps = new Set();
    renderFlow();
    syncJson();
  }
  function save() {
    var body = Object.assign({name: document.getElementById("automation-name").value,
      enabled: document.getElementById("automation-enabled").checked, flow: flow}, settingsBody());
    setSaveState("Saving…");
    document.getElementById("name-error").textContent = "";
    document.getElementById("settings-error").textContent = "";
    return api("PUT", config.automation, body).then(function (answer) {
      if (answer.ok) {
        var open = Array.from(openSteps).map(function (step) { return step.id; });
        loaded(answer.data);
        (function reopen(steps) {
          steps.forEach(function (step) {
            if (open.indexOf(step.id) !== -1) { openSteps.add(step); }
            ["then", "else", "steps"].forEach(function (lane) { reopen(step[lane] || []); });
          });
        }(flow.steps));
        dirty = false;
        problems = {errors: [], warnings: answer.data.warnings || []};
        renderFlow();
        setSaveState("Saved at " + new Date().toLocaleTimeString(), "ok");
      } else if (answer.status === 400 && answer.json) {
        problems = {errors: [].concat(answer.data.flow || []), warnings: answer.data.warnings || []};
        showProblems();
        document.getElementById("name-error").textContent = [].concat(answer.data.name || []).join(" ");
        document.getElementById("settings-error").textContent = ["cors_origins", "ip_allowlist", "auth"].filter(function (key) { return key in answer.data; })
          .map(function (key) { return key + ": " + [].concat(answer.data[key]).map(pretty).join(" "); }).join("; ");
        setSaveState("Not saved: see the problems shown", "error");
      } else {
        setSaveState("Not saved: the server answered " + answer.status, "error");
      }
    }).catch(function () { setSaveState("Not saved: the server could not be reached", "error"); });
  }

  // ---- the JSON tab ---------------------------------------------------------------------------------
  function syncJson() { document.getElementById("flow-json").value = JSON.stringify(flow, null, 2); }
  function showTab(name) {
    var blocks = name === "blocks";
    if (blocks && document.getElementById("json-error").textContent) {
      document.getElementById("json-error").textContent = "";
      syncJson();   // the text was not valid JSON: the blocks keep the last valid flow
    }
    if (!blocks) { syncJson(); }
    document.getElementById("blocks-view").hidden = !blocks;
    document.getElementById("json-view").hidden = blocks;
    document.getElementById("tab-blocks").setAttribute("aria-selected", String(blocks));
    document.getElementById("tab-json").setAttribute("aria-selected", String(!blocks));
  }
  document.getElementById("flow-json").addEventListener("input", function () {
    var error = document.getElementById("json-error");
    try {
      var parsed = JSON.parse(this.value);
      if (!parsed || typeof parsed !== "object" || !Array.isArray(parsed.steps)) { throw new Error('a flow is {"steps": [...]}'); }
      error.textContent = "";
      flow = parsed;
      openSteps = new Set();
      changed(true);
    } catch (e) { error.textContent = "Not applied: " + e.message; }
  });

  // ---- the live debug panel ------------------------------------------------------------------------
  var FOLD_CHARS = 400, FOLD_LINES = 10;
  function valueBlock(value) {
    var text = value === undefined ? "" : pretty(value);
    var lines = text.split("\n").length;
    if (text.length <= FOLD_CHARS && lines <= FOLD_LINES) { return el("pre", {"class": "value", text: text}); }
    return el("details", {"class": "fold"}, [
      el("summary", {text: text.slice(0, 80).replace(/\s+/g, " ") + "… (" + text.length + " characters, " + lines + " lines)"}),
      el("pre", {"class": "value", text: text})
    ]);
  }
  function labelled(label, value) { return el("div", {"class": "labelled"}, [el("div", {"class": "label", text: label}), valueBlock(value)]); }
  function bodyOf(run) { try { return JSON.parse(run.body); } catch (e) { return run.body; } }

  // A condition's line: what it compared and what came out ("ann@example.com" exists → true).
  function compared(step) {
    if (step.action !== "condition" || !step.input || typeof step.input !== "object" || step.error) { return null; }
    var left = JSON.stringify(step.input.left), right = step.input.op === "exists" ? "" : " " + JSON.stringify(step.input.right);
    var text = left + " " + step.input.op + right + " → " + JSON.stringify(step.output) + (step.branch ? " (" + step.branch + ")" : "");
    return el("p", {"class": "compared", text: text.length > 300 ? text.slice(0, 300) + "…" : text});
  }

  var shown = {};                  // run id -> version key
  var expanded = new Set();        // runs unfolded by the member
  function renderRun(run) {
    var head = el("summary", {"class": "run-head"}, [
      el("span", {"class": "badge " + run.status, text: run.status}),
      el("span", {"class": "run-method", text: run.method}),
      el("time", {datetime: run.createdAt, text: new Date(run.createdAt).toLocaleTimeString()}),
      el("span", {"class": "muted", text: "run " + run.id + (run.replay_of ? " · replay of " + run.replay_of : "")}),
      el("span", {"class": "muted", text: run.duration_ms === null || run.duration_ms === undefined ? "" : run.duration_ms + " ms"})
    ]);
    var parts = [head];
    var actions = el("div", {"class": "run-actions"});
    if (canEdit) { actions.appendChild(button("Replay", function () { replay(run); }, {"class": "small replay"})); }
    parts.push(actions);
    parts.push(el("div", {"class": "cols"}, [
      labelled("Request body", bodyOf(run)),
      labelled("Query and headers", {query: run.query, headers: run.headers}),
      labelled("Response", run.response)
    ]));
    if (run.error) { parts.push(el("p", {"class": "error run-error", text: "Error: " + run.error})); }
    var steps = el("ol", {"class": "run-steps"});
    (run.trace || []).forEach(function (step) {
      var outcome = step.error
        ? el("div", {"class": "labelled"}, [el("div", {"class": "label", text: "Error"}), el("pre", {"class": "value error", text: step.error})])
        : labelled("Output", step.output);
      steps.appendChild(el("li", {"class": "run-step" + (step.error ? " step-failed" : ""), "data-step": step.id}, [
        el("div", {"class": "run-step-head"}, [
          el("strong", {text: step.id || ""}),
          el("span", {"class": "muted", text: " " + (step.action || "") + (step.branch ? " → " + step.branch : "") +
            (Array.isArray(step.iteration) ? " · item " + step.iteration.map(function (i) { return i + 1; }).join(".") : "") +
            (step.duration_ms !== undefined ? " · " + step.duration_ms + " ms" : "")})
        ]),
        compared(step),
        el("div", {"class": "cols two"}, [labelled("Input", step.input), outcome]),
        el("details", {"class": "variables"}, [el("summary", {text: "Variables after this step"}), valueBlock(step.variables)])
      ]));
    });
    parts.push(steps);
    var details = el("details", {"class": "run", id: "run-" + run.id, "data-status": run.status}, parts);
    details.open = expanded.has(run.id);
    details.addEventListener("toggle", function () { if (details.open) { expanded.add(run.id); } else { expanded.delete(run.id); } });
    return details;
  }
  var newestRunId = null;
  function poll() {
    api("GET", config.automation + "runs/?mode=development&page_size=20").then(function (answer) {
      if (!answer.ok) { document.getElementById("poll-state").textContent = "The runs could not be read (" + answer.status + ")."; return; }
      var runs = answer.data.results || [];
      var container = document.getElementById("runs");
      runs.slice().reverse().forEach(function (run) {
        var key = run.updatedAt + ":" + (run.trace || []).length + ":" + run.status;
        if (shown[run.id] === key) { return; }
        if (!(run.id in shown) && newestRunId !== null) { expanded.add(run.id); }
        var fresh = renderRun(run), old = document.getElementById("run-" + run.id);
        if (old) { container.replaceChild(fresh, old); } else { container.insertBefore(fresh, container.firstChild); }
        shown[run.id] = key;
      });
      if (runs.length && newestRunId === null) { expanded.add(runs[0].id); var first = document.getElementById("run-" + runs[0].id); if (first) { first.open = true; } }
      newestRunId = runs.length ? runs[0].id : newestRunId;
      var failures = {};
      if (runs.length) {
        (runs[0].trace || []).forEach(function (step) { if (step.error && step.id) { failures[step.id] = step.error; } });
      }
      if (JSON.stringify(failures) !== JSON.stringify(lastRunFailures)) { lastRunFailures = failures; showProblems(); }
      document.getElementById("poll-state").textContent = "Live · " + runs.length + " development run(s) · checked " + new Date().toLocaleTimeString();
    }).catch(function () {
      document.getElementById("poll-state").textContent = "Connection lost, retrying…";
    }).then(function () { setTimeout(poll, config.poll_ms); });
  }

  // "Send a test call": a development run made for the signed-in member (inbound auth skipped).
  function parseHeaders(text) {
    var headers = {};
    text.split("\n").forEach(function (line) {
      var at = line.indexOf(":");
      if (at > 0) { headers[line.slice(0, at).trim()] = line.slice(at + 1).trim(); }
    });
    return headers;
  }
  function sendTestCall(event) {
    event.preventDefault();
    var state = document.getElementById("test-call-state");
    var method = document.getElementById("test-method").value;
    var headers = parseHeaders(document.getElementById("test-headers").value);
    var bodyText = document.getElementById("test-body").value;
    var body;
    try { body = bodyText.trim() ? JSON.parse(bodyText) : undefined; } catch (e) {
      state.textContent = "The body is not JSON: " + e.message;
      state.className = "error";
      return;
    }
    state.className = "";
    state.textContent = "Sending…";
    api("POST", config.automation + "test_call/", {method: method, headers: headers, body: body}).then(function (answer) {
      if (answer.ok) {
        var run = answer.data;
        state.className = run.status === "succeeded" ? "ok" : "error";
        state.textContent = "Run " + run.id + " " + run.status + (run.response ? " · the flow answered " + run.response.status : "");
      } else {
        state.className = "error";
        state.textContent = "Not sent (" + answer.status + "): " + pretty(answer.data).slice(0, 300);
      }
    }).catch(function () { state.className = "error"; state.textContent = "The server could not be reached."; });
  }
  function replay(run) {
    var state = document.getElementById("poll-state");
    api("POST", config.automation + "runs/" + encodeURIComponent(run.id) + "/replay/", {mode: "development"}).then(function (answer) {
      state.textContent = answer.ok ? "Replayed run " + run.id + " as run " + answer.data.id + "."
        : "The replay answered " + answer.status + ": " + pretty(answer.data).slice(0, 300);
    }).catch(function () { state.textContent = "The server could not be reached."; });
  }

  // ---- wiring --------------------------------------------------------------------------------------
  document.getElementById("tab-blocks").addEventListener("click", function () { showTab("blocks"); });
  document.getElementById("tab-json").addEventListener("click", function () { showTab("json"); });
  document.querySelectorAll("button.copy").forEach(function (copy) {
    copy.addEventListener("click", function () {
      var text = document.getElementById(copy.getAttribute("data-copy")).textContent;
      var done = function () { copy.textContent = "Copied"; setTimeout(function () { copy.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () { copy.textContent = "Select and copy"; }); }
    });
  });
  document.getElementById("settings-toggle").addEventListener("click", function () {
    var panel = document.getElementById("settings");
    panel.hidden = !panel.hidden;
    this.setAttribute("aria-expanded", String(!panel.hidden));
  });
  document.getElementById("auth-type").addEventListener("change", function () { showAuthFields(); changed(false); });
  document.querySelectorAll("#settings-fields input, #settings-fields textarea").forEach(function (input) {
    input.addEventListener("input", function () { changed(false); });
  });
  if (!canEdit) {
    document.querySelectorAll("#settings-fields input, #settings-fields textarea, #settings-fields select").forEach(function (input) { input.disabled = true; });
  }
  document.getElementById("automation-name").addEventListener("input", function () { changed(false); });
  if (canEdit) {
    document.getElementById("save").addEventListener("click", save);
    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "s") { event.preventDefault(); save(); }
    });
    document.getElementById("automation-enabled").addEventListener("change", function () {
      var enabled = this.checked;
      api("PATCH", config.automation, {enabled: enabled}).then(function (answer) {
        if (answer.ok) { automation.enabled = answer.data.enabled; setSaveState(enabled ? "Enabled" : "Disabled", "ok"); }
        else { setSaveState("Not changed: the server answered " + answer.status, "error"); }
      });
    });
    var dialog = document.getElementById("regenerate-dialog");
    document.getElementById("regenerate").addEventListener("click", function () { dialog.showModal(); });
    dialog.addEventListener("close", function () {
      if (dialog.returnValue !== "confirm") { return; }
      api("POST", config.automation + "regenerate/").then(function (answer) {
        if (!answer.ok) { setSaveState("Not regenerated: the server answered " + answer.status, "error"); return; }
        automation.webhook_id = answer.data.webhook_id;
        automation.production_url = answer.data.production_url;
        automation.development_url = answer.data.development_url;
        document.getElementById("production-url").textContent = answer.data.production_url;
        document.getElementById("development-url").textContent = answer.data.development_url;
        setSaveState("New URLs: the old ones no longer work", "ok");
      });
    });
    var methodSelect = document.getElementById("test-method");
    config.methods.forEach(function (m) { methodSelect.appendChild(el("option", {value: m, text: m})); });
    methodSelect.value = "POST";
    document.getElementById("test-call-form").addEventListener("submit", sendTestCall);
    window.addEventListener("beforeunload", function (event) { if (dirty) { event.preventDefault(); event.returnValue = ""; } });
  }

  api("GET", config.automation).then(function (answer) {
    if (!answer.ok) { setSaveState("The automation could not be read (" + answer.status + ")", "error"); return; }
    loaded(answer.data);
    validate();
  });
  if (canEdit) {
    api("GET", config.secrets).then(function (answer) {
      if (!answer.ok || !answer.json) { return; }
      secretNames = (answer.data.results || answer.data || []).map(function (secret) { return secret.name; });
      var list = document.getElementById("secret-names");
      secretNames.forEach(function (name) { list.appendChild(el("option", {value: name})); });
    }).catch(function () {});
  }
  poll();
}());
