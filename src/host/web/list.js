// SPDX-License-Identifier: GPL-2.0-or-later
// The domain list: rows kept by name and updated in place from the event stream.
"use strict";

// What each state allows, in the control API's words (shut off with a managed-save image:
// start restores it).
const ACTIONS = {
  "running": ["shutdown", "reboot", "suspend", "managedsave", "destroy"],
  "idle": ["shutdown", "reboot", "suspend", "managedsave", "destroy"],
  "paused": ["resume", "managedsave", "destroy"],
  "in shutdown": ["destroy"],
  "shut off": ["start"],
  "crashed": ["destroy"],
  "pmsuspended": ["destroy"],
  "no state": [],
};
const ALL_ACTIONS = ["start", "shutdown", "reboot", "suspend", "resume", "managedsave", "destroy"];
const LABELS = {start: "Start", shutdown: "Shut down", reboot: "Reboot", suspend: "Suspend",
                resume: "Resume", managedsave: "Save", destroy: "Destroy"};

const pending = new Set();   // domains whose action's reply has not come yet

function confirmDestroy(name) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent =
    `Destroy domain '${name}'? It stops at once, as if its power were cut: ` +
    "unsaved data in the guest is lost.";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

async function act(name, action) {
  if (action === "destroy" && !(await confirmDestroy(name)))
    return;
  pending.add(name);
  markBusy(name);
  tether.message(`${LABELS[action]}: ${name}…`);
  try {
    await tether.post(`/api/domains/${encodeURIComponent(name)}/${action}`);
    tether.message(`${LABELS[action]}: ${name}: done`);
  } catch (e) {
    tether.message(`${LABELS[action]} ${name}: ${e.message}`, true);
  } finally {
    pending.delete(name);
    markBusy(name);
  }
}

function rowOf(name) {
  return document.querySelector(`#domains tbody tr[data-name="${CSS.escape(name)}"]`);
}

function markBusy(name) {
  const tr = rowOf(name);
  if (tr)
    tr.classList.toggle("busy", pending.has(name));
  if (tr && tr.lastState)
    updateButtons(tr, tr.lastState);
}

function updateButtons(tr, d) {
  const allowed = ACTIONS[d.state] || [];
  for (const b of tr.querySelectorAll("button[data-action]"))
    b.disabled = pending.has(d.name) || d.job !== null || !allowed.includes(b.dataset.action);
}

function newRow(name) {
  const tr = document.createElement("tr");
  tr.dataset.name = name;
  const link = tether.el("a", name);
  link.href = "/domain.html?name=" + encodeURIComponent(name);
  const nameCell = tether.el("td", null, "name");
  nameCell.append(link);
  const stateCell = tether.el("td", null, "state");
  stateCell.append(tether.el("span", "", "st"), " ", tether.el("span", "", "reason"));
  const actions = tether.el("td", null, "actions");
  for (const a of ALL_ACTIONS) {
    const b = tether.el("button", LABELS[a], a === "destroy" ? "danger" : "");
    b.type = "button";
    b.dataset.action = a;
    b.addEventListener("click", () => act(name, a));
    actions.append(b);
  }
  tr.append(nameCell, stateCell, tether.el("td", "", "vcpus num"),
            tether.el("td", "", "memory num"), tether.el("td", "", "ips"),
            tether.el("td", "", "os"), sparkCell(), actions);
  return tr;
}

// ---- CPU sparklines: the last points of each domain (GET /api/history), drawn by hand ----

let sparks = {};

function sparkCell() {
  const td = tether.el("td", null, "cpu");
  const c = document.createElement("canvas");
  c.className = "spark";
  c.width = 120;
  c.height = 24;
  td.append(c);
  return td;
}

function drawSpark(tr) {
  const canvas = tr.querySelector("canvas.spark");
  const values = sparks[tr.dataset.name] || [];
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.points = values.length;
  const known = values.filter((v) => v !== null);
  canvas.title = known.length ? `CPU ${known[known.length - 1].toFixed(1)} %` : "no CPU data yet";
  if (known.length < 2)
    return;
  const max = Math.max(100, ...known);
  const step = canvas.width / Math.max(values.length - 1, 1);
  ctx.strokeStyle = "#17794a";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) { pen = false; return; }
    const x = i * step, y = canvas.height - 1 - (v / max) * (canvas.height - 2);
    if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    pen = true;
  });
  ctx.stroke();
}

async function refreshSparks() {
  try {
    sparks = await tether.get("/api/history");
  } catch (e) {
    return;
  }
  for (const tr of document.querySelectorAll("#domains tbody tr"))
    drawSpark(tr);
}

function render(list) {
  const tbody = document.querySelector("#domains tbody");
  const seen = new Set();
  list.sort((a, b) => a.name.localeCompare(b.name));
  for (const d of list) {
    seen.add(d.name);
    let tr = rowOf(d.name);
    if (!tr)
      tr = newRow(d.name);
    tbody.append(tr);   // keeps the sorted order
    tr.lastState = d;
    tr.className = "state-" + d.state.replace(/ /g, "-") + (pending.has(d.name) ? " busy" : "");
    tr.querySelector(".st").textContent = d.state;
    tr.querySelector(".reason").textContent = d.job ? `(${d.job}…)` : `(${d.reason})`;
    tr.querySelector(".vcpus").textContent = d.vcpus;
    tr.querySelector(".memory").textContent = tether.memory(d.used_memory_kib);
    tr.querySelector(".ips").textContent = (d.ips || []).join(", ");
    tr.querySelector(".os").textContent = d.os || "";
    updateButtons(tr, d);
    drawSpark(tr);
  }
  for (const tr of Array.from(tbody.children))
    if (!seen.has(tr.dataset.name))
      tr.remove();
  document.getElementById("empty").hidden = list.length > 0;
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => tether.live(true));
  es.addEventListener("domains", (ev) => render(JSON.parse(ev.data)));
  es.addEventListener("error", () => {
    tether.live(false);
    // A refused stream (the session ended) does not come back: check why.
    if (es.readyState === EventSource.CLOSED)
      tether.session().catch(() => {});
  });
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await tether.post("/api/logout"); } catch (e) { /* gone already */ }
  location.reload();
});
tether.session().then(connect).catch((e) => tether.message(e.message, true));
refreshSparks();
setInterval(refreshSparks, 10000);
