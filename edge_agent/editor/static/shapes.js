// The canvas: the camera's picture with zones (and their exclusions), masks, lines and the
// detector's tiles over it, and the mouse work on them. Points are kept as the zone file keeps
// them: fractions of the picture's width and height; tiles come in picture pixels.
"use strict";
const KIND_COLOURS = {rail: "#ff6b3d", water: "#3d9be9", shore: "#e3c04a", restricted: "#c266ff"};
const MASK_COLOUR = "#9aa5b1", LINE_COLOUR = "#2ee6d6", DRAFT_COLOUR = "#ffffff", EXCLUDE_COLOUR = "#ffffff";
const TILE_COLOUR = "#f0f6fc";
const HIT_PX = 9;  // how near (screen pixels) a click must be to a point or an edge

function dist(a, b) { return Math.hypot(a[0] - b[0], a[1] - b[1]); }

function toSegment(p, a, b) {  // distance from p to segment a-b, and where along it (0..1)
  const dx = b[0] - a[0], dy = b[1] - a[1], len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len)) : 0;
  return [dist(p, [a[0] + t * dx, a[1] + t * dy]), t];
}

// One shape of the document: its kind and index, and for an exclusion its zone's index `i` and its own `j`.
function sameShape(a, b) { return Boolean(a && b) && a.kind === b.kind && a.i === b.i && (a.j ?? -1) === (b.j ?? -1); }

function insidePolygon(p, pts) {
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i], [xj, yj] = pts[j];
    if ((yi > p[1]) !== (yj > p[1]) && p[0] < (xj - xi) * (p[1] - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

class ShapeCanvas {
  // `model` holds doc, selection, mode and draft; `changed()` is called after every edit.
  constructor(canvas, model, changed) {
    this.c = canvas; this.ctx = canvas.getContext("2d"); this.m = model; this.changed = changed;
    this.img = null; this.drag = null; this.marks = []; this.boxes = []; this.tiles = [];
    canvas.addEventListener("mousedown", (e) => this.down(e));
    canvas.addEventListener("mousemove", (e) => this.move(e));
    window.addEventListener("mouseup", () => this.up());
    canvas.addEventListener("dblclick", (e) => this.dblclick(e));
  }

  setPicture(img) {
    this.img = img; this.c.width = img.naturalWidth; this.c.height = img.naturalHeight; this.draw();
  }

  // --- coordinates: screen pixels of the shown canvas <-> fractions of the picture -----------
  norm(e) {
    const r = this.c.getBoundingClientRect();
    return [Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)), Math.max(0, Math.min(1, (e.clientY - r.top) / r.height))];
  }
  screen(p) { const r = this.c.getBoundingClientRect(); return [p[0] * r.width, p[1] * r.height]; }
  px(p) { return [p[0] * this.c.width, p[1] * this.c.height]; }

  // --- the shapes of the document, uniformly: {kind, i, (j), pts, closed} -------------------
  shapes() {
    const d = this.m.doc, out = [];
    (d.zones || []).forEach((z, i) => out.push({kind: "zone", i, pts: z.polygon || [], closed: true, obj: z}));
    (d.zones || []).forEach((z, i) => (z.exclude || []).forEach((pts, j) =>
      out.push({kind: "exclude", i, j, pts, closed: true, zone: z})));
    (d.masks || []).forEach((p, i) => out.push({kind: "mask", i, pts: p, closed: true}));
    (d.lines || []).forEach((l, i) => out.push({kind: "line", i, pts: l.points || [], closed: false, obj: l}));
    return out;
  }
  selected() { const s = this.m.sel; return s && this.shapes().find((x) => sameShape(x, s)); }

  hitPoint(shape, at) {
    const a = this.screen(at);
    return shape.pts.findIndex((p) => dist(this.screen(p), a) <= HIT_PX);
  }
  hitEdge(shape, at) {
    const a = this.screen(at), n = shape.pts.length, last = shape.closed ? n : n - 1;
    for (let k = 0; k < last; k++) {
      const [d] = toSegment(a, this.screen(shape.pts[k]), this.screen(shape.pts[(k + 1) % n]));
      if (d <= HIT_PX) return k;
    }
    return -1;
  }

  // --- mouse ----------------------------------------------------------------------------------
  down(e) {
    if (e.button !== 0) return;
    const at = this.norm(e), m = this.m;
    if (m.mode !== "select") return this.addDraftPoint(at);
    const sel = this.selected();
    const order = sel ? [sel, ...this.shapes().filter((s) => s !== sel)] : this.shapes();
    for (const s of order) {
      const k = this.hitPoint(s, at);
      if (k >= 0) { this.select(s, k); this.drag = {shape: s, k}; return; }
    }
    if (sel && sel.kind !== "line") {
      const k = this.hitEdge(sel, at);
      if (k >= 0) {  // a new point on that edge, dragged from where it was grabbed
        sel.pts.splice(k + 1, 0, at); this.select(sel, k + 1); this.drag = {shape: sel, k: k + 1};
        this.changed(); return;
      }
    }
    const hit = this.shapes().reverse().find((s) => s.closed ? insidePolygon(at, s.pts) : this.hitEdge(s, at) >= 0);
    if (hit) this.select(hit, null); else { m.sel = null; m.point = null; this.changed(); }
  }
  move(e) {
    if (!this.drag) return;
    const at = this.norm(e);
    this.drag.shape.pts[this.drag.k] = at;
    this.draw();
  }
  up() { if (this.drag) { this.drag = null; this.changed(); } }
  dblclick(e) {
    const sel = this.selected();
    if (!sel) return;
    const k = this.hitPoint(sel, this.norm(e));
    if (k >= 0) { this.m.point = k; this.deletePoint(); }
  }
  select(shape, k) { this.m.sel = {kind: shape.kind, i: shape.i, j: shape.j}; this.m.point = k; this.changed(); }

  deletePoint() {
    const sel = this.selected(), k = this.m.point;
    if (!sel || k === null || k === undefined) return "select a point first";
    const least = sel.closed ? 3 : 2;
    if (sel.pts.length <= least) return `a ${sel.closed ? "polygon" : "line"} keeps at least ${least} points; delete the shape instead`;
    sel.pts.splice(k, 1); this.m.point = null; this.changed(); return null;
  }

  addDraftPoint(at) {
    const m = this.m;
    if (m.draft.length >= 3 && dist(this.screen(at), this.screen(m.draft[0])) <= HIT_PX) return this.m.finish();
    m.draft.push(at);
    if (m.mode === "line" && m.draft.length === 2) return this.m.finish();
    this.changed();
  }

  // --- drawing --------------------------------------------------------------------------------
  draw() {
    const ctx = this.ctx, W = this.c.width, H = this.c.height, lw = Math.max(2, W / 480);
    ctx.clearRect(0, 0, W, H);
    if (this.img) ctx.drawImage(this.img, 0, 0, W, H);
    const sel = this.m.sel;
    for (const s of this.shapes()) {
      const on = sameShape(sel, s);
      if (s.kind === "exclude") { this.exclusion(s.pts, on ? lw * 1.8 : lw); } else {
        const colour = s.kind === "mask" ? MASK_COLOUR : s.kind === "line" ? LINE_COLOUR : (KIND_COLOURS[s.obj.kind] || "#fff");
        // a zone's exclusions are holes in its fill: nothing counts there
        this.path(s.pts, s.closed, colour, on ? lw * 1.8 : lw, s.kind === "mask" ? 0.35 : 0.18, s.obj && s.obj.exclude);
        if (s.obj && s.pts.length) this.text(s.obj.name, s.pts[0], colour);
      }
      if (s.kind === "line" && s.pts.length === 2) this.arrow(s.pts, s.obj.direction || "both", lw);
      if (on) s.pts.forEach((p, k) => this.dot(p, k === this.m.point ? "#ffea00" : "#fff", lw * 2.2));
    }
    if (this.m.draft.length) {
      this.path(this.m.draft, false, DRAFT_COLOUR, lw, 0);
      this.m.draft.forEach((p) => this.dot(p, DRAFT_COLOUR, lw * 2));
    }
    this.tiles.forEach((t, k) => this.tile(t, k + 1));
    this.boxes.forEach((b) => this.box(b, lw));
    this.marks.forEach(([p, text]) => { this.dot(p, "#e5534b", lw * 3); this.text(text, p, "#ff8c85", true); });
  }
  outline(pts, closed) {
    pts.forEach((p, k) => { const [x, y] = this.px(p); if (k) this.ctx.lineTo(x, y); else this.ctx.moveTo(x, y); });
    if (closed) this.ctx.closePath();
  }
  path(pts, closed, colour, width, fill, holes) {
    if (!pts.length) return;
    const ctx = this.ctx;
    if (closed && fill) {
      ctx.beginPath(); this.outline(pts, true); (holes || []).forEach((h) => this.outline(h, true));
      ctx.globalAlpha = fill; ctx.fillStyle = colour; ctx.fill("evenodd"); ctx.globalAlpha = 1;
    }
    ctx.beginPath(); this.outline(pts, closed);
    ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.stroke();
  }
  exclusion(pts, width) {  // hatched and dashed white, as `edge-agent zones render` draws it
    if (!pts.length) return;
    const ctx = this.ctx, step = Math.max(8, width * 5);
    if (!this.hatch || this.hatch.step !== step) {
      const tile = document.createElement("canvas"), t = tile.getContext("2d");
      tile.width = tile.height = step;
      t.strokeStyle = "rgba(255,255,255,.55)"; t.lineWidth = Math.max(1, width / 2);
      t.beginPath(); t.moveTo(0, step); t.lineTo(step, 0); t.stroke();
      this.hatch = {step, pattern: ctx.createPattern(tile, "repeat")};
    }
    ctx.beginPath(); this.outline(pts, true);
    ctx.fillStyle = this.hatch.pattern; ctx.fill();
    ctx.setLineDash([width * 3, width * 2]); ctx.strokeStyle = EXCLUDE_COLOUR; ctx.lineWidth = width; ctx.stroke();
    ctx.setLineDash([]);
  }
  tile([x1, y1, x2, y2], n) {  // as config/render.py draw_tiles: every other one inset, so overlaps show
    const ctx = this.ctx, thick = Math.max(1, Math.round(Math.min(this.c.width, this.c.height) / 500));
    const inset = 2 * thick * (n % 2), size = Math.max(12, Math.min(this.c.width, this.c.height) / 45);
    ctx.strokeStyle = TILE_COLOUR; ctx.lineWidth = thick;
    ctx.strokeRect(x1 + inset, y1 + inset, x2 - x1 - 2 * inset, y2 - y1 - 2 * inset);
    ctx.font = `${size}px system-ui, sans-serif`; ctx.fillStyle = TILE_COLOUR;
    ctx.fillText(String(n), x1 + inset + 4, y2 - inset - 6);
  }
  // `in` counts a crossing from the left of A->B to its right (as the picture is seen, y down):
  // the arrow points to the right side; `out` the other way; `both` both.
  arrow(pts, direction, lw) {
    const [a, b] = pts.map((p) => this.px(p)), mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]) || 1, n = [-(b[1] - a[1]) / len, (b[0] - a[0]) / len];
    const size = Math.max(18, this.c.width / 30);
    const heads = direction === "both" ? [1, -1] : direction === "out" ? [-1] : [1];
    const ctx = this.ctx;
    for (const sign of heads) {
      const tip = [mid[0] + sign * n[0] * size, mid[1] + sign * n[1] * size];
      ctx.beginPath(); ctx.moveTo(mid[0], mid[1]); ctx.lineTo(tip[0], tip[1]);
      const back = [-sign * n[0] * size * 0.35, -sign * n[1] * size * 0.35], side = [n[1] * size * 0.25, -n[0] * size * 0.25];
      ctx.moveTo(tip[0] + back[0] + side[0], tip[1] + back[1] + side[1]); ctx.lineTo(tip[0], tip[1]);
      ctx.lineTo(tip[0] + back[0] - side[0], tip[1] + back[1] - side[1]);
      ctx.strokeStyle = LINE_COLOUR; ctx.lineWidth = lw; ctx.stroke();
    }
  }
  dot(p, colour, r) {
    const [x, y] = this.px(p), ctx = this.ctx;
    ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fillStyle = colour; ctx.fill();
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.stroke();
  }
  text(text, p, colour, below) {
    const [x, y] = this.px(p), ctx = this.ctx, size = Math.max(13, this.c.width / 70);
    ctx.font = `${size}px system-ui, sans-serif`;
    const w = ctx.measureText(text).width, ty = below ? y + size * 1.6 : y - 6;
    const tx = Math.min(Math.max(2, x + 6), this.c.width - w - 4);
    ctx.fillStyle = "rgba(0,0,0,.65)"; ctx.fillRect(tx - 3, ty - size, w + 6, size * 1.3);
    ctx.fillStyle = colour; ctx.fillText(text, tx, ty);
  }
  box(b, lw) {  // a detection of "test": its box, and its anchor point for each zone
    const [x1, y1] = this.px([b.box[0], b.box[1]]), [x2, y2] = this.px([b.box[2], b.box[3]]);
    const counted = Object.entries(b.zones).filter(([, z]) => z.counts).map(([n]) => n);
    const colour = counted.length ? "#3fb950" : "#c9d1d9", ctx = this.ctx;
    ctx.setLineDash(counted.length ? [] : [6, 4]);
    ctx.strokeStyle = colour; ctx.lineWidth = lw; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1); ctx.setLineDash([]);
    Object.values(b.zones).forEach((z) => z.anchor && this.dot(z.anchor, z.counts ? "#3fb950" : "#c9d1d9", lw * 1.6));
    this.text(`${b.label} ${b.score.toFixed(2)}${counted.length ? " \u2192 " + counted.join(", ") : ""}`,
              [b.box[0], b.box[1]], colour);
  }
}
window.ShapeCanvas = ShapeCanvas;
