// SPDX-License-Identifier: GPL-2.0-or-later
// Shared by the console's pages: the session's CSRF token, JSON requests, small DOM helpers.
"use strict";

const tether = {
  csrf: null,

  // The CSRF token of this session (GET /api/session); every POST carries it.
  async session() {
    if (this.csrf === null) {
      const r = await fetch("/api/session", {credentials: "same-origin"});
      if (r.status === 403) {
        location.reload();      // the server's refusal page says how to log in
        throw new Error("not logged in");
      }
      this.csrf = (await r.json()).csrf;
    }
    return this.csrf;
  },

  // POST to the API; resolves with the reply's JSON, rejects with its "error".
  async post(path) {
    const token = await this.session();
    const r = await fetch(path, {method: "POST", credentials: "same-origin",
                                 headers: {"X-CSRF-Token": token}});
    let body = {};
    try { body = await r.json(); } catch (e) { /* an empty or HTML reply */ }
    if (!r.ok)
      throw new Error(body.error || (r.status + " " + r.statusText));
    return body;
  },

  async get(path) {
    const r = await fetch(path, {credentials: "same-origin"});
    let body = {};
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok)
      throw new Error(body.error || (r.status + " " + r.statusText));
    return body;
  },

  // An element with text (never HTML: names and guest data are not trusted).
  el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null)
      e.textContent = String(text);
    if (cls)
      e.className = cls;
    return e;
  },

  memory(kib) {
    if (kib >= 1048576 && kib % 1048576 === 0)
      return (kib / 1048576) + " GiB";
    if (kib >= 1024)
      return Math.round(kib / 1024) + " MiB";
    return kib + " KiB";
  },

  bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  },

  message(text, isError) {
    const m = document.getElementById("message");
    m.textContent = text || "";
    m.className = "message" + (isError ? " error" : "");
  },

  live(up) {
    const l = document.getElementById("live");
    l.textContent = up ? "live" : "reconnecting…";
    l.className = "live " + (up ? "up" : "down");
  },
};
