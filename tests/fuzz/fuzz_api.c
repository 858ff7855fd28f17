/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control API's request handling: the input is a client's byte stream, framed by a wire
 * splitter as tetherd frames it, and each message goes through api_request_parse() (the
 * request check, verb lookup and argument check that dispatch() runs before any handler),
 * then its error reply is written. Invariants: a refusal says why; an accepted request names
 * one verb and carries every argument its spec requires, with the declared JSON type (the
 * handlers read them without checking again); replies are printable ASCII lines.
 */
#include "fuzz.h"

#include <string.h>

#include "host/api.h"

static int check_sink(void *opaque, const void *buf, size_t len)
{
        const unsigned char *p = buf;

        for (size_t i = 0; i < len; i++)
                FUZZ_CHECK(p[i] < 0x80 && (p[i] >= 0x20 || p[i] == '\n'));
        return 0;
}

static bool type_ok(enum wire_type t, json_t *v)
{
        switch (t) {
        case WIRE_T_INT:
        case WIRE_T_UINT64:
                return json_is_integer(v);
        case WIRE_T_NUMBER:
                return json_is_number(v);
        case WIRE_T_STRING:
        case WIRE_T_ENUM:
                return json_is_string(v);
        case WIRE_T_BOOL:
                return json_is_boolean(v);
        case WIRE_T_ARRAY:
                return json_is_array(v);
        case WIRE_T_OBJECT:
                return json_is_object(v);
        case WIRE_T_ALT_INT_ENUM:
                return json_is_integer(v) || json_is_string(v);
        case WIRE_T_ALT_BOOL_ENUM:
                return json_is_boolean(v) || json_is_string(v);
        case WIRE_T_ANY:
                return true;
        }
        return false;
}

static int on_message(void *opaque, json_t *msg, const struct tt_error *perr)
{
        struct wire_out *out = opaque;
        struct api_request rq;
        struct tt_error err = {0};
        int r;

        if (msg == NULL) {
                FUZZ_CHECK(perr != NULL && perr->msg != NULL);
                return 0;
        }
        r = api_request_parse(msg, &rq, &err);
        if (r == 0) {
                const struct wire_arg *spec = api_request_spec(&rq);

                FUZZ_CHECK(err.msg == NULL);
                FUZZ_CHECK((rq.verb == NULL) != (rq.guest_op == NULL));
                FUZZ_CHECK(spec != NULL && json_is_object(rq.args));
                for (const struct wire_arg *a = spec; a->name; a++) {
                        json_t *v = json_object_get(rq.args, a->name);

                        FUZZ_CHECK(v != NULL || !a->required);
                        FUZZ_CHECK(v == NULL || type_ok(a->type, v));
                }
                wire_write_return(out, rq.args, rq.req.id);
        } else {
                FUZZ_CHECK(r == -1 || r == API_REQ_NOT_FOUND);
                FUZZ_CHECK(err.msg != NULL);
                FUZZ_CHECK(r != API_REQ_NOT_FOUND || rq.req.execute != NULL);
                wire_write_error(out, r == -1 ? API_CLASS_GENERIC : API_CLASS_NOT_FOUND, err.msg,
                                 rq.req.id);
        }
        wire_out_flush(out);
        api_request_clear(&rq);
        tt_error_clear(&err);
        json_decref(msg);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct wire_out *out = wire_out_new(check_sink, NULL);
        struct wire_splitter *s = wire_splitter_new();

        FUZZ_CHECK(out != NULL && s != NULL);
        wire_splitter_set_limits(s, 64 * 1024, 4096, 32);
        wire_splitter_feed(s, data, size, on_message, out);
        wire_splitter_free(s);
        wire_out_free(out);
        return 0;
}
