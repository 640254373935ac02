/*
 * Switchboard chat widget. Plain JavaScript, no framework, no third-party requests.
 *
 *   <script src="https://switchboard.example/static/widget/widget.js"
 *           data-key="swb_pk_..." data-api="https://switchboard.example" defer></script>
 *
 * Optional: data-title (panel title), data-variables (JSON object: the page's context, e.g. the
 * product shown), data-open="true" (start opened). The session survives reloads of the tab
 * (sessionStorage). Every text is drawn with textContent: replies can never inject markup.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector('script[src*="widget.js"][data-key]');
  if (!script || window.__switchboardWidget) { return; }
  window.__switchboardWidget = true;

  var KEY = script.getAttribute("data-key") || "";
  var API = (script.getAttribute("data-api") || new URL(script.src, document.baseURI).origin).replace(/\/+$/, "");
  var TITLE = script.getAttribute("data-title") || "Chat with us";
  var STORAGE_KEY = "swb-widget:" + KEY;
  var MAX_CHARS = 2000;
  var pageVariables = {};
  try { pageVariables = JSON.parse(script.getAttribute("data-variables") || "{}") || {}; } catch (e) { pageVariables = {}; }

  var session = loadSession();
  var historyLoaded = false;
  var busy = false;
  var uid = "swb-" + Math.random().toString(36).slice(2, 8);

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // The bubble's icon is inline SVG drawn in currentColor: an emoji needs a colour-emoji font and
  // renders as an empty box on systems without one; an image would be one more request.
  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    var attrs = { "class": "swb-bubble-icon", viewBox: "0 0 24 24", width: "28", height: "28", "aria-hidden": "true", focusable: "false" };
    Object.keys(attrs).forEach(function (name) { svg.setAttribute(name, attrs[name]); });
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z");
    path.setAttribute("fill-rule", "evenodd");
    svg.appendChild(path);
    return svg;
  }

  function loadSession() {
    try { return JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null"); } catch (e) { return null; }
  }

  function saveSession(value) {
    session = value;
    try {
      if (value) { window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value)); }
      else { window.sessionStorage.removeItem(STORAGE_KEY); }
    } catch (e) { /* storage disabled: the session lasts for this page only */ }
  }

  // ---- DOM -------------------------------------------------------------------------------------
  var css = el("link", { rel: "stylesheet", href: new URL("widget.css", script.src).href });
  document.head.appendChild(css);

  var root = el("div", { "class": "swb-widget" });
  var bubble = el("button", {
    type: "button", "class": "swb-bubble", "aria-label": "Open chat", "aria-expanded": "false", "aria-controls": uid + "-panel"
  });
  bubble.appendChild(chatIcon());

  var panel = el("section", { id: uid + "-panel", "class": "swb-panel", role: "dialog", "aria-labelledby": uid + "-title", hidden: "" });
  var header = el("header", { "class": "swb-header" });
  header.appendChild(el("h2", { id: uid + "-title", "class": "swb-title" }, TITLE));
  var close = el("button", { type: "button", "class": "swb-close", "aria-label": "Close chat" }, "\u00D7");
  header.appendChild(close);

  var log = el("ol", { "class": "swb-log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  var status = el("p", { "class": "swb-status", role: "status", "aria-live": "polite" });

  var form = el("form", { "class": "swb-form" });
  var label = el("label", { "for": uid + "-input", "class": "swb-visually-hidden" }, "Your message");
  var input = el("input", { id: uid + "-input", "class": "swb-input", type: "text", autocomplete: "off", maxlength: String(MAX_CHARS), placeholder: "Type a message…" });
  var send = el("button", { type: "submit", "class": "swb-send" }, "Send");
  form.appendChild(label); form.appendChild(input); form.appendChild(send);

  panel.appendChild(header); panel.appendChild(log); panel.appendChild(status); panel.appendChild(form);
  root.appendChild(panel); root.appendChild(bubble);

  function mount() { document.body.appendChild(root); if (script.getAttribute("data-open") === "true") { openPanel(); } }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }

  // ---- behaviour -------------------------------------------------------------------------------
  function draw(role, text) {
    var item = el("li", { "class": "swb-message swb-" + role });
    item.appendChild(el("span", { "class": "swb-visually-hidden" }, role === "visitor" ? "You: " : "Assistant: "));
    item.appendChild(el("span", { "class": "swb-text" }, text));
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function say(text) { status.textContent = text || ""; }

  function request(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (session && session.token) { headers["Authorization"] = "Bearer " + session.token; }
    return fetch(API + path, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", mode: "cors"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data, retryAfter: response.headers.get("Retry-After") };
      });
    });
  }

  function startSession() {
    return request("POST", "/widget/v1/sessions", { widget_key: KEY, variables: pageVariables }).then(function (res) {
      if (res.status !== 201) { throw new Error(res.data.error || "The chat is unavailable."); }
      saveSession({ id: res.data.session_id, token: res.data.token });
      historyLoaded = true;
    });
  }

  function startOver() {
    // The stored session is gone (inactive key, deleted conversation): open a fresh one.
    saveSession(null);
    historyLoaded = false;
    return startSession();
  }

  function ensureSession() {
    if (session) { return Promise.resolve(); }
    return startSession();
  }

  function loadHistory() {
    if (historyLoaded || !session) { return Promise.resolve(); }
    return request("GET", "/widget/v1/sessions/" + encodeURIComponent(session.id) + "/messages").then(function (res) {
      if (res.status === 401) { saveSession(null); return; }
      historyLoaded = true;
      (res.data.messages || []).forEach(function (m) { draw(m.role, m.text); });
    });
  }

  function openPanel() {
    panel.hidden = false;
    bubble.setAttribute("aria-expanded", "true");
    bubble.setAttribute("aria-label", "Close chat");
    input.focus();
    loadHistory().catch(function () { say("Could not load the conversation."); });
  }

  function closePanel() {
    panel.hidden = true;
    bubble.setAttribute("aria-expanded", "false");
    bubble.setAttribute("aria-label", "Open chat");
    bubble.focus();
  }

  function postMessage(text, retried) {
    return request("POST", "/widget/v1/sessions/" + encodeURIComponent(session.id) + "/messages", { text: text }).then(function (res) {
      if (res.status === 401 && !retried) {
        return startOver().then(function () { return postMessage(text, true); });
      }
      if (res.status === 429) {
        say("You are sending messages too fast. Try again in " + (res.retryAfter || "a few") + " seconds.");
        return;
      }
      if (res.status !== 200) { say(res.data.error || "Something went wrong."); return; }
      say("");
      var replies = (res.data.messages || []).filter(function (m) { return m.role === "assistant"; });
      if (!replies.length && res.data.reply) { replies = [{ text: res.data.reply }]; }
      replies.forEach(function (m) { draw("assistant", m.text); });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || busy) { return; }
    if (text.length > MAX_CHARS) { say("Messages are limited to " + MAX_CHARS + " characters."); return; }
    busy = true;
    send.disabled = true;
    input.value = "";
    draw("visitor", text);
    say("Sending…");
    ensureSession()
      .then(function () { return postMessage(text, false); })
      .catch(function (error) { say(error.message || "The chat is unavailable."); })
      .then(function () { busy = false; send.disabled = false; input.focus(); });
  });

  bubble.addEventListener("click", function () { if (panel.hidden) { openPanel(); } else { closePanel(); } });
  close.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") { closePanel(); } });
})();
