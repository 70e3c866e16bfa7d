// colorgan serve: the page's behaviour. Talks only to this server's /api (the CSP allows nothing else).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, maxUpload: 0, sketch: null, urls: {} };

// One line on the page for anything that went wrong; the server sends {"error": "..."}.
function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

// "#rrggbb" for any CSS colour name, as the browser itself understands it.
function cssToHex(name) {
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.fillStyle = "#000000";
  ctx.fillStyle = name;
  return ctx.fillStyle;
}

function element(tag, props = {}, children = []) {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
}

// Show a blob in an <img> (and a download link), freeing the blob it showed before.
function showBlob(key, img, link, blob, filename) {
  if (state.urls[key]) URL.revokeObjectURL(state.urls[key]);
  state.urls[key] = URL.createObjectURL(blob);
  img.src = state.urls[key];
  link.href = state.urls[key];
  link.download = filename;
  link.hidden = false;
}

function control(attr) {
  let input;
  const swatch = element("span", { className: "swatch" });
  if (attr.control === "colour") {
    const values = element("datalist", { id: `values-${attr.name}` },
      attr.values.map((v) => element("option", { value: cssToHex(v) })));
    input = element("input", { type: "color", value: cssToHex(attr.values[0]) });
    input.setAttribute("list", values.id);
    swatch.append(values);
  } else {
    input = element("select", {}, attr.values.map((v) => new Option(v, v)));
    if (attr.optional) input.prepend(new Option("(unset)", ""));
    input.value = attr.values[0];
  }
  input.name = attr.name;
  input.id = `attr-${attr.name}`;
  const paint = () => {
    swatch.style.background = input.value && !input.disabled ? cssToHex(input.value) : "transparent";
  };
  input.addEventListener("input", paint);
  input.addEventListener("change", paint);
  paint();
  const row = [element("label", { htmlFor: input.id, textContent: attr.name }), input, swatch];
  if (attr.optional && attr.control === "colour") {  // a colour input always has a value: a box to leave it out
    const unset = element("input", { type: "checkbox" });
    unset.addEventListener("change", () => { input.disabled = unset.checked; paint(); });
    row.push(element("label", { className: "unset" }, [unset, " unset"]));
  }
  return element("div", { className: "control" }, row);
}

function fillSweepChoices(model) {
  const names = model.attributes.map((a) => a.name);
  $("sweep-rows").replaceChildren(new Option("(none)", ""), ...names.map((n) => new Option(n, n)));
  $("sweep-cols").replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.length > 1) $("sweep-rows").value = names[0];
  $("sweep-cols").value = names[names.length - 1];
}

function chooseSketch(sketch, previewUrl) {
  state.sketch = sketch;
  $("sketch-preview").src = previewUrl;
  $("sketch-name").textContent = sketch.name;
  for (const b of $("examples").children) b.setAttribute("aria-pressed", String(b.dataset.id === sketch.example));
  $("colorize").disabled = $("sweep").disabled = false;
}

async function chooseModel(name) {
  const model = state.models.find((m) => m.name === name);
  state.model = model;
  const mb = (model.size_bytes / 1e6).toFixed(1);
  $("model-info").textContent = `${model.name}: ${model.image_size} px, ${model.components.generator.type} ` +
    `generator, ${model.components.condition.type} conditions, ${(model.parameters / 1e6).toFixed(2)}M parameters, ${mb} MB`;
  $("controls").replaceChildren(...model.attributes.map(control));
  $("result").removeAttribute("src");  // a result belongs to the model that drew it
  $("result-caption").textContent = "result";
  $("download").hidden = $("sweep-figure").hidden = true;
  fillSweepChoices(model);
  const found = await (await api(`/api/examples?model=${encodeURIComponent(name)}`)).json();
  $("examples-source").textContent = `examples: ${found.source}`;
  $("examples").replaceChildren(...found.examples.map((ex) => {
    const button = element("button", { type: "button", title: ex.name },
      [element("img", { src: ex.url, alt: ex.name })]);
    button.dataset.id = ex.id;
    button.addEventListener("click", () => chooseSketch({ example: ex.id, name: ex.name }, ex.url));
    return button;
  }));
  if (found.examples.length) $("examples").firstChild.click();
}

function uploadChosen() {
  const file = $("upload").files[0];
  if (!file) return;
  if (file.size > state.maxUpload) {
    showError(`upload too large: the limit is ${state.maxUpload / 1e6} MB (colorgan serve --max-upload-mb)`);
    return;
  }
  showError("");
  chooseSketch({ file, name: file.name.replace(/\.[^.]*$/, "") }, URL.createObjectURL(file));
}

// The request form: the attribute controls' values, the model, and the sketch (upload or example).
function requestForm() {
  const form = new FormData($("form"));
  form.append("model", state.model.name);
  if (state.sketch.file) form.append("sketch", state.sketch.file);
  else form.append("example", state.sketch.example);
  return form;
}

async function send(path, form, busy) {
  showError("");
  busy.setAttribute("aria-busy", "true");
  $("colorize").disabled = $("sweep").disabled = true;
  try {
    return await (await api(path, { method: "POST", body: form })).blob();
  } catch (err) {
    showError(err.message);
    return null;
  } finally {
    busy.setAttribute("aria-busy", "false");
    $("colorize").disabled = $("sweep").disabled = false;
  }
}

async function colorize(event) {
  event.preventDefault();
  const form = requestForm();
  const said = [...new FormData($("form"))].map(([k, v]) => `${k}=${v}`).filter((s) => !s.endsWith("="));
  const blob = await send("/api/colorize", form, $("result"));
  if (!blob) return;
  showBlob("result", $("result"), $("download"), blob, `${[state.sketch.name, ...said].join("-")}.png`);
  $("result-caption").textContent = said.join(", ");
}

async function sweep() {
  const form = requestForm();
  const axes = [$("sweep-rows").value, $("sweep-cols").value].filter((a, i, all) => a && all.indexOf(a) === i);
  axes.forEach((a) => form.append("sweep", a));
  const blob = await send("/api/sweep", form, $("sweep-figure"));
  if (!blob) return;
  $("sweep-figure").hidden = false;
  showBlob("sweep", $("sweep-result"), $("sweep-download"), blob, `${state.sketch.name}-sweep-${axes.join("-")}.png`);
}

async function start() {
  $("form").addEventListener("submit", colorize);
  $("sweep").addEventListener("click", sweep);
  $("upload").addEventListener("change", uploadChosen);
  $("model").addEventListener("change", () => chooseModel($("model").value).catch((e) => showError(e.message)));
  $("sweep-result").addEventListener("load", (e) => { e.target.style.width = `${e.target.naturalWidth * 2}px`; });
  const found = await (await api("/api/models")).json();
  state.models = found.models;
  state.maxUpload = found.max_upload_bytes;
  $("model").replaceChildren(...state.models.map((m) => new Option(m.name, m.name)));
  $("model-picker").hidden = state.models.length < 2;
  await chooseModel(state.models[0].name);
}

start().catch((err) => showError(err.message));
