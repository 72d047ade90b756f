// siedob studio: edit a scene's label and instance maps and its mask, then ask the server's /api/edit.
// Plain JS, no framework; every request goes to this server's API (see docs/studio.md).
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  labels: [], objects: {}, factor: 1000, styles: {}, unlabeled: null, brushLabel: 7,
  scene: null, W: 0, H: 0, photo: null, photoBlob: null,
  origLabels: null, origInst: null, labelsMap: null, inst: null,
  baseMask: null, maskAdd: null, maskRemove: null, derived: null,
  undo: [], redo: [], tool: "brush", label: 7, size: 10, zoom: 1,
  place: null, freehand: null, stroke: null, lastObjects: null, pins: {}, result: null,
};
const MAX_UNDO = 60;
const MAX_THUMBS = 12;  // shapes and style references shown per class (re-roll draws from all of them)

function b64ToBytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function api(path, options) {
  const res = await fetch(path, options);
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { message = (await res.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return res;
}

// ---------- start-up ----------
async function init() {
  const [health, labels, styles] = await Promise.all([
    api("/api/health").then((r) => r.json()),
    api("/api/labels").then((r) => r.json()),
    api("/api/styles").then((r) => r.json()),
  ]);
  $("health").textContent = `siedob ${health.version} · ${health.device} · ${health.checkpoints}`;
  S.labels = labels.labels;
  S.objects = labels.objects;
  S.factor = labels.instance_factor;
  S.unlabeled = labels.unlabeled;
  S.brushLabel = labels.brush_label;
  S.label = labels.brush_label;
  S.styles = styles.styles;
  buildPalette();
  buildObjectClasses();
  buildShapePicker();
  bindControls();
  const scenes = (await api("/api/scenes").then((r) => r.json())).scenes;
  if (scenes.length) await openScene(scenes[0].id);
  else $("scenes-dialog").showModal();
}

function buildPalette() {
  const box = $("palette");
  box.innerHTML = "";
  for (const lab of S.labels) {
    if (lab.id === S.unlabeled) continue;  // read as another class on load (Cityscapes: 0 is read as 33)
    const b = document.createElement("button");
    b.className = "swatch" + (lab.id === S.label ? " active" : "");
    b.dataset.label = lab.id;
    b.innerHTML = `<span style="background: rgb(${lab.color.join(",")})"></span>${lab.id} ${lab.name}`;
    b.onclick = () => {
      S.label = lab.id;
      for (const o of box.children) o.classList.toggle("active", o === b);
      if (!["brush", "rect", "fill"].includes(S.tool)) setTool("brush");
    };
    box.appendChild(b);
  }
}

// The object classes of the loaded checkpoints' dataset profile, in their order (Cityscapes: car, person).
function buildObjectClasses() {
  const select = $("object-class");
  select.innerHTML = "";
  for (const cls of Object.keys(S.objects)) {
    const option = document.createElement("option");
    option.value = cls;
    option.textContent = cls;
    select.appendChild(option);
  }
}

function buildShapePicker() {
  const box = $("shape-picker");
  box.innerHTML = "";
  for (const cls of Object.keys(S.objects)) {
    (S.styles[cls] || []).slice(0, MAX_THUMBS).forEach((ref) => {
      const img = document.createElement("img");
      img.src = `/api/styles/${cls}/${ref.index}`;
      img.title = `place a ${cls} shaped like ${ref.name}`;
      img.className = "shape";
      img.dataset.cls = cls;
      img.dataset.index = ref.index;
      img.onclick = () => pickShape(cls, ref.index);
      box.appendChild(img);
    });
  }
}

async function listScenes() {
  const scenes = (await api("/api/scenes").then((r) => r.json())).scenes;
  const box = $("scene-list");
  box.innerHTML = "";
  for (const s of scenes) {
    const fig = document.createElement("figure");
    fig.className = "thumb";
    fig.dataset.id = s.id;
    fig.innerHTML = `<img loading="lazy" src="/api/scenes/${encodeURIComponent(s.id)}/thumbnail" alt=""><figcaption>${s.source}: ${s.name}</figcaption>`;
    fig.onclick = async () => { $("scenes-dialog").close(); await openScene(s.id); };
    box.appendChild(fig);
  }
}

// ---------- scenes ----------
async function openScene(id) {
  const info = await api(`/api/scenes/${encodeURIComponent(id)}`).then((r) => r.json());
  await loadScene(info);
}

async function loadScene(info) {
  S.scene = info;
  S.W = info.width;
  S.H = info.height;
  S.photoBlob = await api(info.image_url).then((r) => r.blob());
  S.photo = await createImageBitmap(S.photoBlob);
  S.origLabels = b64ToBytes(info.labels);
  S.origInst = new Uint16Array(b64ToBytes(info.instances).buffer);
  S.baseMask = info.mask ? b64ToBytes(info.mask) : new Uint8Array(S.W * S.H);
  resetEdits();
  S.undo = [];
  S.redo = [];
  const canvas = $("canvas");
  canvas.width = S.W;
  canvas.height = S.H;
  $("scene-name").textContent = `${info.source}: ${info.name} (${S.W}×${S.H})`;
  $("original-image").src = URL.createObjectURL(S.photoBlob);
  $("dl-image").href = $("original-image").src;
  $("dl-image").download = `image${info.image_url.endsWith("image") ? "" : ""}.${S.photoBlob.type === "image/png" ? "png" : "jpg"}`;
  $("result-image").removeAttribute("src");
  $("generate").disabled = false;
  S.lastObjects = null;
  S.pins = {};
  renderStyles();
  zoomFit();
  await changed();
}

function resetEdits() {
  S.labelsMap = S.origLabels.slice();
  S.inst = S.origInst.slice();
  S.maskAdd = new Uint8Array(S.W * S.H);
  S.maskRemove = new Uint8Array(S.W * S.H);
  S.derived = new Uint8Array(S.W * S.H);
}

// ---------- undo ----------
function snapshot() {
  return { labels: S.labelsMap.slice(), inst: S.inst.slice(), add: S.maskAdd.slice(), remove: S.maskRemove.slice() };
}
function restore(snap) {
  S.labelsMap = snap.labels; S.inst = snap.inst; S.maskAdd = snap.add; S.maskRemove = snap.remove;
}
function pushUndo() {
  S.undo.push(snapshot());
  if (S.undo.length > MAX_UNDO) S.undo.shift();
  S.redo = [];
}
async function undo() {
  if (!S.undo.length) return;
  S.redo.push(snapshot());
  restore(S.undo.pop());
  await changed();
}
async function redo() {
  if (!S.redo.length) return;
  S.undo.push(snapshot());
  restore(S.redo.pop());
  await changed();
}

// ---------- the mask ----------
function finalMask() {
  const n = S.W * S.H;
  const m = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (S.maskRemove[i]) continue;
    m[i] = Math.max(S.baseMask[i], S.derived[i], S.maskAdd[i]);
  }
  return m;
}

async function mapBlobs() {
  return {
    labels: await PNG.encodeGray(S.labelsMap, S.W, S.H, 8),
    instances: await PNG.encodeGray(S.inst, S.W, S.H, 16),
  };
}

let deriveToken = 0;
async function deriveMask() {
  const token = ++deriveToken;
  const maps = await mapBlobs();
  const form = new FormData();
  form.append("labels", maps.labels, "labels.png");
  form.append("instances", maps.instances, "instances.png");
  form.append("orig_labels", await PNG.encodeGray(S.origLabels, S.W, S.H, 8), "orig_labels.png");
  form.append("orig_instances", await PNG.encodeGray(S.origInst, S.W, S.H, 16), "orig_instances.png");
  const blob = await api("/api/mask", { method: "POST", body: form }).then((r) => r.blob());
  if (token !== deriveToken) return false;
  const bmp = await createImageBitmap(blob);
  const c = new OffscreenCanvas(S.W, S.H);
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const px = ctx.getImageData(0, 0, S.W, S.H).data;
  const d = new Uint8Array(S.W * S.H);
  for (let i = 0; i < d.length; i++) d[i] = px[4 * i];
  S.derived = d;
  return true;
}

// Called after every change of the maps or the mask: derive the mask, redraw, refresh lists and downloads.
let pendingChange = Promise.resolve();
function changed() {
  render();
  pendingChange = pendingChange.then(async () => {
    try {
      if (await deriveMask()) { render(); await refreshDownloads(); }
    } catch (e) { $("edit-error").textContent = e.message; }
    document.body.dataset.ready = String(deriveToken);
  });
  return pendingChange;
}

// ---------- drawing ----------
function render() {
  if (!S.photo) return;
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.globalAlpha = 1;
  ctx.drawImage(S.photo, 0, 0);
  const img = ctx.getImageData(0, 0, S.W, S.H);
  const px = img.data;
  const alpha = Number($("opacity").value) / 100;
  const outlines = $("show-outlines").checked;
  const showMask = $("show-mask").checked;
  const mask = finalMask();
  const colors = S.labels.map((l) => l.color);
  const W = S.W;
  for (let i = 0, n = W * S.H; i < n; i++) {
    let lab = S.labelsMap[i];
    let inst = S.inst[i];
    if (S.place && S.place.cover[i]) { lab = S.objects[S.place.cls]; inst = -1; }
    if (S.freehand && S.freehand.cover[i]) { lab = S.objects[S.freehand.cls]; inst = -1; }
    const c = colors[lab] || [0, 0, 0];
    const o = 4 * i;
    for (let k = 0; k < 3; k++) px[o + k] = px[o + k] * (1 - alpha) + c[k] * alpha;
    if (showMask && mask[i]) {
      const stripe = ((i % W) + Math.floor(i / W)) % 6 < 3;
      if (stripe) { px[o] = px[o] * 0.5 + 127; px[o + 1] *= 0.5; px[o + 2] = px[o + 2] * 0.5 + 127; }
    }
    if (outlines) {
      const x = i % W;
      const right = x + 1 < W ? S.inst[i + 1] : inst;
      const down = i + W < n ? S.inst[i + W] : inst;
      if ((inst >= S.factor || right >= S.factor || down >= S.factor) && (right !== inst || down !== inst)) {
        px[o] = 255; px[o + 1] = 255; px[o + 2] = 255;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  renderObjects(mask);
  const masked = mask.reduce((a, v) => a + (v > 0 ? 1 : 0), 0);
  $("mask-info").textContent = `${(100 * masked / (S.W * S.H)).toFixed(1)} % of the image will be regenerated`;
}

function canvasPoint(ev) {
  const r = $("canvas").getBoundingClientRect();
  return {
    x: Math.floor((ev.clientX - r.left) * S.W / r.width),
    y: Math.floor((ev.clientY - r.top) * S.H / r.height),
  };
}

function disc(x0, y0, fn) {
  const r = S.size / 2;
  const ri = Math.ceil(r);
  for (let dy = -ri; dy <= ri; dy++) {
    for (let dx = -ri; dx <= ri; dx++) {
      if (dx * dx + dy * dy > r * r) continue;
      const x = x0 + dx, y = y0 + dy;
      if (x >= 0 && y >= 0 && x < S.W && y < S.H) fn(y * S.W + x);
    }
  }
}

function line(a, b, fn) {
  const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y)));
  for (let s = 0; s <= steps; s++) {
    disc(Math.round(a.x + (b.x - a.x) * s / steps), Math.round(a.y + (b.y - a.y) * s / steps), fn);
  }
}

function paintFn(tool) {
  if (tool === "brush") return (i) => { S.labelsMap[i] = S.label; S.inst[i] = S.label; };
  if (tool === "eraser") return (i) => { S.labelsMap[i] = S.origLabels[i]; S.inst[i] = S.origInst[i]; };
  if (tool === "mask-add") return (i) => { S.maskAdd[i] = 255; S.maskRemove[i] = 0; };
  if (tool === "mask-remove") return (i) => { S.maskRemove[i] = 1; S.maskAdd[i] = 0; };
  if (tool === "freehand") return (i) => { S.freehand.cover[i] = 1; };
  return null;
}

function floodFill(p) {
  const W = S.W, H = S.H;
  const start = p.y * W + p.x;
  const lab0 = S.labelsMap[start], inst0 = S.inst[start];
  if (lab0 === S.label && inst0 === S.label) return;
  const seen = new Uint8Array(W * H);
  const stack = [start];
  seen[start] = 1;
  while (stack.length) {
    const i = stack.pop();
    S.labelsMap[i] = S.label;
    S.inst[i] = S.label;
    const x = i % W;
    for (const j of [x > 0 ? i - 1 : -1, x + 1 < W ? i + 1 : -1, i - W, i + W]) {
      if (j < 0 || j >= W * H || seen[j]) continue;
      if (S.labelsMap[j] === lab0 && S.inst[j] === inst0) { seen[j] = 1; stack.push(j); }
    }
  }
}

function newInstanceId(cls) {
  const used = new Set(S.inst);
  const base = S.objects[cls] * S.factor;
  let k = 0;
  while (used.has(base + k)) k++;
  return base + k;
}

function commitCover(cover, cls) {
  pushUndo();
  const id = newInstanceId(cls);
  const lab = S.objects[cls];
  for (let i = 0; i < cover.length; i++) if (cover[i]) { S.labelsMap[i] = lab; S.inst[i] = id; }
  return id;
}

function deleteObject(id) {
  if (id < S.factor) return;
  // The object's pixels take the most common non-object label on the ring around it.
  const W = S.W, H = S.H;
  const counts = new Map();
  for (let i = 0; i < W * H; i++) {
    if (S.inst[i] !== id) continue;
    const x = i % W;
    for (const j of [x > 0 ? i - 1 : -1, x + 1 < W ? i + 1 : -1, i - W, i + W]) {
      if (j < 0 || j >= W * H || S.inst[j] === id || S.inst[j] >= S.factor) continue;
      counts.set(S.labelsMap[j], (counts.get(S.labelsMap[j]) || 0) + 1);
    }
  }
  let fill = S.brushLabel, best = -1;
  for (const [lab, c] of counts) if (c > best) { best = c; fill = lab; }
  pushUndo();
  for (let i = 0; i < W * H; i++) if (S.inst[i] === id) { S.labelsMap[i] = fill; S.inst[i] = fill; }
}

// ---------- placing objects ----------
async function pickShape(cls, index) {
  const shape = await api(`/api/shapes/${cls}/${index}`).then((r) => r.json());
  S.place = { cls, shape: b64ToBytes(shape.data), sw: shape.width, sh: shape.height, x: Math.floor(S.W / 2), y: Math.floor(S.H * 0.6), cover: null };
  for (const img of $("shape-picker").children) img.classList.toggle("active", img.dataset.cls === cls && Number(img.dataset.index) === index);
  $("object-class").value = cls;
  setTool("place");
  updatePlace();
}

function updatePlace() {
  const p = S.place;
  if (!p) { $("place-controls").classList.add("hidden"); render(); return; }
  $("place-controls").classList.remove("hidden");
  const scale = Number($("place-scale").value) / 100;
  $("place-scale-value").textContent = `${Math.round(scale * 100)}%`;
  const w = Math.max(1, Math.round(p.sw * scale)), h = Math.max(1, Math.round(p.sh * scale));
  const cover = new Uint8Array(S.W * S.H);
  const x0 = p.x - Math.floor(w / 2), y0 = p.y - h;  // anchored at the object's feet
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const X = x0 + x, Y = y0 + y;
      if (X < 0 || Y < 0 || X >= S.W || Y >= S.H) continue;
      const sx = Math.min(p.sw - 1, Math.floor(x / scale)), sy = Math.min(p.sh - 1, Math.floor(y / scale));
      if (p.shape[sy * p.sw + sx]) cover[Y * S.W + X] = 1;
    }
  }
  p.cover = cover;
  render();
}

async function commitPlace() {
  if (!S.place || !S.place.cover) return;
  commitCover(S.place.cover, S.place.cls);
  S.place = null;
  updatePlace();
  await changed();
}

// ---------- pointer ----------
function bindCanvas() {
  const canvas = $("canvas");
  canvas.addEventListener("pointerdown", async (ev) => {
    if (!S.photo) return;
    canvas.setPointerCapture(ev.pointerId);
    const p = canvasPoint(ev);
    const tool = S.tool;
    if (tool === "fill") { pushUndo(); floodFill(p); await changed(); return; }
    if (tool === "delete") {
      const id = S.inst[p.y * S.W + p.x];
      if (id >= S.factor) { deleteObject(id); await changed(); }
      return;
    }
    if (tool === "place") {
      if (!S.place) return;
      S.stroke = { last: p, moving: true };
      S.place.x = p.x; S.place.y = p.y; updatePlace();
      return;
    }
    if (tool === "rect") { S.stroke = { start: p, last: p }; return; }
    if (tool === "freehand") S.freehand = { cls: $("object-class").value, cover: new Uint8Array(S.W * S.H) };
    else pushUndo();
    S.stroke = { last: p };
    disc(p.x, p.y, paintFn(tool));
    render();
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!S.photo) return;
    const p = canvasPoint(ev);
    const i = p.y * S.W + p.x;
    if (p.x >= 0 && p.y >= 0 && p.x < S.W && p.y < S.H) {
      const lab = S.labels[S.labelsMap[i]];
      $("cursor-info").textContent = `(${p.x}, ${p.y}) ${lab ? lab.name : S.labelsMap[i]} · instance ${S.inst[i]}`;
    }
    if (!S.stroke) return;
    if (S.tool === "place" && S.place) { S.place.x = p.x; S.place.y = p.y; updatePlace(); return; }
    if (S.tool === "rect") { S.stroke.last = p; drawRectPreview(S.stroke.start, p); return; }
    const fn = paintFn(S.tool);
    if (fn) { line(S.stroke.last, p, fn); S.stroke.last = p; render(); }
  });
  const end = async () => {
    if (!S.stroke) return;
    const stroke = S.stroke;
    S.stroke = null;
    if (S.tool === "place") return;
    if (S.tool === "rect") {
      pushUndo();
      const x0 = Math.max(0, Math.min(stroke.start.x, stroke.last.x)), x1 = Math.min(S.W - 1, Math.max(stroke.start.x, stroke.last.x));
      const y0 = Math.max(0, Math.min(stroke.start.y, stroke.last.y)), y1 = Math.min(S.H - 1, Math.max(stroke.start.y, stroke.last.y));
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) { S.labelsMap[y * S.W + x] = S.label; S.inst[y * S.W + x] = S.label; }
    }
    if (S.tool === "freehand" && S.freehand) { commitCover(S.freehand.cover, S.freehand.cls); S.freehand = null; }
    await changed();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("wheel", (ev) => {
    if (S.tool === "place" && S.place) {
      ev.preventDefault();
      const s = $("place-scale");
      s.value = Math.max(Number(s.min), Math.min(Number(s.max), Number(s.value) - Math.sign(ev.deltaY) * 10));
      updatePlace();
    } else if (ev.ctrlKey) { ev.preventDefault(); setZoom(S.zoom * (ev.deltaY < 0 ? 1.25 : 0.8)); }
  }, { passive: false });
}

function drawRectPreview(a, b) {
  render();
  const ctx = $("canvas").getContext("2d");
  const c = S.labels[S.label].color;
  ctx.fillStyle = `rgba(${c.join(",")},0.6)`;
  ctx.fillRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x) + 1, Math.abs(b.y - a.y) + 1);
}

// ---------- objects, styles ----------
function objectStats(mask) {
  const stats = new Map();
  for (let i = 0; i < S.inst.length; i++) {
    const id = S.inst[i];
    if (id < S.factor) continue;
    const s = stats.get(id) || { id, area: 0, masked: 0 };
    s.area++;
    if (mask[i]) s.masked++;
    stats.set(id, s);
  }
  return [...stats.values()].sort((a, b) => a.id - b.id);
}

function className(id) {
  const cls = Math.floor(id / S.factor);
  const lab = S.labels[cls];
  return lab ? lab.name : String(cls);
}

function renderObjects(mask) {
  const list = $("object-list");
  list.innerHTML = "";
  for (const s of objectStats(mask)) {
    const li = document.createElement("li");
    const fate = s.masked === 0 ? "kept" : s.masked === s.area ? "generated" : "inpainted";
    li.dataset.id = s.id;
    li.dataset.fate = fate;
    li.innerHTML = `<span>${className(s.id)} ${s.id}</span> <span class="fate ${fate}">${fate}</span> <span class="muted">${s.area} px</span>`;
    const del = document.createElement("button");
    del.textContent = "delete";
    del.onclick = async () => { deleteObject(s.id); await changed(); };
    li.appendChild(del);
    list.appendChild(li);
  }
}

function renderStyles() {
  const box = $("style-list");
  box.innerHTML = "";
  const objs = (S.lastObjects || []).filter((o) => o.generated);
  if (!objs.length) { box.textContent = "no generated object in the last result"; return; }
  for (const o of objs) {
    const row = document.createElement("div");
    row.className = "style-row";
    const current = S.pins[o.id] || o.style;
    row.innerHTML = `<div>${o.class} ${o.id}: <b>${current}</b></div>`;
    const refs = S.styles[o.class] || [];
    const shown = refs.slice(0, MAX_THUMBS);
    const pinned = refs.find((r) => r.name === current);
    if (pinned && !shown.includes(pinned)) shown.push(pinned);
    for (const ref of shown) {
      const img = document.createElement("img");
      img.src = `/api/styles/${o.class}/${ref.index}`;
      img.title = ref.name;
      img.className = "shape" + (ref.name === current ? " active" : "");
      img.onclick = () => { S.pins[o.id] = ref.name; renderStyles(); };
      row.appendChild(img);
    }
    const reroll = document.createElement("button");
    reroll.textContent = "re-roll";
    reroll.onclick = () => {
      const refs = S.styles[o.class] || [];
      if (refs.length) S.pins[o.id] = refs[Math.floor(Math.random() * refs.length)].name;
      renderStyles();
    };
    row.appendChild(reroll);
    box.appendChild(row);
  }
}

// The styles field pins one reference per object position of each class (the chain's slot rule), valid only while
// the edited objects are those of the last result; otherwise the seed draws them.
function pinnedStyles() {
  if (!S.lastObjects || !Object.keys(S.pins).length) return null;
  const names = [];
  for (const cls of Object.keys(S.objects)) {
    for (const o of S.lastObjects.filter((x) => x.class === cls)) {
      names.push(S.pins[o.id] || o.style || ((S.styles[cls] || [])[0] || {}).name);
    }
  }
  return names.filter(Boolean).join(",");
}

// ---------- generate ----------
async function generate() {
  $("edit-error").textContent = "";
  $("generate").disabled = true;
  $("generate").textContent = "Generating…";
  try {
    await pendingChange;
    const maps = await mapBlobs();
    const form = new FormData();
    form.append("image", S.photoBlob, "image");
    form.append("labels", maps.labels, "labels.png");
    form.append("instances", maps.instances, "instances.png");
    form.append("mask", await PNG.encodeGray(finalMask(), S.W, S.H, 8), "mask.png");
    form.append("seed", String(Number($("seed").value) || 0));
    form.append("stages", "1");
    const pins = pinnedStyles();
    if (pins) form.append("styles", pins);
    const t0 = performance.now();
    const info = await api("/api/edit", { method: "POST", body: form }).then((r) => r.json());
    const ms = performance.now() - t0;
    S.result = info;
    $("result-image").src = info.result;
    $("dl-result").href = info.result;
    $("stage-result").src = info.result;
    for (const k of ["objects", "background", "composite"]) {
      if (info[k]) $(`stage-${k}`).src = info[k]; else $(`stage-${k}`).removeAttribute("src");
    }
    $("latency").textContent = `${ms.toFixed(0)} ms round trip (edit ${info.edit_ms} ms) · seed ${info.seed}`;
    $("result-caption").textContent = `result · seed ${info.seed}`;
    const ids = (info.edited_objects || []).map((o) => o.id).join(",");
    const before = (S.lastObjects || []).map((o) => o.id).join(",");
    if (ids !== before) S.pins = {};
    S.lastObjects = info.edited_objects || [];
    renderStyles();
  } catch (e) {
    $("edit-error").textContent = e.message;
  } finally {
    $("generate").disabled = false;
    $("generate").textContent = "Generate";
  }
}

async function refreshDownloads() {
  const maps = await mapBlobs();
  for (const [id, blob] of [["dl-labels", maps.labels], ["dl-instances", maps.instances],
    ["dl-mask", await PNG.encodeGray(finalMask(), S.W, S.H, 8)]]) {
    const a = $(id);
    if (a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(blob);
  }
}

async function applyPreset(kind) {
  const blob = await api(`/api/mask-presets/${kind}?width=${S.W}&height=${S.H}&seed=${Number($("seed").value) || 0}`).then((r) => r.blob());
  const bmp = await createImageBitmap(blob);
  const c = new OffscreenCanvas(S.W, S.H);
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const px = ctx.getImageData(0, 0, S.W, S.H).data;
  pushUndo();
  for (let i = 0; i < S.W * S.H; i++) if (px[4 * i] > 127) { S.maskAdd[i] = 255; S.maskRemove[i] = 0; }
  await changed();
}

// ---------- controls ----------
function setTool(tool) {
  S.tool = tool;
  for (const b of $("toolbar").children) b.classList.toggle("active", b.dataset.tool === tool);
  if (tool !== "place" && S.place) { S.place = null; updatePlace(); }
}

function setZoom(z) {
  S.zoom = Math.max(0.25, Math.min(8, z));
  $("canvas").style.width = `${Math.round(S.W * S.zoom)}px`;
  $("zoom-value").textContent = `${Math.round(S.zoom * 100)}%`;
}
function zoomFit() {
  const wrap = $("canvas-wrap");
  const byWidth = (wrap.clientWidth || S.W) / S.W;
  const byHeight = (parseFloat(getComputedStyle(wrap).maxHeight) || window.innerHeight * 0.62) / S.H;
  setZoom(Math.min(4, Math.max(0.25, Math.floor(Math.min(byWidth, byHeight) * 100 - 1) / 100)));
}

function bindControls() {
  for (const b of $("toolbar").children) b.onclick = () => setTool(b.dataset.tool);
  $("brush-size").oninput = (e) => { S.size = Number(e.target.value); $("brush-size-value").textContent = S.size; };
  for (const id of ["opacity", "show-outlines", "show-mask"]) $(id).oninput = render;
  $("undo").onclick = undo;
  $("redo").onclick = redo;
  $("reset").onclick = async () => { pushUndo(); resetEdits(); await changed(); };
  $("zoom-in").onclick = () => setZoom(S.zoom * 1.25);
  $("zoom-out").onclick = () => setZoom(S.zoom / 1.25);
  $("zoom-fit").onclick = zoomFit;
  $("place-scale").oninput = updatePlace;
  $("place-commit").onclick = commitPlace;
  $("place-cancel").onclick = () => { S.place = null; updatePlace(); };
  $("generate").onclick = generate;
  $("new-seed").onclick = () => { $("seed").value = Math.floor(Math.random() * 1e6); S.pins = {}; renderStyles(); };
  for (const b of document.querySelectorAll("[data-preset]")) b.onclick = () => applyPreset(b.dataset.preset);
  $("mask-clear").onclick = async () => {
    pushUndo();
    S.maskAdd.fill(0);
    for (let i = 0; i < S.maskRemove.length; i++) S.maskRemove[i] = S.baseMask[i] || S.derived[i] ? 1 : 0;
    await changed();
  };
  $("show-stages").onchange = (e) => $("stages").classList.toggle("hidden", !e.target.checked);
  const result = $("result-image");
  const compare = () => document.querySelector("input[name=compare]:checked").value;
  for (const r of document.querySelectorAll("input[name=compare]")) {
    r.onchange = () => $("original-fig").classList.toggle("hidden", compare() === "hold");
  }
  result.addEventListener("pointerdown", () => { if (compare() === "hold" && S.photoBlob) { result.dataset.result = result.src; result.src = $("original-image").src; } });
  const back = () => { if (result.dataset.result) { result.src = result.dataset.result; delete result.dataset.result; } };
  result.addEventListener("pointerup", back);
  result.addEventListener("pointerleave", back);
  $("open-scenes").onclick = async () => { await listScenes(); $("scenes-dialog").showModal(); };
  $("upload-form").onsubmit = async (ev) => {
    ev.preventDefault();
    $("upload-error").textContent = "";
    const form = new FormData(ev.target);
    if (!form.get("mask") || !form.get("mask").size) form.delete("mask");
    try {
      const info = await api("/api/scenes", { method: "POST", body: form }).then((r) => r.json());
      $("scenes-dialog").close();
      await loadScene(info);
    } catch (e) { $("upload-error").textContent = e.message; }
  };
  document.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT") return;
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); undo(); }
    if ((ev.ctrlKey || ev.metaKey) && (ev.key === "y" || (ev.shiftKey && ev.key === "Z"))) { ev.preventDefault(); redo(); }
    if (ev.key === "Enter" && S.place) commitPlace();
    if (ev.key === "Escape" && S.place) { S.place = null; updatePlace(); }
  });
  bindCanvas();
}

// A read-only view for scripted checks (the browser tests): the current maps and mask.
window.siedobStudio = {
  state: () => ({ width: S.W, height: S.H, labels: Array.from(S.labelsMap), instances: Array.from(S.inst), mask: Array.from(finalMask()) }),
  settled: () => pendingChange,
};

init().catch((e) => { $("health").textContent = `error: ${e.message}`; });
