/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QMP request checks (qemu's qmp_dispatch_check_obj()). qemu walks the request's members in
 * QDict order: 512 buckets by tdb_hash(key), ascending, and within a bucket the last inserted
 * member first. That order decides which error a request with several faults gets, so it is
 * reproduced here exactly.
 */
#include "wire/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QDICT_BUCKETS 512

/* qemu's qdict.c hash (from Samba's tdb). */
static unsigned qdict_hash(const char *key, size_t len)
{
        unsigned value = 0x238F13AFu * (unsigned)len;

        for (size_t i = 0; i < len; i++)
                value += (unsigned)(unsigned char)key[i] << (i * 5 % 24);
        return 1103515243u * value + 12345u;
}

struct member {
        const char *key;  /* borrowed from the request */
        size_t len;       /* key length */
        json_t *value;    /* borrowed */
        unsigned bucket;  /* qdict bucket */
        size_t pos;       /* position in the request text */
};

static int member_cmp(const void *a, const void *b)
{
        const struct member *x = a, *y = b;

        if (x->bucket != y->bucket)
                return x->bucket < y->bucket ? -1 : 1;
        /* same bucket: qemu inserts at the head, so later members come first */
        return x->pos > y->pos ? -1 : x->pos < y->pos;
}

static bool key_is(const struct member *m, const char *name)
{
        return m->len == strlen(name) && memcmp(m->key, name, m->len) == 0;
}

int wire_request_parse(json_t *msg, struct wire_request *req, struct tt_error *err)
{
        struct member small[8], *members = small;
        size_t count, n = 0;
        json_t *execute = NULL;
        void *it;
        int r = 0;

        req->execute = NULL;
        req->arguments = NULL;
        req->id = NULL;
        if (!json_is_object(msg))
                return tt_error_set(err, EINVAL, "QMP input must be a JSON object");
        /* Set before any check so that error replies carry it, as qemu's do. */
        req->id = json_object_get(msg, "id");

        count = json_object_size(msg);
        if (count > sizeof(small) / sizeof(small[0])) {
                members = calloc(count, sizeof(*members));
                if (members == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        for (it = json_object_iter(msg); it && n < count; it = json_object_iter_next(msg, it)) {
                struct member *m = &members[n];

                m->key = json_object_iter_key(it);
                m->len = json_object_iter_key_len(it);
                m->value = json_object_iter_value(it);
                m->bucket = qdict_hash(m->key, m->len) % QDICT_BUCKETS;
                m->pos = n++;
        }
        qsort(members, n, sizeof(*members), member_cmp);

        for (size_t i = 0; i < n; i++) {
                const struct member *m = &members[i];

                if (key_is(m, "execute")) {
                        if (!json_is_string(m->value)) {
                                r = tt_error_set(err, EINVAL,
                                                 "QMP input member 'execute' must be a string");
                                goto out;
                        }
                        execute = m->value;
                } else if (key_is(m, "arguments")) {
                        if (!json_is_object(m->value)) {
                                r = tt_error_set(err, EINVAL,
                                                 "QMP input member 'arguments' must be an object");
                                goto out;
                        }
                } else if (!key_is(m, "id")) {
                        /* "exec-oob" lands here too: QGA does not allow out-of-band commands */
                        r = tt_error_set(err, EINVAL, "QMP input member '%s' is unexpected",
                                         m->key);
                        goto out;
                }
        }
        if (execute == NULL) {
                r = tt_error_set(err, EINVAL, "QMP input lacks member 'execute'");
                goto out;
        }
        req->execute = json_string_value(execute);
        req->arguments = json_object_get(msg, "arguments");
out:
        if (members != small)
                free(members);
        return r;
}
