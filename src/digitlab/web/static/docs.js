// The API's documentation, drawn from /openapi.json: one section per route and method.
"use strict";

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

fetch("openapi.json").then((r) => r.json()).then((spec) => {
  document.title = `${spec.info.title} ${spec.info.version}: the API`;
  const sections = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const section = element("section", "", "operation");
      section.id = `${method}-${path}`;
      section.append(element("h2", `${method.toUpperCase()} ${path}`));
      if (op.summary) section.append(element("p", op.summary));
      if (op.description) section.append(element("p", op.description, "note"));
      const body = op.requestBody && op.requestBody.content ? Object.keys(op.requestBody.content).join(", ") : "";
      if (body) section.append(element("p", `body: ${body}`));
      const answers = element("ul");
      for (const [status, response] of Object.entries(op.responses || {})) {
        answers.append(element("li", `${status}: ${response.description || ""}`));
      }
      section.append(answers);
      sections.push(section);
    }
  }
  document.getElementById("operations").replaceChildren(...sections);
  document.querySelectorAll("pre").forEach((pre) => { pre.textContent = pre.textContent.replace("HOST", location.host); });
}).catch((err) => {
  const error = document.getElementById("docs-error");
  error.hidden = false;
  error.textContent = `could not read openapi.json (${err.message})`;
});
