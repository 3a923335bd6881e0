// The draw-a-digit page: strokes on a canvas, a debounced POST of the canvas as PNG, results shown;
// an uploaded photo is decoded here (EXIF orientation applied), scaled down and sent as JPEG or PNG.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const DEBOUNCE_MS = 250;  // wait this long after the last stroke before asking the model
let drawing = false, last = null, timer = null, hasInk = false;
let photo = null;  // the uploaded photo as sent (a canvas): the answer's boxes are in its pixels
let sent = null, corrections = false;  // the last image sent to the model; may the page save corrections?

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  photo = null;
  show({});
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return { x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height };
}

function stroke(from, to) {
  ctx.strokeStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(from.x, from.y); ctx.lineTo(to.x, to.y); ctx.stroke();
  hasInk = true;
}

// preventDefault (and the canvas's touch-action: none): a finger drawing on the pad never scrolls the page
pad.addEventListener("pointerdown", (e) => { e.preventDefault(); drawing = true; last = point(e); stroke(last, last); pad.setPointerCapture(e.pointerId); });
pad.addEventListener("pointermove", (e) => { if (!drawing) return; e.preventDefault(); const p = point(e); stroke(last, p); last = p; schedule(); });
["pointerup", "pointercancel", "pointerleave"].forEach((name) => pad.addEventListener(name, () => { if (drawing) { drawing = false; schedule(); } }));
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload").addEventListener("change", (e) => { const file = e.target.files[0]; if (file) upload(file); e.target.value = ""; });

// The canvas is sent at 112x112 (4x the model's 28): plenty for the strokes' shape, and a
// sixth of the pixels for the server to decode and preprocess.
const SEND_SIDE = 112;
const small = document.createElement("canvas");
small.width = small.height = SEND_SIDE;

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!hasInk) return;
    photo = null;
    const sctx = small.getContext("2d");
    sctx.imageSmoothingQuality = "high";
    sctx.drawImage(pad, 0, 0, SEND_SIDE, SEND_SIDE);
    small.toBlob(predict, "image/png");
  }, DEBOUNCE_MS);
}

// A phone photo (4000x3000, 3-8 MB) is over the server's upload limit as it is: it is decoded here,
// turned upright as its EXIF orientation says, scaled to at most MAX_SIDE pixels on its longest
// side (ample for digits) and sent re-encoded, well under the limit. Formats this browser cannot
// decode (HEIC from an iPhone, most often) get a message instead of a broken image.
const MAX_SIDE = 1600;
let maxUpload = 2 * 1024 * 1024;  // bytes; the server says its own limit in /api/health

async function decode(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    return { source: bitmap, width: bitmap.width, height: bitmap.height, done: () => bitmap.close() };
  } catch (_) {  // older browsers: an <img> (which also honours EXIF orientation) from a blob: URL
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
      return { source: img, width: img.naturalWidth, height: img.naturalHeight, done: () => URL.revokeObjectURL(url) };
    } catch (_) {
      URL.revokeObjectURL(url);
      return null;
    }
  }
}

function unreadable(file) {
  const heic = /\.(heic|heif)$/i.test(file.name) || /hei[cf]/i.test(file.type);
  const what = heic ? "this format (HEIC?)" : "this file (not an image, or damaged?)";
  return `${file.name}: this browser cannot read ${what} — save or export it as JPEG or PNG ` +
    (heic ? "(on an iPhone: Settings › Camera › Formats › Most Compatible) " : "") + "and upload that";
}

function encode(canvas, type, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

async function upload(file) {
  const picture = await decode(file);
  if (!picture) { show({ error: unreadable(file) }); return; }
  const scale = Math.min(1, MAX_SIDE / Math.max(picture.width, picture.height));
  const scaled = document.createElement("canvas");
  scaled.width = Math.max(1, Math.round(picture.width * scale));
  scaled.height = Math.max(1, Math.round(picture.height * scale));
  const pctx = scaled.getContext("2d");
  pctx.imageSmoothingQuality = "high";
  pctx.drawImage(picture.source, 0, 0, scaled.width, scaled.height);
  picture.done();
  // PNG keeps a drawing's transparency; a photo goes as JPEG (a noisy 1600 px photo is ~1 MB, as PNG ~4)
  const transparent = /png|gif|webp/i.test(file.type);
  let blob = await encode(scaled, transparent ? "image/png" : "image/jpeg", 0.92);
  if (!blob || blob.size > maxUpload) {
    const flat = document.createElement("canvas");
    flat.width = scaled.width; flat.height = scaled.height;
    const fctx = flat.getContext("2d");
    fctx.fillStyle = "#fff"; fctx.fillRect(0, 0, flat.width, flat.height);
    fctx.drawImage(scaled, 0, 0);
    blob = await encode(flat, "image/jpeg", 0.85);
  }
  ctx.fillStyle = "#fff";  // the answer is the photo's now: an earlier drawing beside it would mislead
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  photo = scaled;
  predict(blob);
}

async function predict(blob) {
  sent = blob;
  try {
    const response = await fetch("api/predict", { method: "POST", body: blob, headers: { "Content-Type": blob.type || "application/octet-stream" } });
    const body = await response.json();
    show(response.ok ? body : { error: body.error || `the server answered ${response.status}` });
  } catch (err) {
    show({ error: `no answer from the server (${err.message})` });
  }
}

function show(result) {
  const error = document.getElementById("error");
  error.hidden = !result.error;
  error.textContent = result.error || "";
  // several digits: the number, a bar per digit and each digit's 28x28; one digit: its label and top 3
  const digits = result.digits || [];
  const several = digits.length > 1;
  // with `serve --lines`: whether the line reader read the same digits, else what it read
  const checked = !result.lines ? "" : result.agreed ? " (the line reader agrees)"
    : ` (the line reader reads ${result.lines.map((line) => line.line_reader || "nothing").join(" ")})`;
  document.getElementById("prediction").textContent = several ? result.number + checked : (result.label ?? "?");
  const bars = document.getElementById("bars");
  const ranked = several ? digits.map((d) => [d.label, d.probability]) : (result.top_k || []);
  bars.replaceChildren(...ranked.map(([label, p]) => {
    const row = document.createElement("div"); row.className = "row";
    row.innerHTML = `<span class="label"></span><span class="bar"></span><span class="p"></span>`;
    row.children[0].textContent = label;
    row.children[1].style.width = `${Math.max(2, p * 240)}px`;
    row.children[2].textContent = `${(p * 100).toFixed(1)}%`;
    return row;
  }));
  const seen = document.getElementById("seen");
  if (result.image_png_base64) seen.src = `data:image/png;base64,${result.image_png_base64}`; else seen.removeAttribute("src");
  seen.hidden = several || !result.image_png_base64;  // nothing seen yet (or an error): no broken-image icon
  document.getElementById("digits").replaceChildren(...(several ? digits : []).map((d) => {
    const figure = document.createElement("figure");
    figure.innerHTML = "<img alt=''><figcaption></figcaption>";
    figure.children[0].src = `data:image/png;base64,${d.image_png_base64}`;
    figure.children[0].alt = `the 28x28 the model read as ${d.label}`;
    figure.children[1].textContent = d.reason ? `${d.label}?` : d.label;  // a doubted digit: its reason on hover
    if (d.reason) figure.title = d.reason;
    return figure;
  }));
  showBoxes(digits);
  const table = document.getElementById("distances");
  // a number (or a model without ideal digits) has no one 28x28 to compare: no baseline table then
  document.getElementById("baseline").hidden = !result.distances;
  table.replaceChildren(...Object.entries(result.distances || {}).map(([label, d]) => {
    const row = document.createElement("tr");
    if (label === result.nearest_ideal) row.className = "nearest";
    row.innerHTML = "<td></td><td></td>";
    row.children[0].textContent = `ideal ${label}`;
    row.children[1].textContent = d.toFixed(4);
    return row;
  }));
  showVerdict(result);
}

// One digit the model abstains on: say why ("not sure: 4 or 9?", "this does not look like a digit"),
// and, when `serve --corrections DIR` is on, offer to save what it saw under the right label.
function showVerdict(result) {
  const prediction = document.getElementById("prediction");
  const single = (result.digits || []).length <= 1;
  const abstains = single && result.label == null && Boolean(result.reason);
  if (abstains) prediction.textContent = result.reason;
  prediction.classList.toggle("abstain", abstains);
  document.getElementById("correct").hidden = !(corrections && sent && single && result.top_k);
  document.getElementById("corrected").textContent = "";
}

async function correct(label) {
  const said = document.getElementById("corrected");
  const keep = document.getElementById("keep-photo").checked;
  try {
    const response = await fetch(`api/correct?label=${encodeURIComponent(label)}&keep_photo=${keep}`,
      { method: "POST", body: sent, headers: { "Content-Type": sent.type || "application/octet-stream" } });
    const body = await response.json();
    said.textContent = response.ok
      ? `saved as ${body.saved} (${body.count} of your ${body.label}s so far): digitlab train --data DIR --init MODEL learns them`
      : `not saved: ${body.error || response.status}`;
  } catch (err) {
    said.textContent = `not saved: no answer from the server (${err.message})`;
  }
}

// The photo as sent, each digit found boxed and labelled (boxes in the photo's pixels, drawn in %)
function showBoxes(digits) {
  const frame = document.getElementById("photo-frame");
  frame.hidden = !(photo && digits.length);
  if (frame.hidden) return;
  const view = document.getElementById("photo");
  view.width = photo.width; view.height = photo.height;
  view.getContext("2d").drawImage(photo, 0, 0);
  document.getElementById("boxes").replaceChildren(...digits.map((d) => {
    const [x0, y0, x1, y1] = d.box;
    const box = document.createElement("div"); box.className = "box";
    box.style.left = `${100 * x0 / photo.width}%`; box.style.top = `${100 * y0 / photo.height}%`;
    box.style.width = `${100 * (x1 - x0) / photo.width}%`; box.style.height = `${100 * (y1 - y0) / photo.height}%`;
    const tag = document.createElement("span"); tag.textContent = d.label;
    box.append(tag);
    return box;
  }));
}

fetch("api/health").then((r) => r.json()).then((h) => {
  corrections = Boolean(h.corrections);
  document.getElementById("correct-labels").replaceChildren(...h.classes.map((label) => {
    const button = document.createElement("button");
    button.type = "button"; button.textContent = label;
    button.addEventListener("click", () => correct(label));
    return button;
  }));
  if (h.max_upload_bytes) maxUpload = h.max_upload_bytes;
  const accuracy = h.accuracy == null ? "" : `, validation accuracy ${(h.accuracy * 100).toFixed(2)}%`;
  document.getElementById("model-info").textContent = `model: ${h.model} for ${h.classes.join(", ")}${accuracy}`;
}).catch(() => { document.getElementById("model-info").textContent = "the server is not answering"; });
clearPad();
