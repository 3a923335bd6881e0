// The draw-a-digit page: strokes on a canvas, a debounced POST of the canvas as PNG, results shown.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const DEBOUNCE_MS = 250;  // wait this long after the last stroke before asking the model
let drawing = false, last = null, timer = null, hasInk = false;

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
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

pad.addEventListener("pointerdown", (e) => { drawing = true; last = point(e); stroke(last, last); pad.setPointerCapture(e.pointerId); });
pad.addEventListener("pointermove", (e) => { if (!drawing) return; const p = point(e); stroke(last, p); last = p; schedule(); });
["pointerup", "pointercancel", "pointerleave"].forEach((name) => pad.addEventListener(name, () => { if (drawing) { drawing = false; schedule(); } }));
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload").addEventListener("change", (e) => { const file = e.target.files[0]; if (file) predict(file); e.target.value = ""; });

// The canvas is sent at 112x112 (4x the model's 28): plenty for the strokes' shape, and a
// sixth of the pixels for the server to decode and preprocess.
const SEND_SIDE = 112;
const small = document.createElement("canvas");
small.width = small.height = SEND_SIDE;

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!hasInk) return;
    const sctx = small.getContext("2d");
    sctx.imageSmoothingQuality = "high";
    sctx.drawImage(pad, 0, 0, SEND_SIDE, SEND_SIDE);
    small.toBlob(predict, "image/png");
  }, DEBOUNCE_MS);
}

async function predict(blob) {
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
  document.getElementById("prediction").textContent = result.label ?? "?";
  const bars = document.getElementById("bars");
  bars.replaceChildren(...(result.top_k || []).map(([label, p]) => {
    const row = document.createElement("div"); row.className = "row";
    row.innerHTML = `<span class="label"></span><span class="bar"></span><span class="p"></span>`;
    row.children[0].textContent = label;
    row.children[1].style.width = `${Math.max(2, p * 240)}px`;
    row.children[2].textContent = `${(p * 100).toFixed(1)}%`;
    return row;
  }));
  const seen = document.getElementById("seen");
  if (result.image_png_base64) seen.src = `data:image/png;base64,${result.image_png_base64}`; else seen.removeAttribute("src");
  const table = document.getElementById("distances");
  table.replaceChildren(...Object.entries(result.distances || {}).map(([label, d]) => {
    const row = document.createElement("tr");
    if (label === result.nearest_ideal) row.className = "nearest";
    row.innerHTML = "<td></td><td></td>";
    row.children[0].textContent = `ideal ${label}`;
    row.children[1].textContent = d.toFixed(4);
    return row;
  }));
}

fetch("api/health").then((r) => r.json()).then((h) => {
  const accuracy = h.accuracy == null ? "" : `, validation accuracy ${(h.accuracy * 100).toFixed(2)}%`;
  document.getElementById("model-info").textContent = `model: ${h.model} for ${h.classes.join(", ")}${accuracy}`;
}).catch(() => { document.getElementById("model-info").textContent = "the server is not answering"; });
clearPad();
