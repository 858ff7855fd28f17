// SPDX-License-Identifier: GPL-2.0-or-later
// A domain's screen: noVNC (Debian's novnc, served by tetherd under /novnc/) over tetherd's
// WebSocket proxy to the domain's VNC server.
import RFB from "/novnc/core/rfb.js";

const name = new URLSearchParams(location.search).get("name") || "";
const link = document.getElementById("domain-link");
link.textContent = name;
link.href = "/domain.html?name=" + encodeURIComponent(name);
document.title = "Tether: " + name + " console";

const screen = document.getElementById("screen");
const scale = document.getElementById("scale");
const form = document.getElementById("password-form");
let rfb = null;

function status(text, isError) {
  const m = document.getElementById("message");
  m.textContent = text || "";
  m.className = "message" + (isError ? " error" : "");
}

function live(up, text) {
  const l = document.getElementById("live");
  l.textContent = text;
  l.className = "live " + (up ? "up" : "down");
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${proto}//${location.host}/api/domains/${encodeURIComponent(name)}/vnc`;
  rfb = new RFB(screen, url, {wsProtocols: ["binary"]});
  rfb.scaleViewport = scale.checked;
  rfb.focusOnClick = true;
  window.tetherRfb = rfb;         // the tests look at its state
  rfb.addEventListener("connect", () => {
    live(true, "connected");
    status("");
    document.body.dataset.vnc = "connected";
    rfb.focus();
  });
  rfb.addEventListener("disconnect", (e) => {
    document.body.dataset.vnc = "disconnected";
    live(false, "disconnected");
    status(e.detail.clean ? "The console closed (the domain stopped or another viewer took it)."
                          : "The console's connection failed: is the domain running with VNC " +
                            "graphics?", !e.detail.clean);
  });
  // A VNC password: asked here, answered by noVNC's VNC challenge (tetherd never sees it).
  rfb.addEventListener("credentialsrequired", () => {
    form.hidden = false;
    document.getElementById("password").focus();
  });
  rfb.addEventListener("securityfailure", (e) => {
    status("VNC authentication failed: " + (e.detail.reason || "wrong password"), true);
  });
  rfb.addEventListener("desktopname", (e) => { document.title = "Tether: " + e.detail.name; });
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  form.hidden = true;
  rfb.sendCredentials({password: document.getElementById("password").value});
  document.getElementById("password").value = "";
});
scale.addEventListener("change", () => { if (rfb) rfb.scaleViewport = scale.checked; });
document.getElementById("cad").addEventListener("click", () => {
  if (rfb) {
    rfb.sendCtrlAltDel();
    rfb.focus();
  }
});
document.getElementById("fullscreen").addEventListener("click", () => {
  const el = document.documentElement;
  if (document.fullscreenElement)
    document.exitFullscreen();
  else if (el.requestFullscreen)
    el.requestFullscreen().catch((e) => status("Full screen refused: " + e.message, true));
});
connect();
