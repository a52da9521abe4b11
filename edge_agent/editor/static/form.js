// The settings form of one zone or line, generated from the zone file's JSON Schema (the pydantic
// models), with each field's description as its help. A field left empty is left out of the
// file, so the model's default applies and the YAML stays short.
"use strict";
const GEOMETRY_KEYS = new Set(["polygon", "points", "exclude"]);
const FIRST_KEYS = ["name", "kind", "direction", "labels"];  // what a technician sets first, on top

function resolveRef(schema, prop) {
  if (prop.$ref) return schema.$defs[prop.$ref.split("/").pop()];
  if (prop.anyOf) {  // `X | None`: the X
    const real = prop.anyOf.find((p) => p.type !== "null");
    return real ? {...resolveRef(schema, real), description: prop.description, default: prop.default} : prop;
  }
  return prop;
}

function fieldFor(schema, key, raw, value, classes, set) {
  const prop = resolveRef(schema, raw), id = `f-${key}`;
  const help = raw.description || prop.description || "";
  const wrap = web.el("div", {class: "field"}, web.el("label", {htmlFor: id, title: help}, key));
  let input;
  const shownDefault = raw.default !== undefined && raw.default !== null ? JSON.stringify(raw.default) : "";
  if (prop.enum) {
    input = web.el("select", {id});
    input.append(web.el("option", {value: ""}, shownDefault ? `(default ${shownDefault})` : "(choose)"));
    prop.enum.forEach((v) => input.append(web.el("option", {value: v, selected: v === value}, v)));
    input.addEventListener("change", () => set(input.value || undefined));
  } else if (prop.type === "array" && key === "labels" && classes.length) {
    input = web.el("select", {id, multiple: true});
    const chosen = new Set(value || []);
    [...classes, ...(value || []).filter((v) => !classes.includes(v))].forEach((c) =>
      input.append(web.el("option", {value: c, selected: chosen.has(c)}, c)));
    input.addEventListener("change", () => {
      const picked = [...input.selectedOptions].map((o) => o.value);
      set(picked.length ? picked : undefined);
    });
  } else if (prop.type === "boolean") {
    input = web.el("input", {id, type: "checkbox", checked: value === undefined ? Boolean(raw.default) : value});
    input.addEventListener("change", () => set(input.checked));
  } else if (prop.type === "object") {
    const box = web.el("fieldset", {id}, web.el("legend", {}, key));
    const sub = value || {};
    for (const [k, p] of Object.entries(prop.properties || {})) {
      box.append(fieldFor(schema, `${key}.${k}`, p, sub[k], classes, (v) => {
        const next = {...(value || {})};
        if (v === undefined) delete next[k]; else next[k] = v;
        value = next;
        set(Object.keys(next).length ? next : undefined);
      }));
    }
    wrap.replaceChildren(box);
    if (help) box.append(web.el("small", {class: "help"}, help));
    return wrap;
  } else if (prop.type === "array") {  // schedule windows, aspect [low, high], labels without a model
    const numbers = (prop.prefixItems || [prop.items || {}]).every((p) => p.type === "number" || p.type === "integer");
    input = web.el("input", {id, type: "text", value: value ? value.join(", ") : "", placeholder: shownDefault});
    input.addEventListener("change", () => {
      const parts = input.value.split(",").map((s) => s.trim()).filter(Boolean);
      set(parts.length ? (numbers ? parts.map(Number) : parts) : undefined);
    });
  } else {
    const numeric = prop.type === "number" || prop.type === "integer";
    input = web.el("input", {id, type: numeric ? "number" : "text", step: "any",
                             value: value === undefined || value === null ? "" : value, placeholder: shownDefault});
    input.addEventListener("change", () => {
      if (input.value === "") return set(undefined);
      set(numeric ? Number(input.value) : input.value);
    });
  }
  input.title = help;
  wrap.append(input);
  if (help) wrap.append(web.el("small", {class: "help"}, help));
  return wrap;
}

// The form of `obj` (a zone or a line) for the schema's `defName` ("Zone" or "Line").
function settingsForm(schema, defName, obj, classes, changed) {
  const def = schema.$defs[defName], form = web.el("form", {class: "settings", id: "settings"});
  form.addEventListener("submit", (e) => e.preventDefault());
  const keys = Object.keys(def.properties);
  keys.sort((a, b) => (FIRST_KEYS.includes(b) - FIRST_KEYS.includes(a)) || FIRST_KEYS.indexOf(a) - FIRST_KEYS.indexOf(b));
  for (const key of keys) {
    const prop = def.properties[key];
    if (GEOMETRY_KEYS.has(key)) continue;
    form.append(fieldFor(schema, key, prop, obj[key], classes, (v) => {
      if (v === undefined) delete obj[key]; else obj[key] = v;
      changed(key);
    }));
  }
  return form;
}
window.settingsForm = settingsForm;
