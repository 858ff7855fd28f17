/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The web console's VNC proxy: the browser's WebSocket to the domain's VNC server (web_vnc.h). */
#include "host/web_vnc.h"
#include "common/log.h"
#include "host/websock.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A client frame longer than this ends the proxy (noVNC sends key and pointer events). */
#define VNC_MAX_FRAME (1u << 20)
/* Bytes looked at per step of the reader, and the largest frame sent to the browser. */
#define VNC_CHUNK (64u * 1024)
/* Connecting to the VNC server may take this long. */
#define VNC_CONNECT_S 10

struct vnc_proxy {
        struct vnc_proxy *next;         /* list in struct web_vnc */
        struct web_vnc *v;              /* owner */
        struct evhttp_connection *conn; /* the browser's connection (evhttp's, taken over) */
        struct bufferevent *browser;    /* its bufferevent (freed with conn) */
        struct bufferevent *vnc;        /* to the VNC server */
        struct ws_reader rd;            /* the browser's frames */
        char sid[65];                   /* the session that opened it */
        char domain[256];               /* for the log */
        bool closing;                   /* a close frame was queued: free once it is sent */
};

struct web_vnc {
        struct event_base *base;
        struct vnc_proxy *list;
        unsigned n;
};

struct web_vnc *web_vnc_new(struct event_base *base)
{
        struct web_vnc *v = calloc(1, sizeof(*v));

        if (v)
                v->base = base;
        return v;
}

unsigned web_vnc_count(const struct web_vnc *v)
{
        return v ? v->n : 0;
}

static void proxy_free(struct vnc_proxy *p)
{
        struct web_vnc *v = p->v;

        for (struct vnc_proxy **pp = &v->list; *pp; pp = &(*pp)->next) {
                if (*pp == p) {
                        *pp = p->next;
                        v->n--;
                        break;
                }
        }
        tt_debug("web: the console of %s closed (%u open)", p->domain, v->n);
        if (p->vnc)
                bufferevent_free(p->vnc);
        bufferevent_setcb(p->browser, NULL, NULL, NULL, NULL);
        /* Frees the browser's bufferevent and the upgrade request. */
        evhttp_connection_free(p->conn);
        free(p);
}

/* Queue a close frame with code, stop reading both sides; freed once it is written. */
static void proxy_close(struct vnc_proxy *p, unsigned code)
{
        uint8_t frame[WS_MAX_HEADER + 2];
        struct timeval tv = {VNC_CONNECT_S, 0};
        size_t n;

        if (p->closing)
                return;
        p->closing = true;
        /* Freed when the frame is out, or when the browser does not take it in time. */
        bufferevent_setwatermark(p->browser, EV_WRITE, 0, 0);
        bufferevent_set_timeouts(p->browser, NULL, &tv);
        n = ws_frame_header(frame, WS_OP_CLOSE, 2);
        frame[n++] = (uint8_t)(code >> 8);
        frame[n++] = (uint8_t)code;
        bufferevent_write(p->browser, frame, n);
        bufferevent_disable(p->browser, EV_READ);
        if (p->vnc) {
                bufferevent_free(p->vnc);
                p->vnc = NULL;
        }
}

static void send_frame(struct vnc_proxy *p, enum ws_opcode op, const uint8_t *data, size_t len)
{
        uint8_t h[WS_MAX_HEADER];
        size_t hl = ws_frame_header(h, op, len);

        bufferevent_write(p->browser, h, hl);
        bufferevent_write(p->browser, data, len);
}

/* VNC's bytes to the browser as binary frames while the browser's backlog allows. */
static void vnc_read(struct bufferevent *bev, void *opaque)
{
        struct vnc_proxy *p = opaque;
        struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(p->browser);
        size_t n;

        while ((n = evbuffer_get_length(in)) > 0 &&
               evbuffer_get_length(out) < WEB_VNC_MAX_BACKLOG) {
                uint8_t h[WS_MAX_HEADER];
                size_t hl;

                if (n > VNC_CHUNK)
                        n = VNC_CHUNK;
                hl = ws_frame_header(h, WS_OP_BINARY, n);
                evbuffer_add(out, h, hl);
                evbuffer_remove_buffer(in, out, n);
        }
        if (evbuffer_get_length(out) >= WEB_VNC_MAX_BACKLOG)
                bufferevent_disable(bev, EV_READ);
}

/* The browser's frames: payload to VNC, pings answered, close and errors end the proxy. */
static void browser_read(struct bufferevent *bev, void *opaque)
{
        struct vnc_proxy *p = opaque;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t len;

        while (!p->closing && (len = evbuffer_get_length(in)) > 0) {
                size_t take = len < VNC_CHUNK ? len : VNC_CHUNK, used = 0, dlen = 0;
                uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)take), *data = NULL;
                enum ws_event ev;

                if (buf == NULL) {
                        proxy_close(p, WS_CLOSE_ERROR);
                        break;
                }
                ev = ws_read(&p->rd, buf, take, &used, &data, &dlen);
                switch (ev) {
                case WS_EV_DATA:
                        if (p->vnc)
                                bufferevent_write(p->vnc, data, dlen);
                        break;
                case WS_EV_PING:
                        send_frame(p, WS_OP_PONG, p->rd.control, p->rd.control_len);
                        break;
                case WS_EV_CLOSE:
                        proxy_close(p, WS_CLOSE_NORMAL);
                        break;
                case WS_EV_ERROR:
                        tt_warn("web: closing the console of %s: %s", p->domain, p->rd.error);
                        proxy_close(p, p->rd.error_code);
                        break;
                case WS_EV_PONG:
                case WS_EV_NONE:
                        break;
                }
                evbuffer_drain(in, used);
                if (ev == WS_EV_NONE)
                        break;
        }
        if (!p->closing && p->vnc &&
            evbuffer_get_length(bufferevent_get_output(p->vnc)) >= WEB_VNC_MAX_BACKLOG)
                bufferevent_disable(bev, EV_READ);
}

/* The browser's backlog drained below half: read VNC again (or finish a close). */
static void browser_write(struct bufferevent *bev, void *opaque)
{
        struct vnc_proxy *p = opaque;

        if (p->closing) {
                if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
                        proxy_free(p);
                return;
        }
        if (p->vnc && !(bufferevent_get_enabled(p->vnc) & EV_READ)) {
                bufferevent_enable(p->vnc, EV_READ);
                vnc_read(p->vnc, p);
        }
}

/* VNC's backlog drained below half: read the browser again. */
static void vnc_write(struct bufferevent *bev, void *opaque)
{
        struct vnc_proxy *p = opaque;

        if (!p->closing && !(bufferevent_get_enabled(p->browser) & EV_READ)) {
                bufferevent_enable(p->browser, EV_READ);
                browser_read(p->browser, p);
        }
}

static void browser_event(struct bufferevent *bev, short what, void *opaque)
{
        struct vnc_proxy *p = opaque;

        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
                proxy_free(p);
}

static void vnc_event(struct bufferevent *bev, short what, void *opaque)
{
        struct vnc_proxy *p = opaque;

        if (what & BEV_EVENT_CONNECTED) {
                bufferevent_set_timeouts(bev, NULL, NULL);
                tt_info("web: console of %s connected to its VNC server", p->domain);
                return;
        }
        if (what & BEV_EVENT_ERROR)
                tt_warn("web: the VNC server of %s: %s", p->domain,
                        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        else if (what & BEV_EVENT_TIMEOUT)
                tt_warn("web: the VNC server of %s did not answer in %d s", p->domain,
                        VNC_CONNECT_S);
        /* The server went away: what it sent last goes out first, then the close. */
        vnc_read(bev, p);
        proxy_close(p, (what & BEV_EVENT_EOF) ? WS_CLOSE_GOING_AWAY : WS_CLOSE_ERROR);
}

static int refuse(int *code, const char **reason, const char **msg, int c, const char *r,
                  const char *m)
{
        *code = c;
        *reason = r;
        *msg = m;
        return -1;
}

/* Origin must be scheme://Host: a page of another site cannot open the console. */
static bool origin_ok(const char *origin, const char *scheme, const char *host)
{
        size_t sl = strlen(scheme);

        return origin && host && strncmp(origin, scheme, sl) == 0 &&
               strncmp(origin + sl, "://", 3) == 0 && strcmp(origin + sl + 3, host) == 0;
}

int web_vnc_open(struct web_vnc *v, struct evhttp_request *req, const char *origin_scheme,
                 const char *domain, const char *addr, int port, const char *sid, int *code,
                 const char **reason, const char **msg)
{
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        const char *key = evhttp_find_header(h, "Sec-WebSocket-Key");
        const char *protos = evhttp_find_header(h, "Sec-WebSocket-Protocol");
        const char *version = evhttp_find_header(h, "Sec-WebSocket-Version");
        struct sockaddr_storage ss;
        int sl = sizeof(ss);
        char accept[WS_ACCEPT_LEN + 1], target[300];
        struct vnc_proxy *p;
        struct timeval tv = {VNC_CONNECT_S, 0};

        if (!ws_has_token(evhttp_find_header(h, "Upgrade"), "websocket") ||
            !ws_has_token(evhttp_find_header(h, "Connection"), "upgrade"))
                return refuse(code, reason, msg, 426, "Upgrade Required",
                              "the console is a WebSocket: connect with Upgrade: websocket");
        if (version == NULL || strcmp(version, "13") != 0)
                return refuse(code, reason, msg, 426, "Upgrade Required",
                              "WebSocket version 13 only (Sec-WebSocket-Version)");
        if (!ws_accept_key(key, accept))
                return refuse(code, reason, msg, 400, "Bad Request",
                              "a WebSocket needs a Sec-WebSocket-Key of 16 bytes in base64");
        if (!origin_ok(evhttp_find_header(h, "Origin"), origin_scheme,
                       evhttp_find_header(h, "Host")))
                return refuse(code, reason, msg, 403, "Forbidden",
                              "the WebSocket's Origin is not this console");
        if (protos && !ws_has_token(protos, "binary"))
                return refuse(code, reason, msg, 400, "Bad Request",
                              "the only WebSocket subprotocol is 'binary'");
        if (v->n >= WEB_VNC_MAX)
                return refuse(code, reason, msg, 503, "Service Unavailable",
                              "too many consoles open: close other console tabs");
        snprintf(target, sizeof(target), strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);
        if (evutil_parse_sockaddr_port(target, (struct sockaddr *)&ss, &sl) < 0)
                return refuse(code, reason, msg, 500, "Internal Server Error",
                              "the domain's VNC address cannot be parsed");
        p = calloc(1, sizeof(*p));
        if (p == NULL)
                return refuse(code, reason, msg, 500, "Internal Server Error", "out of memory");
        p->v = v;
        p->conn = evhttp_request_get_connection(req);
        p->browser = p->conn ? evhttp_connection_get_bufferevent(p->conn) : NULL;
        p->vnc = bufferevent_socket_new(v->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (p->browser == NULL || p->vnc == NULL) {
                if (p->vnc)
                        bufferevent_free(p->vnc);
                free(p);
                return refuse(code, reason, msg, 500, "Internal Server Error", "out of memory");
        }
        snprintf(p->sid, sizeof(p->sid), "%s", sid);
        snprintf(p->domain, sizeof(p->domain), "%s", domain);
        ws_reader_init(&p->rd, VNC_MAX_FRAME);
        /* The connection is ours now: evhttp does not see it again until it is freed. */
        bufferevent_setcb(p->browser, browser_read, browser_write, browser_event, p);
        bufferevent_set_timeouts(p->browser, NULL, NULL);
        bufferevent_setwatermark(p->browser, EV_WRITE, WEB_VNC_MAX_BACKLOG / 2, 0);
        bufferevent_setwatermark(p->browser, EV_READ, 0, VNC_CHUNK);
        bufferevent_setcb(p->vnc, vnc_read, vnc_write, vnc_event, p);
        bufferevent_setwatermark(p->vnc, EV_WRITE, WEB_VNC_MAX_BACKLOG / 2, 0);
        bufferevent_setwatermark(p->vnc, EV_READ, 0, VNC_CHUNK);
        bufferevent_set_timeouts(p->vnc, &tv, &tv);
        bufferevent_enable(p->vnc, EV_READ | EV_WRITE);
        p->next = v->list;
        v->list = p;
        v->n++;
        evbuffer_add_printf(bufferevent_get_output(p->browser),
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                            accept, protos ? "Sec-WebSocket-Protocol: binary\r\n" : "");
        bufferevent_enable(p->browser, EV_READ | EV_WRITE);
        tt_info("web: console of %s opened (VNC %s)", p->domain, target);
        if (bufferevent_socket_connect(p->vnc, (struct sockaddr *)&ss, sl) < 0) {
                tt_warn("web: cannot connect to the VNC server of %s at %s", p->domain, target);
                bufferevent_free(p->vnc);
                p->vnc = NULL;
                proxy_close(p, WS_CLOSE_ERROR);
                return 0;
        }
        if (evbuffer_get_length(bufferevent_get_input(p->browser)) > 0)
                browser_read(p->browser, p);
        return 0;
}

void web_vnc_check(struct web_vnc *v, bool (*alive)(void *opaque, const char *sid), void *opaque)
{
        struct vnc_proxy *next;

        for (struct vnc_proxy *p = v ? v->list : NULL; p; p = next) {
                next = p->next;
                if (!alive(opaque, p->sid))
                        proxy_close(p, WS_CLOSE_GOING_AWAY);
        }
}

void web_vnc_free(struct web_vnc *v)
{
        if (v == NULL)
                return;
        while (v->list)
                proxy_free(v->list);
        free(v);
}
