/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's side of a QMP monitor is the input. A real qmp client (qmp_new + qmp_connect on a unix
 * socket, libevent loop) sends qmp_capabilities and three commands; the fuzzer's bytes come back
 * as QEMU's output, in chunks whose size the first byte picks, then the socket closes.
 * Invariants: every command's callback runs exactly once, with either a return value or an
 * error text; events carry a name; the close callback runs once; nothing runs after qmp_free.
 */
#include "fuzz.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>

#include "host/qmp.h"

#define N_COMMANDS 3

struct state {
        unsigned calls[N_COMMANDS]; /* callback runs per command */
        unsigned closed;            /* close callback runs */
        bool freed;                 /* qmp_free was called */
};

struct call {
        struct state *st;
        unsigned idx;
};

static void on_event(void *opaque, const char *name, json_t *data)
{
        struct state *st = opaque;

        FUZZ_CHECK(!st->freed);
        FUZZ_CHECK(name != NULL); /* tetherd's event handler compares it with strcmp */
}

static void on_closed(void *opaque)
{
        struct state *st = opaque;

        FUZZ_CHECK(!st->freed);
        st->closed++;
}

static void on_reply(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct call *c = opaque;

        FUZZ_CHECK(!c->st->freed);
        FUZZ_CHECK((ret == NULL) != (err == NULL));
        FUZZ_CHECK(err == NULL || err->msg != NULL);
        c->st->calls[c->idx]++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct qmp_callbacks cbs = {on_event, on_closed};
        static const char *const commands[N_COMMANDS] = {"query-status", "stop", "cont"};
        static struct event_base *base;
        static char path[300];
        static int lfd = -1;
        struct state st = {0};
        struct call calls[N_COMMANDS];
        struct tt_error err = {0};
        struct qmp *q;
        size_t chunk = 4096, off = 0;
        int peer;

        if (base == NULL) {
                base = event_base_new();
                snprintf(path, sizeof(path), "%s/qmp.sock", fuzz_scratch_dir());
                lfd = qmp_listen_socket(path, &err);
                FUZZ_CHECK(base != NULL && lfd >= 0);
        }
        if (size > 0) {
                chunk = 1 + data[0] % 128;
                data++;
                size--;
        }
        q = qmp_new(base, &cbs, &st);
        FUZZ_CHECK(q != NULL);
        FUZZ_CHECK(qmp_connect(q, path, &err) == 0);
        peer = accept(lfd, NULL, NULL);
        FUZZ_CHECK(peer >= 0);
        for (unsigned i = 0; i < N_COMMANDS; i++) {
                calls[i] = (struct call){&st, i};
                FUZZ_CHECK(qmp_command(q, commands[i], NULL, 600000, on_reply, &calls[i]) == 0);
        }
        while (off < size) {
                size_t n = size - off < chunk ? size - off : chunk;
                ssize_t w = write(peer, data + off, n);

                FUZZ_CHECK(w > 0);
                off += (size_t)w;
                event_base_loop(base, EVLOOP_NONBLOCK);
        }
        shutdown(peer, SHUT_WR);
        /* Read to the end: the EOF comes after the last byte. */
        for (unsigned spins = 0; !st.closed; spins++) {
                FUZZ_CHECK(spins < 100000);
                event_base_loop(base, EVLOOP_ONCE);
        }
        FUZZ_CHECK(st.closed == 1);
        for (unsigned i = 0; i < N_COMMANDS; i++)
                FUZZ_CHECK(st.calls[i] == 1);
        st.freed = true;
        qmp_free(q);
        close(peer);
        return 0;
}
