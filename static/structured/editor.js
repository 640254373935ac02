/*
 * Structured editors for the admin's JSON fields (tenants/widgets.py).
 *
 * Each <textarea class="structured-json" data-structured='{"kind", "columns", ...}'> becomes rows you
 * add and remove. The textarea stays in the form, hidden, and every edit writes the rows back into it as
 * JSON, so the server receives and validates exactly the JSON the API takes. JSON this editor cannot
 * show as rows (not an object / a list of objects) is left in the textarea untouched.
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

  function rowsFrom(spec, value) {
    if (value === null) { return []; }
    if (spec.kind === "map") {
      if (typeof value !== "object" || Array.isArray(value)) { return null; }
      return Object.keys(value).map(function (name) {
        var v = value[name];
        return { original: {}, cells: { name: name, value: typeof v === "string" ? v : JSON.stringify(v) } };
      });
    }
    if (!Array.isArray(value) || !value.every(function (item) { return item && typeof item === "object" && !Array.isArray(item); })) {
      return null;
    }
    return value.map(function (item) {
      var cells = {};
      spec.columns.forEach(function (column) {
        var v = item[column.key];
        if (column.type === "checkbox") { cells[column.key] = v === true; }
        else if (column.type === "json") { cells[column.key] = showJson(v); }
        else { cells[column.key] = v === undefined || v === null ? "" : String(v); }
      });
      return { original: item, cells: cells };
    });
  }

  function Editor(textarea) {
    this.textarea = textarea;
    this.spec = JSON.parse(textarea.getAttribute("data-structured"));
    var rows = rowsFrom(this.spec, parse(textarea.value).value);
    if (!parse(textarea.value).ok || rows === null) { return; }  // leave what it cannot show as rows alone
    this.rows = rows;
    this.root = el("div", { "class": "structured-editor", "data-for": textarea.name });
    this.table = el("table");
    this.problem = el("p", { "class": "structured-problem", role: "alert", hidden: "" });
    var actions = el("div", { "class": "structured-actions" });
    var add = el("button", { type: "button", "class": "button structured-add" }, this.spec.addLabel || "Add a row");
    var raw = el("button", { type: "button", "class": "button structured-raw" }, "Edit as JSON");
    actions.appendChild(add); actions.appendChild(raw);
    this.root.appendChild(this.table); this.root.appendChild(this.problem); this.root.appendChild(actions);
    textarea.parentNode.insertBefore(this.root, textarea);
    textarea.hidden = true;
    var self = this;
    add.addEventListener("click", function () { self.rows.push({ original: {}, cells: {} }); self.draw(); self.focusLast(); self.sync(); });
    raw.addEventListener("click", function () { self.toggleRaw(raw); });
    textarea.form && textarea.form.addEventListener("submit", function (event) {
      if (!textarea.hidden) { return; }
      self.sync();
      if (self.duplicates().length) { event.preventDefault(); self.problem.scrollIntoView({ block: "center" }); }
    });
    this.draw();
  }

  Editor.prototype.draw = function () {
    var self = this, spec = this.spec, placeholders = spec.placeholders || {};
    this.table.textContent = "";
    var head = el("tr");
    spec.columns.forEach(function (column) { head.appendChild(el("th", { scope: "col" }, column.label)); });
    head.appendChild(el("th", {}, ""));
    var thead = el("thead"); thead.appendChild(head); this.table.appendChild(thead);
    var body = el("tbody");
    if (!this.rows.length) {
      var empty = el("tr"); var cell = el("td", { colspan: String(spec.columns.length + 1), "class": "structured-empty" }, "None yet.");
      empty.appendChild(cell); body.appendChild(empty);
    }
    this.rows.forEach(function (row, index) {
      var tr = el("tr", { "class": "structured-row" });
      spec.columns.forEach(function (column) {
        var td = el("td"); var input = self.input(column, row, index, placeholders);
        td.appendChild(input); tr.appendChild(td);
      });
      var remove = el("button", { type: "button", "class": "button structured-remove", "aria-label": "Remove row " + (index + 1) }, "Remove");
      remove.addEventListener("click", function () { self.rows.splice(index, 1); self.draw(); self.sync(); });
      var last = el("td"); last.appendChild(remove); tr.appendChild(last);
      body.appendChild(tr);
    });
    this.table.appendChild(body);
    this.markDuplicates();
  };

  Editor.prototype.input = function (column, row, index, placeholders) {
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
      var hint = column.key === "value" ? placeholders[row.cells.name] : undefined;
      if (hint || column.placeholder) { input.setAttribute("placeholder", hint || column.placeholder); }
    }
    input.addEventListener(column.type === "text" || column.type === "json" ? "input" : "change", function () {
      row.cells[column.key] = column.type === "checkbox" ? input.checked : input.value;
      self.sync();
      self.markDuplicates();
    });
    return input;
  };

  Editor.prototype.focusLast = function () {
    var inputs = this.table.querySelectorAll("tbody tr:last-child input, tbody tr:last-child select");
    if (inputs.length) { inputs[0].focus(); }
  };

  Editor.prototype.names = function (row) {
    return String(row.cells.name || "").trim();
  };

  Editor.prototype.duplicates = function () {
    var seen = {}, dupes = [], self = this;
    if (this.spec.kind === "list" && !this.spec.columns.some(function (c) { return c.key === "name"; })) { return dupes; }
    this.rows.forEach(function (row, index) {
      var name = self.names(row);
      if (!name) { return; }
      if (seen[name] !== undefined) { dupes.push(index); dupes.push(seen[name]); } else { seen[name] = index; }
    });
    return dupes;
  };

  Editor.prototype.markDuplicates = function () {
    var dupes = this.duplicates();
    var trs = this.table.querySelectorAll("tbody tr.structured-row");
    for (var i = 0; i < trs.length; i++) { trs[i].classList.toggle("structured-duplicate", dupes.indexOf(i) >= 0); }
    this.problem.hidden = !dupes.length;
    this.problem.textContent = dupes.length ? "Two rows have the same name: rename or remove one." : "";
  };

  Editor.prototype.value = function () {
    var spec = this.spec;
    if (spec.kind === "map") {
      var object = {};
      this.rows.forEach(function (row) {
        var name = String(row.cells.name || "").trim(), value = row.cells.value || "";
        if (name || value) { object[name] = value; }
      });
      return object;
    }
    var list = [];
    this.rows.forEach(function (row) {
      var item = Object.assign({}, row.original), filled = Object.keys(row.original).length > 0;
      spec.columns.forEach(function (column) {
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

  Editor.prototype.sync = function () {
    this.textarea.value = JSON.stringify(this.value(), null, 2);
  };

  Editor.prototype.toggleRaw = function (button) {
    if (this.textarea.hidden) {
      this.sync();
      this.textarea.hidden = false; this.table.hidden = true;
      button.textContent = "Edit as rows";
      return;
    }
    var parsed = parse(this.textarea.value), rows = parsed.ok ? rowsFrom(this.spec, parsed.value) : null;
    if (rows === null) {
      this.problem.hidden = false;
      this.problem.textContent = this.spec.kind === "map" ? "Rows need a JSON object." : "Rows need a JSON list of objects.";
      return;
    }
    this.rows = rows; this.textarea.hidden = true; this.table.hidden = false;
    button.textContent = "Edit as JSON";
    this.draw();
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
