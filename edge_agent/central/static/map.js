// The map: cameras (circles) and patrol points (squares) from the boxes' inventories, coloured by
// state, clustered when zoomed out (a cluster takes the colour of its worst member). A click on a
// camera, or on a point (its camera), opens the panel: latest alarms and the newest snapshot with
// the camera's zones drawn over it. Background: offline tiles, an operator's picture placed by two
// reference points, or nothing but a lat/lon grid.
"use strict";
(function () {
  const root = document.getElementById("map");
  const view = JSON.parse(root.dataset.view);
  const WORST = ["offline", "overdue", "tampered", "alarm", "camera_down", "connecting", "unknown", "ok"];
  const map = L.map(root, {attributionControl: false, maxZoom: view.max_zoom, zoomSnap: 0.5});
  const clusters = L.markerClusterGroup({
    maxClusterRadius: 45, showCoverageOnHover: false,
    iconCreateFunction(cluster) {
      const states = cluster.getAllChildMarkers().map((m) => m.options.state);
      const worst = WORST.find((s) => states.includes(s)) || "ok";
      return L.divIcon({className: `cl s-${worst}`, html: `<span>${cluster.getChildCount()}</span>`, iconSize: [34, 34]});
    },
  }).addTo(map);
  const markers = new Map();  // key -> marker
  let fitted = false;

  function icon(kind, state) {
    return L.divIcon({className: `mk ${kind} s-${state}`, iconSize: kind === "cam" ? [16, 16] : [12, 12]});
  }

  function place(key, kind, item, onClick) {
    let m = markers.get(key);
    if (!m) {
      m = L.marker([item.lat, item.lon], {icon: icon(kind, item.state), state: item.state, title: item.name});
      m.on("add", () => { const e = m.getElement(); e.dataset.key = key; e.dataset.state = m.options.state; });
      m.on("click", onClick);
      markers.set(key, m);
      clusters.addLayer(m);
    } else if (m.options.state !== item.state) {
      m.options.state = item.state;
      m.setIcon(icon(kind, item.state));
      const e = m.getElement();
      if (e) { e.dataset.key = key; e.dataset.state = item.state; }
      clusters.refreshClusters(m);
    }
    return key;
  }

  function background(bounds) {
    if (view.mode === "tiles") {
      L.tileLayer("/map/tiles/{z}/{x}/{y}.png", {maxZoom: view.max_zoom}).addTo(map);
    } else if (view.mode === "image") {
      const img = new Image();
      img.onload = () => {
        // a north-up picture: two pixels of known lat/lon give the scale along each axis
        const [a, b] = view.ref;
        const lonAt = (x) => a.lon + (x - a.x) * (b.lon - a.lon) / (b.x - a.x);
        const latAt = (y) => a.lat + (y - a.y) * (b.lat - a.lat) / (b.y - a.y);
        L.imageOverlay("/map/image", [[latAt(img.naturalHeight), lonAt(0)], [latAt(0), lonAt(img.naturalWidth)]]).addTo(map).bringToBack();
      };
      img.src = "/map/image";
    } else if (bounds.isValid()) {
      grid(bounds.pad(0.5));
    }
  }

  function grid(b) {
    // a labelled lat/lon graticule at a round step: the plain plot's only reference
    const span = Math.max(b.getNorth() - b.getSouth(), b.getEast() - b.getWest());
    const step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    const style = {color: "#34495e", weight: 1, interactive: false};
    const label = (at, text) => L.marker(at, {interactive: false, keyboard: false,
      icon: L.divIcon({className: "grid-label", html: text, iconSize: null})}).addTo(map);
    const south = Math.ceil(b.getSouth() / step) * step;  // the lowest line carries the longitudes
    for (let lat = south; lat <= b.getNorth(); lat += step) {
      L.polyline([[lat, b.getWest()], [lat, b.getEast()]], style).addTo(map);
      label([lat, b.getWest()], `${lat.toFixed(digits)}\u00b0`);
    }
    for (let lon = Math.ceil(b.getWest() / step) * step; lon <= b.getEast(); lon += step) {
      L.polyline([[b.getSouth(), lon], [b.getNorth(), lon]], style).addTo(map);
      label([south, lon], `${lon.toFixed(digits)}\u00b0`);
    }
  }

  async function refresh() {
    const resp = await fetch("/api/map", {credentials: "same-origin"});
    if (resp.status === 401) { location.href = "/login?next=/map"; return; }
    const data = await resp.json();
    const seen = new Set();
    for (const c of data.cameras.filter((c) => c.lat != null && c.lon != null)) {
      seen.add(place(`cam:${c.site}/${c.device}/${c.id}`, "cam", c, () => openPanel(c.site, c.device, c.id)));
    }
    for (const p of data.points.filter((p) => p.lat != null && p.lon != null)) {
      seen.add(place(`pt:${p.site}/${p.device}/${p.id}`, "pt", p, () => openPanel(p.site, p.device, p.camera)));
    }
    for (const [key, m] of markers) {
      if (!seen.has(key)) { clusters.removeLayer(m); markers.delete(key); }
    }
    root.dataset.markers = String(markers.size);
    document.getElementById("map-count").textContent = `${data.cameras.length} cameras, ${data.points.length} patrol points`;
    if (!fitted) {
      const bounds = clusters.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds.pad(0.05)); else map.setView([0, 0], 2);
      background(bounds);
      fitted = true;
    }
  }

  async function openPanel(site, device, camera) {
    const resp = await fetch(`/api/camera/${encodeURIComponent(site)}/${encodeURIComponent(device)}/${encodeURIComponent(camera)}`,
                             {credentials: "same-origin"});
    const panel = document.getElementById("panel");
    if (!resp.ok) { panel.hidden = true; return; }
    const data = await resp.json();
    const key = `cam:${site}/${device}/${camera}`;
    const state = markers.has(key) ? markers.get(key).options.state : "";
    document.getElementById("panel-title").textContent = `${data.camera.name} (${site} / ${device} / ${camera})`;
    const st = document.getElementById("panel-state");
    st.textContent = state; st.className = `state s-${state}`;
    const img = document.getElementById("panel-snapshot");
    img.hidden = !data.snapshot_alarm;
    if (data.snapshot_alarm) img.src = `/media/${data.snapshot_alarm}/snapshot`;
    drawZones(data.camera.zones || []);
    document.getElementById("panel-caption").textContent = data.snapshot_alarm
      ? `newest alarm snapshot, ${(data.camera.zones || []).length} zone(s) drawn over it` : "no alarm snapshot yet";
    document.querySelector("#panel-alarms tbody").replaceChildren(...data.alarms.map((a) => {
      const tr = web.el("tr", {"data-id": String(a.id)}, web.el("td", {}, a.started), web.el("td", {}, a.type),
                        web.el("td", {}, a.zone || "-"), web.el("td", {}, a.state));
      tr.addEventListener("click", () => { location.href = `/alarms/${a.id}`; });
      return tr;
    }));
    panel.dataset.camera = key;
    panel.hidden = false;
  }

  function drawZones(zones) {
    const svg = document.getElementById("panel-zones");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren(...zones.map((z) => {
      const shape = document.createElementNS(ns, z.kind === "line" ? "polyline" : "polygon");
      shape.setAttribute("points", z.polygon.map((p) => p.join(",")).join(" "));
      shape.setAttribute("class", `zone k-${z.kind}`);
      shape.setAttribute("vector-effect", "non-scaling-stroke");
      return shape;
    }));
  }

  document.getElementById("panel-close").addEventListener("click", () => { document.getElementById("panel").hidden = true; });
  window.centreMap = {map, clusters, markers};  // for the browser tests and the curious
  new EventSource("/api/stream").onmessage = () => refresh();
  setInterval(refresh, 5000);  // a box falling silent is time passing, not a message
  refresh();
})();
