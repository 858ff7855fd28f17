/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The web console's parsers of what a browser or the command line sends: pure functions, so
 * that tests/fuzz/fuzz_web.c drives them as web.c does.
 */
#ifndef TT_HOST_WEB_PARSE_H
#define TT_HOST_WEB_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/tt_error.h"

/*
 * The value of cookie name in a Cookie header ("a=1; b=2"), copied into out (size bytes, NUL
 * included); false when it is absent or does not fit.
 */
bool web_cookie_value(const char *header, const char *name, char *out, size_t size);
/*
 * The NAME of a path "/api/domains/NAME[/REST]", percent-decoded into out (size bytes); *rest
 * points at "/REST" or "" in path. False when there is no name, it decodes to nothing or to a
 * NUL, or it does not fit.
 */
bool web_path_domain(const char *path, char *out, size_t size, const char **rest);
/*
 * [ADDR:]PORT, :PORT or [ADDR6]:PORT (--metrics-listen, --web-listen) into a malloc'd address
 * (127.0.0.1 when none is given) and a port. A refusal says "invalid WHAT address '...'".
 */
int web_parse_listen(const char *spec, const char *what, char **addr, uint16_t *port,
                     struct tt_error *err);
/* Is addr a loopback address (127.0.0.0/8, ::1, "localhost")? Only those may serve HTTP. */
bool web_is_loopback(const char *addr);
/*
 * A library file's path below its folder (noVNC's "core/rfb.js"): letters, digits, '_', '-',
 * '.' and '/' only, no empty, "." or ".." component, no leading '/', and ending in ".js".
 */
bool web_lib_path_ok(const char *rel);

#endif
