// SPDX-License-Identifier: GPL-2.0-or-later
// One domain's page: its state and what its guest agent told the monitor.
"use strict";

const name = new URLSearchParams(location.search).get("name") || "";
document.getElementById("name").textContent = name;
document.title = "Tether: " + name;
document.getElementById("console-link").href = "/console.html?name=" + encodeURIComponent(name);

function fillList(id, pairs) {
  const dl = document.getElementById(id);
  dl.replaceChildren();
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "")
      continue;
    dl.append(tether.el("dt", k), tether.el("dd", v));
  }
}

function fillTable(id, rows) {
  const tbody = document.querySelector(`#${id} tbody`);
  tbody.replaceChildren();
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const c of cells)
      tr.append(tether.el("td", c));
    tbody.append(tr);
  }
}

function show(d) {
  const agent = d.agent || {};
  fillList("overview", [
    ["State", `${d.state} (${d.reason})`], ["vCPUs", d.vcpus],
    ["Memory", tether.memory(d.used_memory_kib)], ["UUID", d.uuid],
    ["Persistent", d.persistent ? "yes" : "no"], ["Autostart", d.autostart ? "yes" : "no"],
    ["IP addresses", (d.ips || []).join(", ")],
  ]);
  const os = agent.osinfo ? agent.osinfo.data : null;
  document.getElementById("agent-note").textContent =
    d.state !== "running" ? "The domain is not running: the guest agent's facts are shown " +
                            "while it runs."
    : os ? `From the guest agent, ${Math.round(agent.osinfo.age)} s ago.`
         : "No answer from a guest agent yet.";
  fillList("os", os ? [["Name", os["pretty-name"] || os.name], ["ID", os.id],
                       ["Version", os.version], ["Kernel", os["kernel-release"]],
                       ["Kernel version", os["kernel-version"]], ["Machine", os.machine]] : []);
  const ifs = agent.interfaces ? agent.interfaces.data : [];
  fillTable("interfaces", ifs.map((i) => [
    i.name, i["hardware-address"] || "",
    (i["ip-addresses"] || []).map((a) => `${a["ip-address"]}/${a.prefix}`).join(", ")]));
  const users = agent.users ? agent.users.data : [];
  fillTable("users", users.map((u) => [
    u.user, u.domain || "", new Date(u["login-time"] * 1000).toLocaleString()]));
  // Snapshots, newest first; the current one (the next one's parent) is marked.
  const snaps = (d.snapshots || []).slice().sort((x, y) => y.creation_time - x.creation_time ||
                                                           (x.name < y.name ? -1 : 1));
  document.getElementById("snapshots-note").textContent =
    d.snapshots_error ? `Cannot read the snapshots: ${d.snapshots_error}`
    : snaps.length ? "" : "No snapshots.";
  fillTable("snapshots", snaps.map((x) => [
    x.current ? `${x.name} (current)` : x.name,
    new Date(x.creation_time * 1000).toLocaleString(), x.state, x.parent || "",
    x.description || ""]));
  const fss = agent.filesystems ? agent.filesystems.data : [];
  fillTable("filesystems", fss.map((f) => [
    f.mountpoint, f.type, (f.disk || []).map((x) => x.dev || "").join(", "),
    f["used-bytes"] !== undefined ? tether.bytes(f["used-bytes"]) : "",
    f["total-bytes"] !== undefined ? tether.bytes(f["total-bytes"]) : ""]));
}

async function refresh() {
  try {
    show(await tether.get("/api/domains/" + encodeURIComponent(name)));
    tether.live(true);
    tether.message("");
  } catch (e) {
    tether.live(false);
    tether.message(e.message, true);
  }
}

// The state follows the event stream; the agent's facts change slowly: read them again then.
const es = new EventSource("/api/events");
es.addEventListener("domains", (ev) => {
  const d = JSON.parse(ev.data).find((x) => x.name === name);
  if (d)
    refresh();
  else
    tether.message(`There is no domain '${name}'.`, true);
});
es.addEventListener("error", () => tether.live(false));
