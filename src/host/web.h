/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The web console (issue 12): tetherd serves a small site on evhttp, off unless
 * --web-listen / [web] listen is given.
 *
 *   GET  /login?token=T            a one-time token from `tether web-url` (web_login_url) for a
 *                                  session cookie (HttpOnly, SameSite=Strict, Max-Age, Path=/),
 *                                  then 303 to /; a wrong, expired or used token: 403 page
 *   GET  /, /domain.html, *.js/css the pages (files of the web root, loaded at start)
 *   GET  /api/session              {"csrf": T, "uid": N}: the page's CSRF token
 *   GET  /api/domains              the domain list (state, reason, vCPUs, memory, the agent's
 *                                  IP addresses and OS from the monitor cache)
 *   GET  /api/domains/NAME         one domain with the agent's facts (OS, interfaces, users,
 *                                  filesystems)
 *   POST /api/domains/NAME/ACTION  start, shutdown, reboot, suspend, resume, destroy,
 *                                  managedsave: the control API's vm_* calls; needs the
 *                                  X-CSRF-Token header
 *   POST /api/logout               ends the session (X-CSRF-Token too)
 *   GET  /api/events               Server-Sent Events: "domains" with the whole list, at once and
 *                                  within 250 ms of any change
 *
 * Everything but /login needs a session. A session acts as the user who ran `tether web-url`
 * (the policy checks of a non-root user apply to its starts). Every reply carries a strict
 * Content-Security-Policy (same-origin scripts and styles only), nosniff and X-Frame-Options
 * DENY. A non-loopback address needs TLS (--web-cert and --web-key, through libevent's OpenSSL
 * bufferevents); without both, tetherd refuses to start.
 */
#ifndef TT_HOST_WEB_H
#define TT_HOST_WEB_H

#include <sys/types.h>
#include "common/tt_error.h"

struct tetherd;

/* What the command line and [web] set. */
struct web_config {
        const char *listen; /* [ADDR:]PORT or [ADDR6]:PORT; 127.0.0.1 without an address */
        const char *cert;   /* PEM certificate chain for TLS, or NULL */
        const char *key;    /* PEM private key for TLS, or NULL */
        const char *root;   /* folder of the pages, or NULL: installed, else the source tree */
};

/* Start serving (pages are read now: a missing one is an error that names it). */
int web_listen(struct tetherd *d, const struct web_config *c, struct tt_error *err);
/*
 * A new one-time login URL (malloc'd) whose session acts as uid; NULL with err when the
 * console is off.
 */
char *web_login_url(struct tetherd *d, uid_t uid, struct tt_error *err);
/* Stop serving; running actions answer nobody. NULL-safe state. */
void web_close(struct tetherd *d);

#endif
