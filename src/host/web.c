/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The web console: HTTP(S) server, login, sessions, pages, JSON API and live updates (web.h). */
#include "host/web.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "host/events.h"
#include "host/monitor.h"
#include "host/ratelog.h"
#include "host/snapshot.h"
#include "host/tetherd.h"
#include "host/vm.h"
#include "host/web_history.h"
#include "host/web_parse.h"
#include "host/web_vnc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A login token: 128 random bits, good for one use within a minute. */
#define WEB_TOKEN_BYTES 16
#define WEB_TOKEN_TTL_S 60
/* Tokens handed out and not used yet; the oldest gives way to a new one. */
#define WEB_MAX_TOKENS 16
/* A session id and its CSRF token: 256 random bits each. */
#define WEB_SESSION_BYTES 32
/* A session ends this long after its login. */
#define WEB_SESSION_TTL_S (12 * 3600)
/* Sessions at once; a login beyond them ends the one that expires first. */
#define WEB_MAX_SESSIONS 64
/* Event streams at once. */
#define WEB_MAX_STREAMS 32
/* A stream whose browser leaves this much unread is dropped (it reconnects and gets the list). */
#define WEB_STREAM_MAX_BACKLOG (1u << 20)
/* How often the domain list is compared with what the streams were sent. The event bus sends
   a state change at once; the tick finds what makes no event (the monitor's IP addresses and
   OS, a job starting, idle, dying) within this. */
#define WEB_TICK_MS 500
/* The whole list is rendered and compared at least every this many ticks (4 s), whatever
   the quick fingerprint says (a managed-save image removed changes only the list). */
#define WEB_FULL_TICKS 8
/* A comment line on idle streams every this many ticks (15 s): proxies and dead peers. */
#define WEB_HEARTBEAT_TICKS 30
/* A page file larger than this is refused at start. */
#define WEB_MAX_FILE (4u << 20)
/* A browser that sends nothing for this long is disconnected (streams excepted: they write). */
#define WEB_HTTP_TIMEOUT_S 60
#define WEB_MAX_HEADERS    16384
/* Actions carry no body that is read. */
#define WEB_MAX_BODY 4096
/* Longest domain name in a path. */
#define WEB_MAX_NAME 256

#define WEB_COOKIE "tether_session"

/* noVNC (Debian's novnc) and Chart.js (libjs-chart.js), served from where Debian installs them. */
#ifndef TETHER_NOVNC_DIR
#define TETHER_NOVNC_DIR "/usr/share/novnc"
#endif
#ifndef TETHER_CHARTJS_DIR
#define TETHER_CHARTJS_DIR "/usr/share/javascript/chart.js"
#endif
/* Points of each domain's CPU sparkline in the list. */
#define WEB_SPARK_POINTS 60

/* Every reply: same-origin scripts, styles and requests only; no inline script or style. */
#define WEB_CSP                                                                                    \
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/* The pages, read from the web root at start. */
static const struct web_file_def {
        const char *path; /* URL path */
        const char *file; /* in the web root */
        const char *type; /* Content-Type */
} web_files[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/domain.html", "domain.html", "text/html; charset=utf-8"},
    {"/app.css", "app.css", "text/css; charset=utf-8"},
    {"/common.js", "common.js", "text/javascript; charset=utf-8"},
    {"/list.js", "list.js", "text/javascript; charset=utf-8"},
    {"/domain.js", "domain.js", "text/javascript; charset=utf-8"},
    {"/console.html", "console.html", "text/html; charset=utf-8"},
    {"/console.js", "console.js", "text/javascript; charset=utf-8"},
    {"/charts.js", "charts.js", "text/javascript; charset=utf-8"},
};

struct web_token {
        char hex[2 * WEB_TOKEN_BYTES + 1]; /* the token, "" when the slot is free */
        double expires;                    /* monotonic seconds */
        uid_t uid;                         /* who asked for it (the session acts as them) */
};

struct web_session {
        char id[2 * WEB_SESSION_BYTES + 1];   /* the cookie's value, "" when the slot is free */
        char csrf[2 * WEB_SESSION_BYTES + 1]; /* the token state-changing requests carry */
        double expires;                       /* monotonic seconds */
        uid_t uid;                            /* whose requests these are */
};

struct web;

/* An open event stream (GET /api/events). */
struct web_stream {
        struct web_stream *next;             /* list in struct web */
        struct web *w;                       /* owner */
        struct evhttp_request *req;          /* the chunked reply */
        struct evhttp_connection *conn;      /* its connection (closecb tells us it went away) */
        char sid[2 * WEB_SESSION_BYTES + 1]; /* its session: the stream ends with it */
};

/* An action whose job runs; answered when it ends. */
struct web_call {
        struct web_call *next, *prev; /* pending calls */
        struct web *w;                /* NULL once the server is gone: answer nobody */
        struct evhttp_request *req;   /* the POST */
        const char *action;           /* its name (static) */
        char *domain;                 /* the domain's name */
};

struct web {
        struct tetherd *d;                       /* the daemon */
        struct evhttp *http;                     /* the server */
        SSL_CTX *ssl;                            /* TLS, or NULL: plain HTTP on loopback */
        char *base_url;                          /* http(s)://HOST:PORT, for web-url */
        char *files[TT_ARRAY_SIZE(web_files)];   /* the pages' contents */
        size_t lens[TT_ARRAY_SIZE(web_files)];   /* and lengths */
        struct web_token tokens[WEB_MAX_TOKENS]; /* login tokens not used yet */
        struct web_session sessions[WEB_MAX_SESSIONS];
        struct web_stream *streams;  /* open event streams */
        unsigned n_streams;          /* how many */
        struct event *tick;          /* compares the list while streams are open */
        struct event *kick;          /* an event came: compare the list at once */
        struct events_sub *events;   /* the bus, while streams are open (NULL if it is full) */
        unsigned idle_ticks;         /* ticks since the streams were last written */
        char *last_list;             /* the list the streams were sent last */
        uint64_t last_print;         /* its quick fingerprint (list_print) */
        unsigned full_ticks;         /* ticks since the list was last rendered */
        struct web_call *calls;      /* actions running */
        struct ratelog refusals;     /* refused logins and requests */
        struct web_vnc *vnc;         /* the consoles' VNC proxies */
        struct web_history *history; /* the charts' points */
};

typedef void (*web_fn)(struct web *w, struct evhttp_request *req, const char *path,
                       struct web_session *s);

/* ---- small helpers ---- */

static double now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* n random bytes as 2n hex digits into out (2n+1 bytes); false if the kernel has none. */
static bool random_hex(char *out, size_t n)
{
        unsigned char buf[64];
        size_t got = 0;

        if (n > sizeof(buf))
                return false;
        while (got < n) {
                ssize_t r = getrandom(buf + got, n - got, 0);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return false;
                got += (size_t)r;
        }
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", buf[i]);
        return true;
}

/* Compare secrets in time that does not depend on where they differ. */
static bool secret_equal(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned char diff = la != lb;

        for (size_t i = 0; i < la && i < lb; i++)
                diff |= (unsigned char)(a[i] ^ b[i]);
        return diff == 0 && la > 0;
}

static const char *peer_of(struct evhttp_request *req, char *buf, size_t size)
{
        struct evhttp_connection *conn = evhttp_request_get_connection(req);
        const char *addr = NULL;
        ev_uint16_t port = 0;

        if (conn)
                evhttp_connection_get_peer(conn, (char **)&addr, &port);
        snprintf(buf, size, "%s", addr ? addr : "?");
        return buf;
}

static void security_headers(struct evhttp_request *req)
{
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);

        evhttp_add_header(h, "Content-Security-Policy", WEB_CSP);
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
        evhttp_add_header(h, "X-Frame-Options", "DENY");
        evhttp_add_header(h, "Referrer-Policy", "no-referrer");
        evhttp_add_header(h, "Cache-Control", "no-store");
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                  const char *body, size_t len)
{
        struct evbuffer *buf = evbuffer_new();

        security_headers(req);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
        if (buf)
                evbuffer_add(buf, body, len);
        evhttp_send_reply(req, code, reason, buf);
        if (buf)
                evbuffer_free(buf);
}

/* A plain refusal or error page: the status line, and a sentence. */
static void reply_page(struct evhttp_request *req, int code, const char *reason, const char *text)
{
        _cleanup_free_ char *body = NULL;
        int n = asprintf(&body,
                         "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                         "<title>%d %s</title></head>\n<body><h1>%d %s</h1>\n<p>%s</p>\n"
                         "</body></html>\n",
                         code, reason, code, reason, text);

        if (n < 0) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        reply(req, code, reason, "text/html; charset=utf-8", body, (size_t)n);
}

/* A JSON reply; takes the reference to j. */
static void reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j)
{
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

        json_decref(j);
        if (text == NULL) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        reply(req, code, reason, "application/json", text, strlen(text));
}

static void reply_error(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
        reply_json(req, code, reason, json_pack("{s:s}", "error", msg));
}

/* ---- tokens and sessions ---- */

char *web_login_url(struct tetherd *d, uid_t uid, struct tt_error *err)
{
        struct web *w = d->web;
        struct web_token *slot = NULL;
        double now = now_mono();
        char *url;

        if (w == NULL)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "the web console is off: start tetherd with --web-listen "
                                    "[ADDR:]PORT (or [web] listen in its config)"),
                       NULL;
        /* A free or expired slot, else the one that expires first. */
        for (size_t i = 0; i < WEB_MAX_TOKENS; i++) {
                struct web_token *t = &w->tokens[i];

                if (t->hex[0] == '\0' || t->expires <= now) {
                        slot = t;
                        break;
                }
                if (slot == NULL || t->expires < slot->expires)
                        slot = t;
        }
        if (!random_hex(slot->hex, WEB_TOKEN_BYTES))
                return tt_error_errno(err, errno, "web: no random bytes for a token"), NULL;
        slot->expires = now + WEB_TOKEN_TTL_S;
        slot->uid = uid;
        if (asprintf(&url, "%s/login?token=%s", w->base_url, slot->hex) < 0)
                return tt_error_set(err, ENOMEM, "out of memory"), NULL;
        return url;
}

/* Take a token (once): the uid it was made for, or false. */
static bool token_take(struct web *w, const char *hex, uid_t *uid)
{
        double now = now_mono();
        bool found = false;

        for (size_t i = 0; i < WEB_MAX_TOKENS; i++) {
                struct web_token *t = &w->tokens[i];

                if (t->hex[0] == '\0')
                        continue;
                if (t->expires <= now) {
                        memset(t, 0, sizeof(*t));
                        continue;
                }
                if (!found && secret_equal(t->hex, hex)) {
                        *uid = t->uid;
                        memset(t, 0, sizeof(*t));
                        found = true;
                }
        }
        return found;
}

static struct web_session *session_new(struct web *w, uid_t uid)
{
        struct web_session *slot = NULL;
        double now = now_mono();

        for (size_t i = 0; i < WEB_MAX_SESSIONS; i++) {
                struct web_session *s = &w->sessions[i];

                if (s->id[0] == '\0' || s->expires <= now) {
                        slot = s;
                        break;
                }
                if (slot == NULL || s->expires < slot->expires)
                        slot = s;
        }
        if (!random_hex(slot->id, WEB_SESSION_BYTES) ||
            !random_hex(slot->csrf, WEB_SESSION_BYTES)) {
                memset(slot, 0, sizeof(*slot));
                return NULL;
        }
        slot->expires = now + WEB_SESSION_TTL_S;
        slot->uid = uid;
        return slot;
}

/* The live session with this id (expired ones are cleared on the way), or NULL. */
static struct web_session *session_find(struct web *w, const char *id)
{
        double now = now_mono();

        for (size_t i = 0; i < WEB_MAX_SESSIONS; i++) {
                struct web_session *s = &w->sessions[i];

                if (s->id[0] == '\0')
                        continue;
                if (s->expires <= now) {
                        memset(s, 0, sizeof(*s));
                        continue;
                }
                if (secret_equal(s->id, id))
                        return s;
        }
        return NULL;
}

static struct web_session *session_of(struct web *w, struct evhttp_request *req)
{
        const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
        char id[2 * WEB_SESSION_BYTES + 1];

        if (cookie == NULL || !web_cookie_value(cookie, WEB_COOKIE, id, sizeof(id)))
                return NULL;
        return session_find(w, id);
}

/* ---- the domain list ---- */

/* The guest's addresses from the agent's interfaces (loopback left out), or an empty array. */
static json_t *agent_ips(const struct vm *vm)
{
        const struct monitor_sample *ms = monitor_sample(vm, MON_INTERFACES);
        json_t *ips = json_array(), *ifc, *addr;
        size_t i, j;

        if (ms == NULL || ips == NULL)
                return ips;
        json_array_foreach(ms->data, i, ifc)
        {
                const char *name = json_string_value(json_object_get(ifc, "name"));

                if (name && strcmp(name, "lo") == 0)
                        continue;
                json_array_foreach(json_object_get(ifc, "ip-addresses"), j, addr)
                {
                        const char *ip = json_string_value(json_object_get(addr, "ip-address"));

                        if (ip)
                                json_array_append_new(ips, json_string(ip));
                }
        }
        return ips;
}

/* The guest's OS as the agent names it ("pretty-name", else "name version"), or NULL. */
static json_t *agent_os(const struct vm *vm)
{
        const struct monitor_sample *ms = monitor_sample(vm, MON_OSINFO);
        const char *pretty, *name, *version;

        if (ms == NULL || ms->data == NULL)
                return json_null();
        pretty = json_string_value(json_object_get(ms->data, "pretty-name"));
        if (pretty)
                return json_string(pretty);
        name = json_string_value(json_object_get(ms->data, "name"));
        version = json_string_value(json_object_get(ms->data, "version"));
        if (name == NULL)
                return json_null();
        return json_sprintf("%s%s%s", name, version ? " " : "", version ? version : "");
}

/* One row of the list: what `tether list`/dominfo shows, the job, and the agent's summary. */
static json_t *domain_row(struct vm *vm)
{
        json_t *row = vm_describe(vm);

        if (row == NULL)
                return NULL;
        json_object_set_new(row, "job", vm->job ? json_string(vm->job) : json_null());
        json_object_set_new(row, "ips", agent_ips(vm));
        json_object_set_new(row, "os", agent_os(vm));
        return row;
}

static json_t *domain_list(struct tetherd *d)
{
        json_t *list = json_array();

        for (struct vm *vm = d->vms; vm && list; vm = vm->next)
                json_array_append_new(list, domain_row(vm));
        return list;
}

/* The agent's facts of one domain: the monitor's cached data and its age. */
static json_t *domain_facts(struct vm *vm)
{
        static const enum monitor_source sources[] = {MON_OSINFO,      MON_INTERFACES, MON_USERS,
                                                      MON_FILESYSTEMS, MON_LOAD,       MON_MEMORY};
        json_t *row = domain_row(vm), *agent = json_object();

        if (row == NULL || agent == NULL) {
                json_decref(row);
                json_decref(agent);
                return NULL;
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(sources); i++) {
                const struct monitor_sample *ms = monitor_sample(vm, sources[i]);

                if (ms == NULL || ms->data == NULL)
                        continue;
                json_object_set_new(
                    agent, monitor_source_name(sources[i]),
                    json_pack("{s:O, s:f}", "data", ms->data, "age", monitor_age(vm, sources[i])));
        }
        json_object_set_new(row, "agent", agent);
        return row;
}

/* ---- event streams ---- */

static void stream_free(struct web_stream *s)
{
        struct web *w = s->w;

        for (struct web_stream **pp = &w->streams; *pp; pp = &(*pp)->next) {
                if (*pp == s) {
                        *pp = s->next;
                        w->n_streams--;
                        break;
                }
        }
        if (w->n_streams == 0) {
                if (w->tick)
                        evtimer_del(w->tick);
                events_unsubscribe(w->events);
                w->events = NULL;
        }
        free(s);
}

/* The browser went away: the connection is being freed. */
static void stream_closed(struct evhttp_connection *conn, void *opaque)
{
        struct web_stream *s = opaque;

        tt_debug("web: an event stream closed (%u open)", s->w->n_streams - 1);
        /* A reply in progress that lost its connection is ours to free (libevent detached it). */
        if (evhttp_request_get_connection(s->req) == NULL)
                evhttp_request_free(s->req);
        stream_free(s);
}

/* Send text on one stream; a browser that reads too little is dropped. */
static void stream_send(struct web_stream *s, const char *text, size_t len)
{
        struct bufferevent *bev = evhttp_connection_get_bufferevent(s->conn);
        struct evbuffer *buf;

        if (bev && evbuffer_get_length(bufferevent_get_output(bev)) > WEB_STREAM_MAX_BACKLOG) {
                tt_warn("web: dropping an event stream: %zu bytes unread",
                        evbuffer_get_length(bufferevent_get_output(bev)));
                /* stream_closed() runs from here and frees s. */
                evhttp_connection_free(s->conn);
                return;
        }
        buf = evbuffer_new();
        if (buf == NULL)
                return;
        evbuffer_add(buf, text, len);
        evhttp_send_reply_chunk(s->req, buf);
        evbuffer_free(buf);
}

static void streams_send(struct web *w, const char *text, size_t len)
{
        struct web_stream *next;

        for (struct web_stream *s = w->streams; s; s = next) {
                next = s->next;
                stream_send(s, text, len);
        }
        w->idle_ticks = 0;
}

/* End the streams whose session ended (logout, expiry): the page finds out it is logged out. */
static bool session_alive(void *opaque, const char *sid)
{
        return session_find(opaque, sid) != NULL;
}

static void streams_check(struct web *w)
{
        struct web_stream *next;

        web_vnc_check(w->vnc, session_alive, w);

        for (struct web_stream *s = w->streams; s; s = next) {
                next = s->next;
                if (session_find(w, s->sid) != NULL)
                        continue;
                evhttp_connection_set_closecb(s->conn, NULL, NULL);
                evhttp_send_reply_end(s->req);
                stream_free(s);
        }
}

/* The list as one "domains" event; NULL when out of memory. */
static char *list_event(struct web *w, char **list_text)
{
        _cleanup_json_ json_t *list = domain_list(w->d);
        char *text = list ? json_dumps(list, JSON_COMPACT) : NULL, *event = NULL;

        if (text && asprintf(&event, "event: domains\ndata: %s\n\n", text) < 0)
                event = NULL;
        if (list_text)
                *list_text = text;
        else
                free(text);
        return event;
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
        const unsigned char *p = data;

        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ull;
        return h;
}

/*
 * What the list shows, cheaply: each domain's identity, state, job and sizes, and when the
 * agent's interfaces and OS were last read. Rendering the list only when this changes keeps
 * an idle page from costing tetherd 200 renders a second.
 */
static uint64_t list_print(struct tetherd *d)
{
        uint64_t h = 14695981039346656037ull;

        for (struct vm *vm = d->vms; vm; vm = vm->next) {
                const struct monitor_sample *ifs = monitor_sample(vm, MON_INTERFACES);
                const struct monitor_sample *os = monitor_sample(vm, MON_OSINFO);
                const void *ptrs[4] = {vm, vm->def, vm->live, vm->job};
                const int ints[5] = {(int)vm->status.state, vm->status.reason, vm->id,
                                     vm->persistent, vm->autostart};
                const double taken[2] = {ifs ? ifs->taken_mono : 0, os ? os->taken_mono : 0};

                h = fnv(h, ptrs, sizeof(ptrs));
                h = fnv(h, ints, sizeof(ints));
                h = fnv(h, taken, sizeof(taken));
        }
        return h;
}

/*
 * Every WEB_TICK_MS while streams are open, and at once after a lifecycle event (on_kick):
 * send the list when it changed. The tick is for what makes no event (the monitor's IP
 * addresses and OS, jobs, idle and dying).
 */
static void on_tick(evutil_socket_t fd, short what, void *opaque)
{
        struct web *w = opaque;
        char *text = NULL;
        _cleanup_free_ char *event = NULL;
        uint64_t print = list_print(w->d);

        if (print != w->last_print || ++w->full_ticks >= WEB_FULL_TICKS) {
                w->last_print = print;
                w->full_ticks = 0;
                streams_check(w);
                if (w->streams == NULL)
                        return;
                event = list_event(w, &text);
        }
        if (event && (w->last_list == NULL || strcmp(text, w->last_list) != 0)) {
                free(w->last_list);
                w->last_list = steal_pointer(&text);
                streams_send(w, event, strlen(event));
        } else if (++w->idle_ticks >= WEB_HEARTBEAT_TICKS) {
                streams_send(w, ": idle\n\n", 9);
        }
        free(text);
}

/* An event of the bus: render the list at the loop's next turn (the change is applied then). */
static void on_kick(evutil_socket_t fd, short what, void *opaque)
{
        struct web *w = opaque;

        w->full_ticks = WEB_FULL_TICKS;
        on_tick(fd, what, w);
}

/* The web is a subscriber that never queues anything: an event only kicks the comparison. */
static size_t bus_unread(void *opaque)
{
        return 0;
}

static int bus_write(void *opaque, const char *line, size_t len)
{
        struct web *w = opaque;

        event_active(w->kick, EV_TIMEOUT, 1);
        return 0;
}

static const struct events_sink web_bus_sink = {bus_unread, bus_write};

/* The first stream subscribes to lifecycle events; without a slot the tick alone remains. */
static void bus_subscribe(struct web *w)
{
        struct tt_error err = {0};

        if (w->events || w->d->events == NULL)
                return;
        if (events_subscribe(w->d->events, NULL, EVENTS_LIFECYCLE, &web_bus_sink, w, &w->events,
                             &err) < 0) {
                tt_warn("web: state changes reach the pages within %d ms only: %s", WEB_TICK_MS,
                        err.msg ? err.msg : "cannot subscribe to events");
                tt_error_clear(&err);
        }
}

static void web_events(struct web *w, struct evhttp_request *req, const char *path,
                       struct web_session *session)
{
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        struct timeval tv = {0, WEB_TICK_MS * 1000};
        _cleanup_free_ char *event = NULL;
        char *text = NULL;
        struct web_stream *s;

        if (w->n_streams >= WEB_MAX_STREAMS) {
                reply_error(req, 503, "Service Unavailable",
                            "too many event streams open: close other console tabs");
                return;
        }
        s = calloc(1, sizeof(*s));
        event = list_event(w, &text);
        if (s == NULL || event == NULL) {
                free(s);
                free(text);
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        /* The streams already open get a change the tick has not seen yet, as this one does. */
        w->last_print = list_print(w->d);
        if (w->last_list == NULL || strcmp(text, w->last_list) != 0) {
                streams_send(w, event, strlen(event));
                free(w->last_list);
                w->last_list = steal_pointer(&text);
        }
        free(text);
        s->w = w;
        s->req = req;
        s->conn = evhttp_request_get_connection(req);
        memcpy(s->sid, session->id, sizeof(s->sid));
        s->next = w->streams;
        w->streams = s;
        w->n_streams++;
        evhttp_connection_set_closecb(s->conn, stream_closed, s);
        security_headers(req);
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_send_reply_start(req, HTTP_OK, "OK");
        /* The browser reconnects after a second when the stream ends. */
        stream_send(s, "retry: 1000\n\n", 13);
        stream_send(s, event, strlen(event));
        if (!evtimer_pending(w->tick, NULL))
                evtimer_add(w->tick, &tv);
        bus_subscribe(w);
}

/* ---- the API ---- */

static void web_session_info(struct web *w, struct evhttp_request *req, const char *path,
                             struct web_session *s)
{
        reply_json(req, HTTP_OK, "OK",
                   json_pack("{s:s, s:i}", "csrf", s->csrf, "uid", (int)s->uid));
}

static void web_domains(struct web *w, struct evhttp_request *req, const char *path,
                        struct web_session *s)
{
        json_t *list = domain_list(w->d);

        if (list == NULL) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        reply_json(req, HTTP_OK, "OK", list);
}

/* GET /api/domains/NAME/vnc: the WebSocket to the domain's VNC server (web_vnc.c). */
static void web_console(struct web *w, struct evhttp_request *req, struct vm *vm,
                        struct web_session *s)
{
        const struct domain_graphics *g = NULL;
        const char *addr, *reason = NULL, *msg = NULL;
        char peer[NI_MAXHOST];
        int code = 0;

        for (size_t i = 0; vm->live && i < vm->live->n_graphics && g == NULL; i++)
                if (vm->live->graphics[i].type == DOMAIN_GRAPHICS_VNC)
                        g = &vm->live->graphics[i];
        if (!vm_state_is_active(vm->status.state) || g == NULL) {
                reply_error(req, 409, "Conflict",
                            vm_state_is_active(vm->status.state)
                                ? "the domain has no VNC graphics (<graphics type='vnc'>)"
                                : "the domain is not running");
                return;
        }
        /* QEMU listens where the definition says; a wildcard is reached on loopback. */
        addr = g->listen ? g->listen : "127.0.0.1";
        if (strcmp(addr, "0.0.0.0") == 0)
                addr = "127.0.0.1";
        else if (strcmp(addr, "::") == 0)
                addr = "::1";
        if (web_vnc_open(w->vnc, req, w->ssl ? "https" : "http", vm->def->name, addr, g->port,
                         s->id, &code, &reason, &msg) < 0) {
                ratelog_note(&w->refusals, "web: refused the console of %s to %s: %s",
                             vm->def->name, peer_of(req, peer, sizeof(peer)), msg);
                reply_error(req, code, reason, msg);
        }
}

static void web_domain(struct web *w, struct evhttp_request *req, const char *path,
                       struct web_session *s)
{
        char name[WEB_MAX_NAME];
        const char *rest;
        struct tt_error err = {0};
        struct vm *vm;
        json_t *facts, *snaps;

        if (!web_path_domain(path, name, sizeof(name), &rest) ||
            (*rest && strcmp(rest, "/vnc") != 0 && strcmp(rest, "/history") != 0)) {
                reply_error(req, HTTP_NOTFOUND, "Not Found", "no such page");
                return;
        }
        vm = vm_lookup(w->d, name, &err);
        if (vm == NULL) {
                reply_error(req, HTTP_NOTFOUND, "Not Found", err.msg ? err.msg : "no domain");
                tt_error_clear(&err);
                return;
        }
        if (strcmp(rest, "/vnc") == 0) {
                web_console(w, req, vm, s);
                return;
        }
        if (strcmp(rest, "/history") == 0) {
                facts = web_history_json(w->history, vm->def->name);
                if (facts == NULL)
                        evhttp_send_error(req, HTTP_INTERNAL, NULL);
                else
                        reply_json(req, HTTP_OK, "OK", facts);
                return;
        }
        facts = domain_facts(vm);
        if (facts == NULL) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        /* Its snapshots (snapshot-list's rows); unreadable metadata is said, not hidden. */
        snaps = snapshot_list(vm, &err);
        if (snaps)
                json_object_set_new(facts, "snapshots", snaps);
        else
                json_object_set_new(facts, "snapshots_error",
                                    json_string(err.msg ? err.msg : "out of memory"));
        tt_error_clear(&err);
        reply_json(req, HTTP_OK, "OK", facts);
}

static void call_free(struct web_call *c)
{
        if (c->w) {
                if (c->prev)
                        c->prev->next = c->next;
                else
                        c->w->calls = c->next;
                if (c->next)
                        c->next->prev = c->prev;
        }
        free(c->domain);
        free(c);
}

/* Map the VM module's errors to HTTP statuses. */
static int status_of(int code, const char **reason)
{
        switch (code) {
        case VM_ERR_NO_DOMAIN:
                *reason = "Not Found";
                return HTTP_NOTFOUND;
        case VM_ERR_INVALID_OP:
        case VM_ERR_BUSY:
        case VM_ERR_EXISTS:
                *reason = "Conflict";
                return 409;
        case 2000: /* POLICY_ERR_DENIED */
                *reason = "Forbidden";
                return 403;
        default:
                *reason = "Internal Server Error";
                return HTTP_INTERNAL;
        }
}

static void call_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct web_call *c = opaque;
        const char *reason = "OK";

        if (c->w == NULL) {
                call_free(c);
                return;
        }
        if (err) {
                int code = status_of(err->code, &reason);

                reply_error(c->req, code, reason, err->msg ? err->msg : "failed");
        } else {
                reply_json(c->req, HTTP_OK, reason,
                           json_pack("{s:s, s:s}", "domain", c->domain, "action", c->action));
        }
        call_free(c);
}

static int act_start(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return vm_start(vm, 0, done, opaque, err);
}

static int act_destroy(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return vm_destroy(vm, false, done, opaque, err);
}

static int act_shutdown(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        struct vm_shutdown_opts o = {0};

        if (vm_power_modes_parse(NULL, &o, err) < 0)
                return -1;
        return vm_shutdown(vm, &o, done, opaque, err);
}

static int act_reboot(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        struct vm_shutdown_opts o = {0};

        if (vm_power_modes_parse(NULL, &o, err) < 0)
                return -1;
        return vm_reboot(vm, &o, done, opaque, err);
}

static int act_managedsave(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        return vm_save(vm, -1, NULL, done, opaque, err);
}

/* The page's actions: the same vm_* calls as the control API's verbs. */
static const struct web_action {
        const char *name; /* in the path */
        int (*fn)(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err);
} web_actions[] = {
    {"start", act_start},
    {"shutdown", act_shutdown},
    {"reboot", act_reboot},
    {"suspend", vm_suspend},
    {"resume", vm_resume},
    {"destroy", act_destroy},
    {"managedsave", act_managedsave},
};

static void web_action(struct web *w, struct evhttp_request *req, const char *path,
                       struct web_session *s)
{
        const struct web_action *a = NULL;
        char name[WEB_MAX_NAME];
        struct tt_error err = {0};
        const char *rest, *reason = NULL;
        struct web_call *c;
        struct vm *vm;

        if (!web_path_domain(path, name, sizeof(name), &rest) || rest[0] != '/') {
                reply_error(req, HTTP_NOTFOUND, "Not Found", "no such page");
                return;
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(web_actions); i++)
                if (strcmp(web_actions[i].name, rest + 1) == 0)
                        a = &web_actions[i];
        if (a == NULL) {
                reply_error(req, HTTP_NOTFOUND, "Not Found", "no such action");
                return;
        }
        vm = vm_lookup(w->d, name, &err);
        c = vm ? calloc(1, sizeof(*c)) : NULL;
        if (c == NULL || (c->domain = strdup(name)) == NULL) {
                free(c);
                if (vm == NULL) {
                        int code = status_of(err.code, &reason);

                        reply_error(req, code, reason, err.msg ? err.msg : "no domain");
                        tt_error_clear(&err);
                } else {
                        evhttp_send_error(req, HTTP_INTERNAL, NULL);
                }
                return;
        }
        c->w = w;
        c->req = req;
        c->action = a->name;
        c->next = w->calls;
        if (w->calls)
                w->calls->prev = c;
        w->calls = c;
        tt_info("web: %s %s (uid %u)", a->name, name, (unsigned)s->uid);
        /* The session acts as the user who got the login link (the policy of launches). */
        w->d->request_uid = s->uid;
        if (a->fn(vm, call_done, c, &err) < 0) {
                call_done(c, NULL, &err);
                tt_error_clear(&err);
        }
}

static void web_logout(struct web *w, struct evhttp_request *req, const char *path,
                       struct web_session *s)
{
        memset(s, 0, sizeof(*s));
        streams_check(w);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie",
                          WEB_COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
        reply_json(req, HTTP_OK, "OK", json_pack("{s:b}", "logged_out", 1));
}

/* GET /api/history: every domain's last CPU points (the list's sparklines). */
static void web_cpu_history(struct web *w, struct evhttp_request *req, const char *path,
                            struct web_session *s)
{
        json_t *j = web_history_cpu(w->history, WEB_SPARK_POINTS);

        if (j == NULL)
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
        else
                reply_json(req, HTTP_OK, "OK", j);
}

/* ---- login and pages ---- */

static const char login_refused[] =
    "This login link is wrong, expired or already used. Run <code>tether web-url</code> on "
    "the host for a new one.";
static const char not_logged_in[] =
    "You are not logged in, or your session has ended. Run <code>tether web-url</code> on "
    "the host for a login link.";

static void web_login(struct web *w, struct evhttp_request *req, const char *path,
                      struct web_session *unused)
{
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *query = evhttp_uri_get_query(uri);
        struct evkeyvalq params;
        const char *token = NULL;
        struct web_session *s = NULL;
        _cleanup_free_ char *cookie = NULL;
        char peer[NI_MAXHOST];
        uid_t uid = 0;

        TAILQ_INIT(&params);
        if (query && evhttp_parse_query_str(query, &params) == 0)
                token = evhttp_find_header(&params, "token");
        if (token == NULL || !token_take(w, token, &uid) || (s = session_new(w, uid)) == NULL) {
                evhttp_clear_headers(&params);
                ratelog_note(&w->refusals,
                             "web: refused a login from %s: wrong, expired or used token",
                             peer_of(req, peer, sizeof(peer)));
                reply_page(req, 403, "Forbidden", login_refused);
                return;
        }
        evhttp_clear_headers(&params);
        if (asprintf(&cookie, WEB_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d%s",
                     s->id, WEB_SESSION_TTL_S, w->ssl ? "; Secure" : "") < 0) {
                evhttp_send_error(req, HTTP_INTERNAL, NULL);
                return;
        }
        tt_info("web: login from %s (uid %u)", peer_of(req, peer, sizeof(peer)), (unsigned)uid);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/");
        reply_page(req, 303, "See Other", "Logged in: <a href=\"/\">continue</a>.");
}

static void web_static(struct web *w, struct evhttp_request *req, const char *path,
                       struct web_session *s)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(web_files); i++) {
                if (strcmp(web_files[i].path, path) == 0) {
                        reply(req, HTTP_OK, "OK", web_files[i].type, w->files[i], w->lens[i]);
                        return;
                }
        }
        reply_page(req, HTTP_NOTFOUND, "Not Found", "There is no such page.");
}

/* The libraries' files: a URL prefix and the folder it maps to; only .js files under it. */
static const struct web_lib {
        const char *prefix; /* URL */
        const char *dir;    /* on disk */
} web_libs[] = {
    {"/novnc/", TETHER_NOVNC_DIR},
    {"/chartjs/", TETHER_CHARTJS_DIR},
};

static void web_lib_file(struct web *w, struct evhttp_request *req, const char *path,
                         struct web_session *s)
{
        _cleanup_free_ char *file = NULL, *body = NULL;
        struct tt_error err = {0};
        const struct web_lib *lib = NULL;
        size_t len = 0;

        for (size_t i = 0; i < TT_ARRAY_SIZE(web_libs) && lib == NULL; i++)
                if (strncmp(path, web_libs[i].prefix, strlen(web_libs[i].prefix)) == 0)
                        lib = &web_libs[i];
        if (lib == NULL || !web_lib_path_ok(path + strlen(lib->prefix)) ||
            asprintf(&file, "%s/%s", lib->dir, path + strlen(lib->prefix)) < 0 ||
            tt_read_file(file, WEB_MAX_FILE, &body, &len, &err) < 0) {
                tt_error_clear(&err);
                reply_page(req, HTTP_NOTFOUND, "Not Found", "There is no such page.");
                return;
        }
        reply(req, HTTP_OK, "OK", "text/javascript; charset=utf-8", body, len);
}

enum web_route_flags {
        WEB_SESSION = 1 << 0, /* needs a session cookie */
        WEB_CSRF = 1 << 1,    /* and its CSRF token in X-CSRF-Token (state-changing) */
        WEB_PREFIX = 1 << 2,  /* path is a prefix */
};

/* First match wins; a path that matches with another method gets 405. */
static const struct web_route {
        enum evhttp_cmd_type method; /* GET also answers HEAD */
        const char *path;            /* exact, or a prefix with WEB_PREFIX */
        web_fn fn;                   /* handler */
        unsigned flags;              /* enum web_route_flags */
} web_routes[] = {
    {EVHTTP_REQ_GET, "/login", web_login, 0},
    {EVHTTP_REQ_GET, "/api/session", web_session_info, WEB_SESSION},
    {EVHTTP_REQ_GET, "/api/domains", web_domains, WEB_SESSION},
    {EVHTTP_REQ_GET, "/api/events", web_events, WEB_SESSION},
    {EVHTTP_REQ_GET, "/api/history", web_cpu_history, WEB_SESSION},
    {EVHTTP_REQ_POST, "/api/logout", web_logout, WEB_SESSION | WEB_CSRF},
    {EVHTTP_REQ_GET, "/api/domains/", web_domain, WEB_SESSION | WEB_PREFIX},
    {EVHTTP_REQ_POST, "/api/domains/", web_action, WEB_SESSION | WEB_CSRF | WEB_PREFIX},
    {EVHTTP_REQ_GET, "/novnc/", web_lib_file, WEB_SESSION | WEB_PREFIX},
    {EVHTTP_REQ_GET, "/chartjs/", web_lib_file, WEB_SESSION | WEB_PREFIX},
    {EVHTTP_REQ_GET, "/", web_static, WEB_SESSION | WEB_PREFIX},
};

static bool route_matches(const struct web_route *r, const char *path)
{
        if (r->flags & WEB_PREFIX)
                return strncmp(path, r->path, strlen(r->path)) == 0;
        return strcmp(path, r->path) == 0;
}

static void http_request(struct evhttp_request *req, void *opaque)
{
        struct web *w = opaque;
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
        enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
        const struct web_route *route = NULL;
        bool other_method = false, api;
        struct web_session *s = NULL;
        char peer[NI_MAXHOST];

        if (cmd == EVHTTP_REQ_HEAD)
                cmd = EVHTTP_REQ_GET;
        if (path == NULL || path[0] != '/') {
                reply_page(req, HTTP_BADREQUEST, "Bad Request", "The request has no path.");
                return;
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(web_routes) && route == NULL; i++) {
                if (!route_matches(&web_routes[i], path))
                        continue;
                if (web_routes[i].method == cmd)
                        route = &web_routes[i];
                else
                        other_method = true;
        }
        api = strncmp(path, "/api/", 5) == 0;
        if (route == NULL) {
                if (other_method) {
                        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                                          cmd == EVHTTP_REQ_GET ? "POST" : "GET, HEAD");
                        reply_page(req, 405, "Method Not Allowed",
                                   "This page does not take that method.");
                } else {
                        reply_page(req, HTTP_NOTFOUND, "Not Found", "There is no such page.");
                }
                return;
        }
        if (route->flags & WEB_SESSION) {
                s = session_of(w, req);
                if (s == NULL) {
                        if (api)
                                reply_error(req, 403, "Forbidden",
                                            "not logged in: run tether web-url on the host for a "
                                            "login link");
                        else
                                reply_page(req, 403, "Forbidden", not_logged_in);
                        return;
                }
        }
        if (route->flags & WEB_CSRF) {
                const char *token =
                    evhttp_find_header(evhttp_request_get_input_headers(req), "X-CSRF-Token");

                if (token == NULL || !secret_equal(s->csrf, token)) {
                        ratelog_note(&w->refusals,
                                     "web: refused %s from %s (uid %u): %s CSRF token", path,
                                     peer_of(req, peer, sizeof(peer)), (unsigned)s->uid,
                                     token ? "wrong" : "no");
                        reply_error(req, 403, "Forbidden",
                                    token ? "wrong CSRF token: reload the page"
                                          : "missing CSRF token: a state-changing request needs "
                                            "the X-CSRF-Token header");
                        return;
                }
        }
        /* HEAD of the event stream: its headers, not a stream. */
        if (route->fn == web_events && evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
                reply(req, HTTP_OK, "OK", "text/event-stream", "", 0);
                return;
        }
        route->fn(w, req, path, s);
}

/* ---- listening ---- */

static const char *ssl_error(void)
{
        static char buf[256];
        unsigned long e = ERR_get_error();

        if (e == 0)
                return "unknown error";
        ERR_error_string_n(e, buf, sizeof(buf));
        return buf;
}

static int tls_setup(struct web *w, const struct web_config *c, struct tt_error *err)
{
        w->ssl = SSL_CTX_new(TLS_server_method());
        if (w->ssl == NULL)
                return tt_error_set(err, ENOMEM, "web: cannot create a TLS context: %s",
                                    ssl_error());
        SSL_CTX_set_min_proto_version(w->ssl, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_chain_file(w->ssl, c->cert) != 1)
                return tt_error_set(err, EINVAL, "web: cannot load the certificate '%s': %s",
                                    c->cert, ssl_error());
        if (SSL_CTX_use_PrivateKey_file(w->ssl, c->key, SSL_FILETYPE_PEM) != 1)
                return tt_error_set(err, EINVAL, "web: cannot load the key '%s': %s", c->key,
                                    ssl_error());
        if (SSL_CTX_check_private_key(w->ssl) != 1)
                return tt_error_set(err, EINVAL,
                                    "web: the key '%s' does not match the certificate '%s'", c->key,
                                    c->cert);
        return 0;
}

/* Each connection through TLS (evhttp's bufferevent hook). */
static struct bufferevent *tls_bev(struct event_base *base, void *opaque)
{
        struct web *w = opaque;
        SSL *ssl = SSL_new(w->ssl);

        if (ssl == NULL)
                return NULL;
        return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                              BEV_OPT_CLOSE_ON_FREE);
}

/* The pages: --web-root, else the installed folder, else the source tree (a build tree). */
static int load_files(struct web *w, const char *given, struct tt_error *err)
{
        const char *root = given;
        _cleanup_free_ char *probe = NULL;

        if (root == NULL) {
                root = TETHER_WEB_DIR;
                if (asprintf(&probe, "%s/index.html", root) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
                if (access(probe, R_OK) < 0)
                        root = TETHER_WEB_SRC_DIR;
        }
        for (size_t i = 0; i < TT_ARRAY_SIZE(web_files); i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", root, web_files[i].file) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
                if (tt_read_file(path, WEB_MAX_FILE, &w->files[i], &w->lens[i], err) < 0)
                        return -1;
        }
        tt_debug("web: pages from %s", root);
        return 0;
}

int web_listen(struct tetherd *d, const struct web_config *c, struct tt_error *err)
{
        _cleanup_free_ char *addr = NULL;
        struct evhttp_bound_socket *bound;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        ev_uint16_t port = 0;
        struct web *w;

        if (web_parse_listen(c->listen, "web listen", &addr, &port, err) < 0)
                return -1;
        if ((c->cert == NULL) != (c->key == NULL))
                return tt_error_set(err, EINVAL,
                                    "web: --web-cert and --web-key go together (TLS needs both)");
        if (!web_is_loopback(addr) && c->cert == NULL)
                return tt_error_set(err, EINVAL,
                                    "web: refusing to serve the console on '%s' without TLS: "
                                    "only a loopback address may use plain HTTP; give "
                                    "--web-cert and --web-key (or [web] cert and key)",
                                    c->listen);
        w = calloc(1, sizeof(*w));
        if (w == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        w->d = d;
        d->web = w;
        ratelog_init(&w->refusals, d->base);
        if (load_files(w, c->root, err) < 0 || (c->cert && tls_setup(w, c, err) < 0))
                return -1;
        w->tick = event_new(d->base, -1, EV_PERSIST, on_tick, w);
        w->kick = event_new(d->base, -1, 0, on_kick, w);
        w->vnc = web_vnc_new(d->base);
        w->history = web_history_new(d);
        if (w->vnc == NULL || w->history == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        w->http = evhttp_new(d->base);
        if (w->tick == NULL || w->kick == NULL || w->http == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
        evhttp_set_timeout(w->http, WEB_HTTP_TIMEOUT_S);
        evhttp_set_max_headers_size(w->http, WEB_MAX_HEADERS);
        evhttp_set_max_body_size(w->http, WEB_MAX_BODY);
        evhttp_set_gencb(w->http, http_request, w);
        if (w->ssl)
                evhttp_set_bevcb(w->http, tls_bev, w);
        errno = 0;
        bound = evhttp_bind_socket_with_handle(w->http, addr, port);
        if (bound == NULL)
                return tt_error_errno(err, errno ? errno : EADDRNOTAVAIL,
                                      "web: cannot listen on %s", c->listen);
        if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) < 0 ||
            getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                        NI_NUMERICHOST | NI_NUMERICSERV) != 0)
                return tt_error_errno(err, errno, "web: cannot read the address of %s", c->listen);
        /* A wildcard address: the link names this host. */
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
                if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
                        snprintf(host, sizeof(host), "localhost");
                host[sizeof(host) - 1] = '\0';
        }
        if (asprintf(&w->base_url, "%s://%s%s%s:%s", w->ssl ? "https" : "http",
                     strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", serv) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        tt_info("web console on %s/ (tether web-url prints a login link)", w->base_url);
        return 0;
}

void web_close(struct tetherd *d)
{
        struct web *w = d->web;

        if (w == NULL)
                return;
        /* Streams and pending actions go with their connections: forget them first. */
        while (w->streams) {
                struct web_stream *s = w->streams;

                evhttp_connection_set_closecb(s->conn, NULL, NULL);
                w->streams = s->next;
                free(s);
        }
        w->n_streams = 0;
        events_unsubscribe(w->events);
        w->events = NULL;
        for (struct web_call *c = w->calls; c; c = c->next)
                c->w = NULL;
        /* The consoles' connections are evhttp's: close them before the server. */
        web_vnc_free(w->vnc);
        web_history_free(w->history);
        if (w->http)
                evhttp_free(w->http);
        if (w->tick)
                event_free(w->tick);
        if (w->kick)
                event_free(w->kick);
        ratelog_close(&w->refusals);
        if (w->ssl)
                SSL_CTX_free(w->ssl);
        for (size_t i = 0; i < TT_ARRAY_SIZE(web_files); i++)
                free(w->files[i]);
        explicit_bzero(w->tokens, sizeof(w->tokens));
        explicit_bzero(w->sessions, sizeof(w->sessions));
        free(w->last_list);
        free(w->base_url);
        free(w);
        d->web = NULL;
}
