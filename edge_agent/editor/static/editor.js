// The zone editor page: load the zone file and the picture, edit, show the tiles, test, save (and apply).
"use strict";
(function () {
  const root = document.getElementById("editor"), camera = root.dataset.camera;
  const $ = (id) => document.getElementById(id);
  const model = {doc: {zones: [], lines: [], masks: []}, sel: null, point: null, mode: "select", draft: [], finish: () => finish()};
  let version = "", schema = null, classes = [], picture = null, origins = new Map();
  const canvas = new ShapeCanvas($("canvas"), model, () => refresh());

  // --- the detector's tiles, for the zones as the page has them (tiles follow the zones) ----------
  const tiles = {
    on: false, asked: null, timer: null,
    toggle() {
      this.on = !this.on; $("tiles").classList.toggle("on", this.on);
      this.asked = null; canvas.tiles = []; $("tiles-status").textContent = ""; canvas.draw();
      this.follow();
    },
    follow() {  // after any change: ask again when the zones or the picture differ from the last ask
      if (!this.on || !picture || JSON.stringify(payload(false)) === this.asked) return;
      clearTimeout(this.timer); this.timer = setTimeout(() => this.ask(), 200);
    },
    async ask() {
      const doc = payload(false), key = JSON.stringify(doc);
      this.asked = key;
      const r = await web.post(`/api/tiles/${camera}`, {doc});
      if (!this.on || key !== this.asked) return;  // toggled off, or a newer ask is on its way
      const problem = !r.ok ? r.body.detail || `HTTP ${r.status}` : r.body.problems[0];
      canvas.tiles = problem ? [] : r.body.tiles;
      $("tiles-status").textContent = problem ? `No tiles shown: ${problem}` : describeTiles(r.body);
      root.dataset.tiles = JSON.stringify(canvas.tiles);
      root.dataset.tilesShown = String(Number(root.dataset.tilesShown || 0) + 1);
      canvas.draw();
    },
  };
  function describeTiles(got) {
    const [W, H] = got.size, n = got.tiles.length, setting = got.setting;
    const named = typeof setting === "string" ? setting : `${setting.size} px, overlap ${setting.overlap}`;
    if (n) {
      const [x1, y1, x2, y2] = got.tiles[0];
      return `${n} tile(s) of ${x2 - x1}x${y2 - y1} px (tiles: ${named}) over the zones of this ${W}x${H} picture, ` +
        "besides the full frame; each runs when it sees motion, found a small object lately, and once per sweep.";
    }
    if (setting === "off") return "No tiles: tiles are off for this camera (tiles: off).";
    if (!model.doc.zones.length && !model.doc.lines.length) return "No tiles: tiles go only where zones and lines are.";
    return `No tiles (tiles: ${named}): on a ${W}x${H} picture the full frame already shows small objects ` +
      "at half their size or more in the model's input.";
  }

  function say(text, kind) { const m = $("message"); m.textContent = text; m.className = kind || ""; }

  // --- the file --------------------------------------------------------------------------------
  async function loadState() {
    const resp = await fetch(`/api/state/${camera}`, {credentials: "same-origin"});
    const st = await resp.json();
    version = st.version; schema = st.schema; classes = st.classes;
    model.doc = st.doc || {};
    for (const key of ["zones", "lines", "masks"]) if (!Array.isArray(model.doc[key])) model.doc[key] = [];
    rememberOrigins();
    $("file").textContent = st.path;
    showProblems(st.problems, st.problems.length ? "The file has problems; fix them here and save:" : "");
    refresh();
  }
  function rememberOrigins() {  // a renamed zone or line keeps its comments in the file
    origins = new Map();
    [...model.doc.zones, ...model.doc.lines].forEach((o) => origins.set(o, o.name));
  }
  function payload(forSave) {
    const strip = (o) => { const c = {...o}; if (forSave && origins.has(o)) c._was = origins.get(o); return c; };
    const doc = {...model.doc, zones: model.doc.zones.map(strip), lines: model.doc.lines.map(strip)};
    for (const key of ["zones", "lines", "masks"]) if (!doc[key].length) delete doc[key];
    if (picture) doc.frame = {width: picture.width, height: picture.height};
    return doc;
  }

  // --- the picture -----------------------------------------------------------------------------
  async function loadPicture(fresh) {
    $("frame-status").textContent = fresh ? "Taking a new picture..." : "Loading the picture...";
    const resp = await fetch(`/api/frame/${camera}${fresh ? "?refresh=true" : ""}`, {credentials: "same-origin"});
    showPicture(await resp.json());
  }
  function showPicture(got) {
    const status = $("frame-status");
    if (!got.frame) { status.textContent = got.error || "no picture"; status.className = "error"; return; }
    picture = got.frame;
    canvas.boxes = []; $("test-result").replaceChildren();  // "test" was on the picture before
    const img = new Image();
    img.onload = () => { canvas.setPicture(img); root.dataset.pictureReady = "1"; tiles.follow(); };
    img.src = `/api/picture/${camera}?t=${Date.now()}`;
    const from = {agent: "the running agent's latest analysed frame", camera: "the camera", upload: "your upload"}[picture.source];
    status.textContent = `${picture.width}x${picture.height} from ${from}, taken ${picture.taken}` + (got.error ? ` (${got.error})` : "");
    status.className = got.error ? "error" : "dim";
  }
  async function upload(file) {
    const resp = await fetch(`/api/frame/${camera}`, {method: "POST", body: file, credentials: "same-origin",
      headers: {"X-CSRF-Token": web.csrf(), "Content-Type": "application/octet-stream"}});
    const body = await resp.json();
    if (!resp.ok) return say(body.detail || `upload refused (${resp.status})`, "bad");
    showPicture(body);
  }

  // --- editing ---------------------------------------------------------------------------------
  function setMode(mode) {
    const sel = model.sel;
    if (mode === "exclude" && !(sel && (sel.kind === "zone" || sel.kind === "exclude"))) {
      return say("select the zone the exclusion is in first", "warn");
    }
    if (mode === "exclude") model.excludeOf = sel.i;
    model.mode = mode; model.draft = [];
    document.querySelectorAll(".toolbar .mode").forEach((b) => b.classList.toggle("on", b.dataset.mode === mode));
    refresh();
  }
  function uniqueName(base) {
    const used = new Set([...model.doc.zones, ...model.doc.lines].map((o) => o.name));
    let n = 1; while (used.has(`${base}-${n}`)) n++;
    return `${base}-${n}`;
  }
  function finish() {
    const pts = model.draft, mode = model.mode;
    if ((mode === "line" && pts.length < 2) || (mode !== "line" && pts.length < 3)) {
      return say(mode === "line" ? "a line needs two points" : "a polygon needs at least three points", "warn");
    }
    if (mode === "exclude") {
      const zone = model.doc.zones[model.excludeOf];
      zone.exclude = [...(zone.exclude || []), pts];
      model.sel = {kind: "exclude", i: model.excludeOf, j: zone.exclude.length - 1};
    } else if (mode === "zone") {
      model.doc.zones.push({name: uniqueName("zone"), kind: "restricted", polygon: pts, labels: ["person"]});
      model.sel = {kind: "zone", i: model.doc.zones.length - 1};
    } else if (mode === "mask") {
      model.doc.masks.push(pts); model.sel = {kind: "mask", i: model.doc.masks.length - 1};
    } else {
      model.doc.lines.push({name: uniqueName("line"), points: pts, labels: ["person"], direction: "in"});
      model.sel = {kind: "line", i: model.doc.lines.length - 1};
    }
    model.draft = []; setMode("select");
  }
  function removeShape(kind, i, j) {
    if (kind === "exclude") {
      const zone = model.doc.zones[i];
      zone.exclude.splice(j, 1);
      if (!zone.exclude.length) delete zone.exclude;
    } else {
      model.doc[kind === "zone" ? "zones" : kind === "line" ? "lines" : "masks"].splice(i, 1);
    }
    model.sel = null; model.point = null; refresh();
  }

  // --- the side panel --------------------------------------------------------------------------
  function refresh() {
    $("finish").disabled = model.mode === "select" || !model.draft.length;
    $("delete-point").disabled = model.point === null || model.point === undefined;
    $("new-exclude").disabled = !model.sel || !["zone", "exclude"].includes(model.sel.kind);
    const list = $("shapes"); list.replaceChildren();
    const entries = [...model.doc.zones.flatMap((z, i) => [[{kind: "zone", i}, `${z.name} (${z.kind || "?"})`, KIND_COLOURS[z.kind]],
        ...(z.exclude || []).map((_, j) => [{kind: "exclude", i, j}, `exclusion ${j + 1} of ${z.name}`, EXCLUDE_COLOUR])]),
      ...model.doc.lines.map((l, i) => [{kind: "line", i}, `${l.name} (line ${l.direction || "both"})`, LINE_COLOUR]),
      ...model.doc.masks.map((m, i) => [{kind: "mask", i}, `mask ${i + 1}`, MASK_COLOUR])];
    for (const [shape, text, colour] of entries) {
      const del = web.el("button", {class: "del", title: "delete this shape"}, "\u00d7");
      del.addEventListener("click", (e) => { e.stopPropagation(); removeShape(shape.kind, shape.i, shape.j); });
      const li = web.el("li", {class: sameShape(model.sel, shape) ? "on" : "", "data-kind": shape.kind,
        "data-index": String(shape.i), "data-sub": shape.j === undefined ? "" : String(shape.j)},
        web.el("span", {class: "swatch"}), text, del);
      if (shape.kind === "exclude") li.classList.add("sub");
      li.querySelector(".swatch").style.background = colour || "#fff";
      li.addEventListener("click", () => { model.sel = shape; model.point = null; refresh(); });
      list.append(li);
    }
    renderForm();
    canvas.draw();
    tiles.follow();
  }
  let formFor = null;
  function renderForm() {
    const sel = model.sel, box = $("form");
    const obj = sel && sel.kind === "zone" ? model.doc.zones[sel.i] : sel && sel.kind === "line" ? model.doc.lines[sel.i] : null;
    if (obj === formFor) return;  // keep the inputs (and their focus) while the same shape is edited
    formFor = obj;
    box.replaceChildren();
    if (!obj || !schema) return;
    box.append(web.el("h2", {}, sel.kind === "zone" ? "Zone settings" : "Line settings"),
      settingsForm(schema, sel.kind === "zone" ? "Zone" : "Line", obj, classes, () => { formFor = obj; refresh(); }));
  }

  // --- problems, test, save --------------------------------------------------------------------
  function showProblems(problems, heading) {
    $("problems").replaceChildren(...problems.map((p) => web.el("li", {}, p)));
    canvas.marks = [];
    for (const p of problems) {  // the message at the shape it is about
      const m = p.match(/(zones|lines|masks)\[(\d+)\](?:\.(polygon|points|exclude)\[(\d+)\](?:\[(\d+)\])?)?/);
      const list = m && model.doc[m[1]], item = list && list[Number(m[2])];
      const inner = m && m[3] === "exclude" && item.exclude ? item.exclude[Number(m[4])] : null;
      const pts = inner || (item && (Array.isArray(item) ? item : item.polygon || item.points));
      const k = inner ? m[5] : m && m[4];
      const crossing = p.match(/Self-intersection\[([-\d.e]+) ([-\d.e]+)\]/);  // shapely says where
      const where = crossing ? [Number(crossing[1]), Number(crossing[2])]
        : pts && pts.length ? pts[k !== undefined ? Number(k) : 0] || pts[0] : null;
      if (where) canvas.marks.push([where, p.split(": ").slice(2).join(": ").replace(/ \(Self-intersection.*\)$/, "")]);
    }
    if (heading) say(heading, "bad");
    canvas.draw();
  }
  async function save() {
    // the state says a save is under way: an earlier save's "refused" must not read as this one's
    root.dataset.saveState = "saving";
    say("Saving...");
    const r = await web.post(`/api/save/${camera}`, {version, doc: payload(true)});
    if (!r.ok) {
      root.dataset.saveState = "failed";
      return say(r.body.detail || `save refused (HTTP ${r.status})`, "bad");
    }
    if (!r.body.saved) {
      showProblems(r.body.problems, r.body.conflict ? "Not saved: the file changed since this page loaded it."
        : "Not saved: the zone file would have problems:");
      root.dataset.saveState = "refused";
      return;
    }
    version = r.body.version; rememberOrigins(); showProblems([], "");
    say(`Saved; ${r.body.apply_message}`, r.body.applied ? "ok" : "warn");
    root.dataset.saveState = r.body.applied ? "applied" : "saved";
    root.dataset.saves = String(Number(root.dataset.saves || 0) + 1);
  }
  async function test() {
    $("test-by").textContent = "Testing...";
    const r = await web.post(`/api/test/${camera}`, {doc: payload(false)});
    if (!r.ok) { $("test-by").textContent = r.body.detail || `test failed (HTTP ${r.status})`; return; }
    if (r.body.problems.length) { showProblems(r.body.problems, "Cannot test: the zones have problems:"); return; }
    canvas.boxes = r.body.detections; canvas.draw();
    $("test-by").textContent = `${r.body.detections.length} detection(s) by ${r.body.by}. A counted object ` +
      "raises an alarm once it stays for the zone's dwell_s and passes the track rules (median score, background).";
    $("test-result").replaceChildren(...r.body.detections.map((d) => {
      const counted = Object.entries(d.zones).filter(([, z]) => z.counts).map(([n]) => n);
      const why = Object.entries(d.zones).map(([n, z]) => `${n}: ` + (z.counts ? "counts" : [
        d.masked ? "masked" : "", z.inside === false ? "anchor outside" : "", z.filters ? "" : "label/score/size filtered",
        z.armed ? "" : "not armed now (disabled or outside its schedule)"].filter(Boolean).join(", "))).join("; ");
      const anchor = Object.values(d.zones).find((z) => z.anchor);
      return web.el("li", {class: counted.length ? "det counts" : "det", "data-label": d.label,
        "data-anchor": anchor ? anchor.anchor.join(",") : "", "data-box": d.box.join(","),
        "data-counted": counted.join(",")}, `${d.label} ${d.score.toFixed(2)}: ${why || "no zones"}`);
    }));
    root.dataset.tested = String(Number(root.dataset.tested || 0) + 1);
  }

  // --- wiring ----------------------------------------------------------------------------------
  document.querySelectorAll(".toolbar .mode").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  $("finish").addEventListener("click", finish);
  $("delete-point").addEventListener("click", () => { const why = canvas.deletePoint(); if (why) say(why, "warn"); });
  $("refresh").addEventListener("click", () => loadPicture(true));
  $("upload").addEventListener("change", (e) => e.target.files[0] && upload(e.target.files[0]));
  $("save").addEventListener("click", save);
  $("test").addEventListener("click", test);
  $("tiles").addEventListener("click", () => tiles.toggle());
  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, select, textarea")) return;
    if (e.key === "Escape") setMode("select");
    else if (e.key === "Enter" && model.mode !== "select") finish();
    else if (e.key === "Delete" || e.key === "Backspace") { const why = canvas.deletePoint(); if (why) say(why, "warn"); }
  });
  setMode("select");
  Promise.all([loadState(), loadPicture(false)]).then(() => { root.dataset.ready = "1"; });
})();
