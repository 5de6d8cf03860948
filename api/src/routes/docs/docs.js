// Renders /openapi.json as a list of operations with their schemas.
"use strict";
(async function () {
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  };
  const pretty = (v) => el("pre", {}, JSON.stringify(v, null, 2));
  const summary = document.getElementById("summary");
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (e) {
    summary.textContent = "Could not load /openapi.json: " + e;
    return;
  }
  summary.textContent = `${spec.info.title} ${spec.info.version} · OpenAPI ${spec.openapi} · `;
  summary.append(el("a", { href: "/openapi.json" }, "raw document"));
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method, op });
    }
  }
  const main = document.getElementById("operations");
  for (const [tag, ops] of byTag) {
    main.append(el("h2", { id: "tag-" + tag }, tag));
    for (const { path, method, op } of ops) {
      const head = el("summary", {}, el("span", { class: "method " + method }, method), " " + path + " ");
      if (op.security) head.append(el("span", { class: "lock" }, "🔒 bearer"));
      const body = el("div", {});
      if (op.summary || op.description) body.append(el("p", {}, op.description || op.summary));
      if (op.parameters) body.append(el("h4", {}, "Parameters"), pretty(op.parameters));
      if (op.requestBody) body.append(el("h4", {}, "Request body"), pretty(op.requestBody.content));
      const rows = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "description"), el("th", {}, "body")));
      for (const [status, r] of Object.entries(op.responses || {})) {
        rows.append(el("tr", {}, el("td", {}, status), el("td", {}, r.description || ""), el("td", {}, r.content ? pretty(r.content) : "")));
      }
      body.append(el("h4", {}, "Responses"), rows);
      main.append(el("details", {}, head, body));
    }
  }
  const schemas = (spec.components && spec.components.schemas) || {};
  const section = document.getElementById("schemas");
  section.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(schemas)) {
    section.append(el("details", { id: "schema-" + name }, el("summary", {}, name), pretty(schema)));
  }
})();
