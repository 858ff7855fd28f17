/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * wire: the one JSON framing module shared by QGA (tether-agent), QMP (tetherd -> QEMU) and the
 * control API (tether -> tetherd). It follows qemu's json-lexer/json-streamer/json-writer and
 * qmp-dispatch behaviour; the rules are written down in shared/reference/qga-protocol.md.
 *
 *   bytes --wire_splitter_feed()--> json_t messages (or protocol errors, one per bad input)
 *   json_t request --wire_request_parse()--> execute name, arguments, id (qemu's error texts)
 *   arguments --wire_args_check(spec)--> checked before any handler runs
 *   replies --wire_write_return()/wire_write_error()--> qemu-ga's exact output bytes
 */
#ifndef TT_WIRE_H
#define TT_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/tt_error.h"

/* ---- limits (qemu's json-streamer values) ---- */
#define WIRE_MAX_MESSAGE_SIZE (64ULL << 20) /* bytes of tokens in one message */
#define WIRE_MAX_TOKENS       (2ULL << 20)  /* tokens in one message */
#define WIRE_MAX_DEPTH        1024          /* nesting of {} and [] */

/* ---- error classes put on the wire ---- */
#define WIRE_CLASS_GENERIC   "GenericError"
#define WIRE_CLASS_NOT_FOUND "CommandNotFound"

/* ---- stream splitter ---- */
struct wire_splitter;

/*
 * Called once per complete top-level JSON value (msg != NULL, owned by the callee: decref it),
 * or once per protocol error (msg == NULL, err->msg holds qemu's text, e.g.
 * "JSON parse error, stray '\xff'" or "JSON token size limit exceeded"; err->code is EINVAL
 * for lexical/syntax errors and E2BIG for the three limits). Return 0 to go on,
 * or a negative value to stop feeding (wire_splitter_feed then returns it, keeping the rest of
 * the input unconsumed is not supported: the caller is expected to tear the stream down).
 */
typedef int (*wire_message_fn)(void *opaque, json_t *msg, const struct tt_error *err);

/* A splitter with qemu's limits. allow_single_quotes: accept 'strings' (qemu's lexer does). */
struct wire_splitter *wire_splitter_new(void);
void wire_splitter_free(struct wire_splitter *s);
/* Override the limits (tests and tetherd use smaller ones); 0 keeps the default. */
void wire_splitter_set_limits(struct wire_splitter *s, uint64_t max_size, uint64_t max_tokens,
                              unsigned max_depth);
/* Feed len bytes; calls fn for every message or error completed by them, in order. */
int wire_splitter_feed(struct wire_splitter *s, const void *buf, size_t len, wire_message_fn fn,
                       void *opaque);
/* Drop any partial message (used when a transport reconnects and the peer is new). */
void wire_splitter_reset(struct wire_splitter *s);
/* Bytes currently held for a partial message (for memory accounting and tests). */
size_t wire_splitter_pending(const struct wire_splitter *s);

/* ---- requests ---- */
struct wire_request {
        const char *execute; /* borrowed from msg */
        json_t *arguments;   /* borrowed; NULL when absent */
        json_t *id;          /* borrowed; NULL when absent */
};

/*
 * Check a top-level message against QMP's request rules and fill req. On error, req->id is
 * still set when the message is an object with an "id", so the error reply can carry it
 * (qemu-ga does the same). Members are checked in qemu's QDict order. Texts:
 * "QMP input must be a JSON object", "QMP input lacks member 'execute'",
 * "QMP input member 'execute' must be a string", "QMP input member 'arguments' must be an object",
 * "QMP input member 'X' is unexpected".
 */
int wire_request_parse(json_t *msg, struct wire_request *req, struct tt_error *err);

/* ---- argument specs (declared as data, checked before handlers run) ---- */
enum wire_type {
        WIRE_T_INT,    /* int64 */
        WIRE_T_UINT64, /* uint64 (negative ints accepted, as qemu does); else "Parameter 'x' expects uint64" */
        WIRE_T_NUMBER, /* any JSON number */
        WIRE_T_STRING,
        WIRE_T_BOOL,
        WIRE_T_ARRAY,  /* elements checked against .elem (and .members when elem is OBJECT) */
        WIRE_T_OBJECT, /* members checked against .members when not NULL, else anything */
        WIRE_T_ENUM,   /* string restricted to .enum_values */
        WIRE_T_ALT_INT_ENUM,  /* an int, or a string from .enum_values (guest-file-seek whence) */
        WIRE_T_ALT_BOOL_ENUM, /* a bool, or a string from .enum_values (guest-exec capture-output) */
        WIRE_T_ANY,
};

struct wire_arg {
        const char *name;                /* member name; NULL ends a spec array */
        enum wire_type type;             /* expected JSON type */
        bool required;                   /* missing -> "Parameter 'x' is missing" */
        enum wire_type elem;             /* element type of WIRE_T_ARRAY */
        const struct wire_arg *members;  /* spec of an object (or of array elements that are objects) */
        const char *const *enum_values;  /* NULL-terminated names for ENUM and ALT_* */
        const char *type_name;           /* qemu's name in "expected: X" for enums/alternates */
};

/*
 * Check args (may be NULL = no arguments) against spec (terminated by a {NULL} row), in qemu's
 * order: each declared member in order (missing, then type), then any undeclared member
 * ("Parameter 'x' is unexpected"). Nested names read like qemu's: "vcpus[0].online".
 */
int wire_args_check(const struct wire_arg *spec, json_t *args, struct tt_error *err);

/* ---- output ---- */

/* Where bytes go: return 0, or negative when the peer is gone (output is then discarded). */
typedef int (*wire_sink_fn)(void *opaque, const void *buf, size_t len);

/* A buffered writer in front of a sink; big writes go straight through. */
struct wire_out;
struct wire_out *wire_out_new(wire_sink_fn sink, void *opaque);
void wire_out_free(struct wire_out *out);
int wire_out_write(struct wire_out *out, const void *buf, size_t len);
int wire_out_puts(struct wire_out *out, const char *s);
int wire_out_flush(struct wire_out *out);
/* Bytes buffered but not yet given to the sink. */
size_t wire_out_pending(const struct wire_out *out);
/*
 * A new peer took over the sink: drop what was buffered for the old one and forget that the
 * sink failed, so replies flow again.
 */
void wire_out_reset(struct wire_out *out);

/*
 * Serialise v as qemu's json-writer does: ", " and ": " separators, '"' '\\' \b \f \n \r \t
 * escaped, other bytes < 0x20 and >= 0x7f as \uXXXX (uppercase hex, surrogate pairs beyond the
 * BMP, invalid UTF-8 as \uFFFD), '/' not escaped, integers in decimal, reals with %.17g.
 */
int wire_dump(struct wire_out *out, const json_t *v);
/* Serialise into a malloc'd NUL-terminated string (tests, logs, small replies). */
char *wire_dumps(const json_t *v);
/* Write a JSON string literal of len raw bytes (may hold invalid UTF-8), quoted and escaped. */
int wire_dump_string(struct wire_out *out, const char *s, size_t len);

/* {"return": ret, "id": id}\n  (id omitted when NULL); ret NULL writes {} */
int wire_write_return(struct wire_out *out, const json_t *ret, const json_t *id);
/* {"id": id, "error": {"class": cls, "desc": desc}}\n  (id omitted when NULL): qemu-ga's order */
int wire_write_error(struct wire_out *out, const char *cls, const char *desc, const json_t *id);
/* The same with a desc of desc_len bytes that may hold NUL (written as \u0000). */
int wire_write_error_len(struct wire_out *out, const char *cls, const char *desc, size_t desc_len,
                         const json_t *id);

/*
 * Streamed replies (guest-file-read): wire_write_return_begin() writes `{"return": `, the caller
 * writes the value itself with wire_out_* / wire_dump*, then wire_write_return_end() writes the
 * id, the closing brace and the newline.
 */
int wire_write_return_begin(struct wire_out *out);
int wire_write_return_end(struct wire_out *out, const json_t *id);

/* Base64 of len bytes straight into out, in chunks (no big intermediate buffer). */
int wire_write_base64(struct wire_out *out, const void *buf, size_t len);

#endif
