/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Argument checking against a declared spec, with the texts and order of qemu's QAPI input
 * visitor (checked against qemu-ga 7.2):
 *   "Parameter 'x' is missing"
 *   "Invalid parameter type for 'x', expected: integer|number|string|boolean|object|array|<alt>"
 *   "Parameter 'x' expects uint64"
 *   "Parameter 'x' does not accept value 'y'"      (enum; x is the bare member name)
 *   "Parameter 'x' is unexpected"
 * and one check of our own: a string holding U+0000 is refused with
 *   "Parameter 'x' must not contain a NUL character"
 * (qemu-ga keeps "\u0000" as the two bytes C0 80 of modified UTF-8, so "/x\u0000.log" names
 * a file with those bytes in it; our handlers take C strings, which would end at the NUL and
 * act on "/x" instead. Refusing is the only reading that cannot hit the wrong object.)
 * Declared members are visited in spec order (nested objects completely, their own unexpected
 * members included) before the undeclared members of the enclosing object are reported.
 * Full names read like qemu's: "arg[2]", "vcpus[0].online".
 *
 * Known difference: with several undeclared members qemu names the first one in GHashTable
 * order; we name the first in the request.
 */
#include "wire/wire.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A member's full name as qemu's full_name() builds it; spec names are short. */
struct name {
        char buf[256]; /* NUL-terminated */
};

static void name_member(struct name *out, const char *prefix, const char *member)
{
        if (prefix && prefix[0])
                snprintf(out->buf, sizeof(out->buf), "%s.%s", prefix, member);
        else
                snprintf(out->buf, sizeof(out->buf), "%s", member);
}

static int type_error(struct tt_error *err, const char *full, const char *expected)
{
        return tt_error_set(err, EINVAL, "Invalid parameter type for '%s', expected: %s", full,
                            expected);
}

/* Handlers read strings as C strings: refuse one that would end early at an embedded NUL. */
static int check_no_nul(json_t *v, const char *full, struct tt_error *err)
{
        if (strlen(json_string_value(v)) == json_string_length(v))
                return 0;
        return tt_error_set(err, EINVAL, "Parameter '%s' must not contain a NUL character", full);
}

static int check_enum(const struct wire_arg *a, json_t *v, const char *full, const char *bare,
                      struct tt_error *err)
{
        const char *s = json_string_value(v);

        if (check_no_nul(v, full, err) < 0)
                return -1;
        for (const char *const *e = a->enum_values; e && *e; e++) {
                if (strlen(*e) == json_string_length(v) && strcmp(*e, s) == 0)
                        return 0;
        }
        return tt_error_set(err, EINVAL, "Parameter '%s' does not accept value '%s'",
                            bare ? bare : "null", s);
}

static int check_members(const struct wire_arg *spec, json_t *obj, const char *prefix,
                         struct tt_error *err);

/* A uint64 that jansson holds as a real because it is beyond int64 (see parser.c). */
static bool real_is_big_uint(json_t *v)
{
        double d = json_real_value(v);

        return json_is_real(v) && d >= 9223372036854775808.0 && d <= 18446744073709551616.0 &&
               floor(d) == d;
}

/*
 * Check one value. full: qemu's full name (for type errors); bare: the member name, NULL for
 * list elements (enum and alternate errors use it, as qemu does).
 */
static int check_value(const struct wire_arg *a, enum wire_type type, json_t *v,
                       const char *full, const char *bare, struct tt_error *err)
{
        switch (type) {
        case WIRE_T_INT:
                return json_is_integer(v) ? 0 : type_error(err, full, "integer");
        case WIRE_T_UINT64:
                /* qemu also takes negative integers here, for backward compatibility */
                if (json_is_integer(v) || real_is_big_uint(v))
                        return 0;
                return tt_error_set(err, EINVAL, "Parameter '%s' expects uint64", full);
        case WIRE_T_NUMBER:
                return json_is_number(v) ? 0 : type_error(err, full, "number");
        case WIRE_T_STRING:
                return json_is_string(v) ? check_no_nul(v, full, err)
                                         : type_error(err, full, "string");
        case WIRE_T_BOOL:
                return json_is_boolean(v) ? 0 : type_error(err, full, "boolean");
        case WIRE_T_ENUM:
                if (!json_is_string(v))
                        return type_error(err, full, "string");
                return check_enum(a, v, full, bare, err);
        case WIRE_T_ALT_INT_ENUM:
                if (json_is_number(v))
                        return json_is_integer(v) ? 0 : type_error(err, full, "integer");
                if (json_is_string(v))
                        return check_enum(a, v, full, bare, err);
                return type_error(err, bare ? bare : "null", a->type_name ? a->type_name : "");
        case WIRE_T_ALT_BOOL_ENUM:
                if (json_is_boolean(v))
                        return 0;
                if (json_is_string(v))
                        return check_enum(a, v, full, bare, err);
                return type_error(err, bare ? bare : "null", a->type_name ? a->type_name : "");
        case WIRE_T_OBJECT:
                if (!json_is_object(v))
                        return type_error(err, full, "object");
                return a->members ? check_members(a->members, v, full, err) : 0;
        case WIRE_T_ARRAY: {
                struct name elem;

                if (!json_is_array(v))
                        return type_error(err, full, "array");
                for (size_t i = 0; i < json_array_size(v); i++) {
                        snprintf(elem.buf, sizeof(elem.buf), "%s[%zu]", full, i);
                        if (a->elem == WIRE_T_OBJECT && a->members) {
                                json_t *e = json_array_get(v, i);

                                if (!json_is_object(e))
                                        return type_error(err, elem.buf, "object");
                                if (check_members(a->members, e, elem.buf, err) < 0)
                                        return -1;
                        } else if (check_value(a, a->elem, json_array_get(v, i), elem.buf, NULL,
                                               err) < 0) {
                                return -1;
                        }
                }
                return 0;
        }
        case WIRE_T_ANY:
        default:
                return 0;
        }
}

static int check_members(const struct wire_arg *spec, json_t *obj, const char *prefix,
                         struct tt_error *err)
{
        const char *key;
        json_t *v;
        struct name full;

        for (const struct wire_arg *a = spec; a && a->name; a++) {
                v = obj ? json_object_get(obj, a->name) : NULL;
                name_member(&full, prefix, a->name);
                if (v == NULL) {
                        if (a->required)
                                return tt_error_set(err, EINVAL, "Parameter '%s' is missing",
                                                    full.buf);
                        continue;
                }
                if (check_value(a, a->type, v, full.buf, a->name, err) < 0)
                        return -1;
        }
        if (obj == NULL)
                return 0;
        json_object_foreach(obj, key, v) {
                const struct wire_arg *a = spec;

                while (a && a->name && strcmp(a->name, key) != 0)
                        a++;
                if (a == NULL || a->name == NULL) {
                        if (prefix && prefix[0])
                                return tt_error_set(err, EINVAL, "Parameter '%s.%s' is unexpected",
                                                    prefix, key);
                        return tt_error_set(err, EINVAL, "Parameter '%s' is unexpected", key);
                }
        }
        return 0;
}

int wire_args_check(const struct wire_arg *spec, json_t *args, struct tt_error *err)
{
        if (args && !json_is_object(args))
                return type_error(err, "<anonymous>", "object");
        return check_members(spec, args, NULL, err);
}
