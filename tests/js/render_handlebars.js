// Reads a JSON array of {template, data} cases on stdin; prints a JSON array of results, one per case:
// {"ok": true, "output": "..."} or {"ok": false, "error": "..."}. Rendered with noEscape, as Switchboard does.
"use strict";
const Handlebars = require("handlebars");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const results = cases.map(({ template, data }) => {
    try {
      return { ok: true, output: Handlebars.compile(template, { noEscape: true })(data) };
    } catch (err) {
      return { ok: false, error: String(err && err.message || err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
