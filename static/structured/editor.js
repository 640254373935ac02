/*
 * Structured editors for the admin's JSON fields (tenants/widgets.py).
 *
 * Each <textarea class="structured-json" data-structured='{"kind", ...}'> becomes rows you add and
 * remove. The textarea stays in the form, hidden, and every edit writes the rows back into it as JSON,
 * so the server receives and validates exactly the JSON the API takes. JSON this editor cannot show as
 * rows is left in the textarea untouched.
 *
 * Kinds: "map" (an object of name → text, two columns), "list" (a list of objects, one column per key;
 * keys without a column are kept), "strings" (a list of strings, one column), "object" (an object
 * whose `sections` are each one of the kinds above; other keys are kept).
 */
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function parse(text) {
    if (!text || !text.trim()) { return { ok: true, value: null }; }
    try { return { ok: true, value: JSON.parse(text) }; } catch (e) { return { ok: false }; }
  }

  function isObject(value) { return value !== null && typeof value === "object" && !Array.isArray(value); }

  // A JSON cell shows a string as itself unless it would read back as something else ("10", "true").
  function showJson(value) {
    if (value === undefined || value === null) { return ""; }
    if (typeof value === "string") { return parse(value).ok && value.trim() ? JSON.stringify(value) : value; }
    return JSON.stringify(value);
  }

  function readJson(text) {
    var parsed = parse(text);
    return parsed.ok && parsed.value !== null ? parsed.value : text;
  }

  function asText(value) {
    if (value === undefined || value === null) { return ""; }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // ---- rows of one kind: {original, cells} each; null when the value cannot be shown as rows ----------
  function rowsFrom(spec, value) {
    if (value === null || value === undefined) { return []; }
    if (spec.kind === "map") {
      if (!isObject(value)) { return null; }
      return Object.keys(value).map(function (name) { return { original: {}, cells: { name: name, value: asText(value[name]) } }; });
    }
    if (!Array.isArray(value)) { return null; }
    if (spec.kind === "strings") {
      if (!value.every(function (item) { return typeof item === "string"; })) { return null; }
      return value.map(function (item) { return { original: {}, cells: { value: item } }; });
    }
    if (!value.every(isObject)) { return null; }
    return value.map(function (item) {
      var cells = {};
      spec.columns.forEach(function (column) {
        var v = item[column.key];
        if (column.type === "checkbox") { cells[column.key] = v === true; }
        else if (column.type === "json") { cells[column.key] = showJson(v); }
        else { cells[column.key] = asText(v); }
      });
      return { original: item, cells: cells };
    });
  }

  function columnsOf(spec) {
    return spec.kind === "strings" ? [{ key: "value", label: spec.label || "Value", type: "text", placeholder: spec.placeholder || "" }] : spec.columns;
  }

  function Rows(spec, rows, onChange) {
    this.spec = spec; this.rows = rows; this.onChange = onChange;
    this.columns = columnsOf(spec);
    this.root = el("div", { "class": "structured-rows" });
    this.table = el("table");
    this.problem = el("p", { "class": "structured-problem", role: "alert", hidden: "" });
    var add = el("button", { type: "button", "class": "button structured-add" }, spec.addLabel || "Add a row");
    var self = this;
    add.addEventListener("click", function () { self.rows.push({ original: {}, cells: {} }); self.draw(); self.focusLast(); self.onChange(); });
    this.root.appendChild(this.table); this.root.appendChild(this.problem); this.root.appendChild(add);
    this.draw();
  }

  Rows.prototype.draw = function () {
    var self = this, placeholders = this.spec.placeholders || {};
    this.table.textContent = "";
    var head = el("tr");
    this.columns.forEach(function (column) { head.appendChild(el("th", { scope: "col" }, column.label)); });
    head.appendChild(el("th", {}, ""));
    var thead = el("thead"); thead.appendChild(head); this.table.appendChild(thead);
    var body = el("tbody");
    if (!this.rows.length) {
      var empty = el("tr");
      empty.appendChild(el("td", { colspan: String(this.columns.length + 1), "class": "structured-empty" }, "None yet."));
      body.appendChild(empty);
    }
    this.rows.forEach(function (row, index) {
      var tr = el("tr", { "class": "structured-row" });
      self.columns.forEach(function (column) {
        var td = el("td"); td.appendChild(self.input(column, row, index, placeholders)); tr.appendChild(td);
      });
      var remove = el("button", { type: "button", "class": "button structured-remove", "aria-label": "Remove row " + (index + 1) }, "Remove");
      remove.addEventListener("click", function () { self.rows.splice(index, 1); self.draw(); self.onChange(); });
      var last = el("td"); last.appendChild(remove); tr.appendChild(last);
      body.appendChild(tr);
    });
    this.table.appendChild(body);
    this.markDuplicates();
  };

  Rows.prototype.input = function (column, row, index, placeholders) {
    var self = this, value = row.cells[column.key], label = column.label + " " + (index + 1), input;
    if (column.type === "select") {
      input = el("select", { "aria-label": label, "data-key": column.key });
      var choices = column.choices.slice();
      if (value && choices.indexOf(value) < 0) { choices.push(value); }  // keep a value it does not know
      choices.forEach(function (choice) { input.appendChild(el("option", { value: choice }, choice)); });
      input.value = value || choices[0];
      row.cells[column.key] = input.value;
    } else if (column.type === "checkbox") {
      input = el("input", { type: "checkbox", "aria-label": label, "data-key": column.key });
      input.checked = value === true;
    } else {
      input = el("input", { type: "text", "aria-label": label, "data-key": column.key, autocomplete: "off" });
      input.value = value || "";
      var hint = this.spec.kind === "map" && column.key === "value" ? placeholders[row.cells.name] : undefined;
      if (hint || column.placeholder) { input.setAttribute("placeholder", hint || column.placeholder); }
    }
    input.addEventListener(column.type === "select" || column.type === "checkbox" ? "change" : "input", function () {
      row.cells[column.key] = column.type === "checkbox" ? input.checked : input.value;
      self.markDuplicates();
      self.onChange();
    });
    return input;
  };

  Rows.prototype.focusLast = function () {
    var inputs = this.table.querySelectorAll("tbody tr:last-child input, tbody tr:last-child select");
    if (inputs.length) { inputs[0].focus(); }
  };

  // Names must be unique: a JSON object cannot hold two, and lists of named things refuse them.
  Rows.prototype.duplicates = function () {
    var key = this.spec.kind === "strings" ? "value" : "name", seen = {}, dupes = [];
    if (!this.columns.some(function (c) { return c.key === key; })) { return dupes; }
    this.rows.forEach(function (row, index) {
      var name = String(row.cells[key] || "").trim();
      if (!name) { return; }
      if (seen[name] !== undefined) { dupes.push(index, seen[name]); } else { seen[name] = index; }
    });
    return dupes;
  };

  Rows.prototype.markDuplicates = function () {
    var dupes = this.duplicates(), trs = this.table.querySelectorAll("tbody tr.structured-row");
    for (var i = 0; i < trs.length; i++) { trs[i].classList.toggle("structured-duplicate", dupes.indexOf(i) >= 0); }
    this.problem.hidden = !dupes.length;
    this.problem.textContent = dupes.length ? "Two rows have the same name: rename or remove one." : "";
  };

  Rows.prototype.value = function () {
    var spec = this.spec, columns = this.columns;
    if (spec.kind === "map") {
      var object = {};
      this.rows.forEach(function (row) {
        var name = String(row.cells.name || "").trim(), value = row.cells.value || "";
        if (name || value) { object[name] = value; }
      });
      return object;
    }
    if (spec.kind === "strings") {
      return this.rows.map(function (row) { return String(row.cells.value || "").trim(); }).filter(Boolean);
    }
    var list = [];
    this.rows.forEach(function (row) {
      var item = Object.assign({}, row.original), filled = Object.keys(row.original).length > 0;
      columns.forEach(function (column) {
        var cell = row.cells[column.key];
        if (column.type === "checkbox") { item[column.key] = cell === true; filled = filled || cell === true; return; }
        if (cell === undefined || cell === "") { delete item[column.key]; return; }
        item[column.key] = column.type === "json" ? readJson(cell) : cell;
        if (column.type !== "select") { filled = true; }
      });
      if (filled) { list.push(item); }
    });
    return list;
  };

  // ---- an "object" of sections, each a Rows -----------------------------------------------------------
  function Sections(spec, value, onChange) {
    if (value !== null && value !== undefined && !isObject(value)) { return null; }
    var original = value || {}, parts = [];
    for (var i = 0; i < spec.sections.length; i++) {
      var section = spec.sections[i], rows = rowsFrom(section, original[section.key]);
      if (rows === null) { return null; }
      parts.push({ section: section, rows: new Rows(section, rows, onChange) });
    }
    var root = el("div", { "class": "structured-sections" });
    parts.forEach(function (part) {
      var box = el("div", { "class": "structured-section", "data-section": part.section.key });
      box.appendChild(el("h4", {}, part.section.title));
      box.appendChild(part.rows.root);
      root.appendChild(box);
    });
    return {
      root: root,
      duplicates: function () { return parts.some(function (p) { return p.rows.duplicates().length; }) ? [1] : []; },
      value: function () {
        var result = Object.assign({}, original);
        parts.forEach(function (part) {
          var v = part.rows.value(), empty = Array.isArray(v) ? !v.length : !Object.keys(v).length;
          if (empty && !(part.section.key in original)) { delete result[part.section.key]; } else { result[part.section.key] = v; }
        });
        return result;
      },
    };
  }

  function build(spec, value, onChange) {
    if (spec.kind === "object") { return Sections(spec, value, onChange); }
    var rows = rowsFrom(spec, value);
    return rows === null ? null : new Rows(spec, rows, onChange);
  }

  // ---- the editor over one textarea ----------------------------------------------------------------
  function Editor(textarea) {
    var parsed = parse(textarea.value), self = this;
    this.textarea = textarea;
    this.spec = JSON.parse(textarea.getAttribute("data-structured"));
    this.part = parsed.ok ? build(this.spec, parsed.value, function () { self.sync(); }) : null;
    if (this.part === null) { return; }  // leave what it cannot show as rows alone
    this.root = el("div", { "class": "structured-editor", "data-for": textarea.name });
    this.holder = el("div");
    this.holder.appendChild(this.part.root);
    this.notice = el("p", { "class": "structured-notice", role: "alert", hidden: "" });
    var raw = el("button", { type: "button", "class": "button structured-raw" }, "Edit as JSON");
    this.root.appendChild(this.holder); this.root.appendChild(this.notice); this.root.appendChild(raw);
    textarea.parentNode.insertBefore(this.root, textarea);
    textarea.hidden = true;
    raw.addEventListener("click", function () { self.toggleRaw(raw); });
    if (textarea.form) {
      textarea.form.addEventListener("submit", function (event) {
        if (!textarea.hidden) { return; }
        self.sync();
        if (self.part.duplicates().length) { event.preventDefault(); self.root.scrollIntoView({ block: "center" }); }
      });
    }
  }

  Editor.prototype.sync = function () {
    this.textarea.value = JSON.stringify(this.part.value(), null, 2);
  };

  Editor.prototype.toggleRaw = function (button) {
    var self = this;
    if (this.textarea.hidden) {
      this.sync();
      this.textarea.hidden = false; this.holder.hidden = true; this.notice.hidden = true;
      button.textContent = "Edit as rows";
      return;
    }
    var parsed = parse(this.textarea.value);
    var part = parsed.ok ? build(this.spec, parsed.value, function () { self.sync(); }) : null;
    if (part === null) {
      this.notice.hidden = false;
      this.notice.textContent = "This JSON cannot be shown as rows: correct it, or save it as it is.";
      return;
    }
    this.part = part;
    this.holder.textContent = ""; this.holder.appendChild(part.root);
    this.textarea.hidden = true; this.holder.hidden = false; this.notice.hidden = true;
    button.textContent = "Edit as JSON";
  };

  function init(scope) {
    var areas = scope.querySelectorAll("textarea.structured-json");
    for (var i = 0; i < areas.length; i++) {
      var area = areas[i];
      // The inline formset's hidden template row is copied by "Add another": set up the copy, not it.
      if (area.getAttribute("data-structured-ready") || area.closest(".empty-form")) { continue; }
      area.setAttribute("data-structured-ready", "true");
      new Editor(area);
    }
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("formset:added", function (event) { init(event.target); });
})();
