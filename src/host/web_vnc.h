/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The web console's VNC proxy: GET /api/domains/NAME/vnc upgrades to a WebSocket (websock.h)
 * whose binary messages carry the RFB byte stream to and from the domain's VNC server, which
 * tetherd reaches on loopback. noVNC in the page speaks RFB (and a VNC password, if the domain
 * has one, is asked for by the page: VNC's challenge never shows it to tetherd). Both ways are
 * bounded: tetherd stops reading one side while the other has WEB_VNC_MAX_BACKLOG unsent.
 */
#ifndef TT_HOST_WEB_VNC_H
#define TT_HOST_WEB_VNC_H

#include <stdbool.h>

struct evhttp_request;
struct event_base;
struct web_vnc;

/* Unsent bytes one way at most (then the sending side is not read until the other drains). */
#define WEB_VNC_MAX_BACKLOG (256u * 1024)
/* Proxies at once. */
#define WEB_VNC_MAX 16

struct web_vnc *web_vnc_new(struct event_base *base);
/* Ends every proxy (their connections are closed). */
void web_vnc_free(struct web_vnc *v);

/*
 * Take over req (a GET that asks for a WebSocket) and proxy it to addr:port (a numeric
 * address) for the session sid. Returns 0 when the connection is the proxy's now; else -1
 * with *code, *reason and *msg for the caller's refusal (req is still the caller's).
 * origin_scheme is "http" or "https": the Origin header must be that scheme and the Host.
 */
int web_vnc_open(struct web_vnc *v, struct evhttp_request *req, const char *origin_scheme,
                 const char *domain, const char *addr, int port, const char *sid, int *code,
                 const char **reason, const char **msg);

/* End the proxies whose session alive() says has ended. */
void web_vnc_check(struct web_vnc *v, bool (*alive)(void *opaque, const char *sid), void *opaque);

/* Proxies open now (tests, logs). */
unsigned web_vnc_count(const struct web_vnc *v);

#endif
