// One alarm: workflow buttons (with the version seen, for optimistic locking), audit trail, media.
"use strict";
(function () {
  const view = document.getElementById("alarm");
  const id = view.dataset.id;
  const message = document.getElementById("message");
  let version = Number(view.dataset.version);

  function show(text, bad) { message.textContent = text; message.className = "message" + (bad ? " error" : ""); }

  function detail(d) {
    return Object.entries(d || {}).filter(([k]) => k !== "topic")
      .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
  }

  async function load() {
    const resp = await fetch(`/api/alarms/${id}`, {credentials: "same-origin"});
    if (!resp.ok) return;
    const data = await resp.json();
    const a = data.alarm;
    version = a.version;
    const state = document.getElementById("state");
    state.textContent = a.state;
    state.className = `state state-${a.state}`;
    document.getElementById("assignee").textContent = a.assignee || "-";
    document.getElementById("disposition").textContent = a.disposition ? `${a.disposition}${a.note ? ": " + a.note : ""}` : "-";
    document.querySelector("#audit tbody").replaceChildren(...data.audit.map((e) => web.el("tr", {},
      web.el("td", {}, e.when), web.el("td", {}, e.user),
      web.el("td", {}, e.action + (e.to_state ? ` \u2192 ${e.to_state}` : "")), web.el("td", {}, detail(e.detail)))));
    for (const kind of ["snapshot", "clip"]) {  // media can arrive after the alarm: load it once it is there
      const el = document.getElementById(kind);
      if (data.media[kind] && (el.dataset.loaded !== "yes") && (kind === "clip" ? el.readyState === 0 : !el.naturalWidth)) {
        el.src = `/media/${id}/${kind}?t=${Date.now()}`;
        el.dataset.loaded = "yes";
      }
    }
    document.getElementById("clip-caption").textContent = !data.media.clip ? "Clip: not received yet"
      : data.clip_codec && data.clip_codec !== "h264"
        ? `Clip in ${data.clip_codec}: this browser may not play it; export the evidence to view it in a player`
        : "Clip";
    if (data.fresh) {
      const img = document.getElementById("fresh");
      const src = `/fresh/${id}/${data.fresh.snapshot_id}.jpg`;
      if (!img.src.endsWith(src)) img.src = src;
      document.getElementById("fresh-figure").hidden = false;
    }
    for (const b of document.querySelectorAll(".actions button")) {
      const action = b.dataset.action || b.closest("form").dataset.action;
      b.disabled = a.state === "closed" && action !== "snapshot" && action !== "shelve"
        || (action === "acknowledge" && a.state !== "new") || (action === "shelve" && !a.zone);
    }
  }

  async function act(action, fields) {
    const r = await web.post(`/api/alarms/${id}/action`, Object.assign({action, version}, fields));
    if (r.ok) show(`${action}: done`);
    else show(r.status === 409 ? `${r.body.detail} (reloaded)` : (r.body.detail || `error ${r.status}`), true);
    await load();
  }

  for (const b of document.querySelectorAll(".actions > button")) b.addEventListener("click", () => act(b.dataset.action, {}));
  for (const f of document.querySelectorAll(".actions form")) {
    f.addEventListener("submit", (e) => { e.preventDefault(); act(f.dataset.action, Object.fromEntries(new FormData(f))); });
  }
  document.addEventListener("keydown", (e) => {
    if (!e.target.closest("input, select, textarea") && e.key === "a" && document.getElementById("ack")) act("acknowledge", {});
  });
  const source = new EventSource("/api/stream");
  source.onmessage = () => load();
  load();
})();
