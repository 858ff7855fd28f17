/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The web console's parsers (web_parse.h) on what a browser or the command line sends: the
 * input is at once a Cookie header, a request path and a --web-listen value. Invariants: a
 * cookie value found is the text after "tether_session=" up to ';' and fits; a domain name
 * found is not empty and fits, and the rest of the path is empty or starts with '/'; a listen
 * value is an address and a port, or a refusal that says why.
 */
#include "fuzz.h"

#include <string.h>

#include "host/web_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *in = fuzz_strndup(data, size);
        char value[65], name[256], *addr = NULL;
        const char *rest = NULL;
        struct tt_error err = {0};
        uint16_t port = 0;

        if (web_cookie_value(in, "tether_session", value, sizeof(value))) {
                char *at = strstr(in, "tether_session=");

                FUZZ_CHECK(at != NULL && strlen(value) < sizeof(value));
                FUZZ_CHECK(strchr(value, ';') == NULL);
        }
        if (web_path_domain(in, name, sizeof(name), &rest)) {
                FUZZ_CHECK(strncmp(in, "/api/domains/", 13) == 0);
                FUZZ_CHECK(name[0] != '\0' && strlen(name) < sizeof(name));
                FUZZ_CHECK(rest >= in && rest <= in + strlen(in));
                FUZZ_CHECK(rest[0] == '\0' || rest[0] == '/');
        }
        if (web_parse_listen(in, "web listen", &addr, &port, &err) == 0) {
                FUZZ_CHECK(addr != NULL && err.msg == NULL);
                (void)web_is_loopback(addr);
                free(addr);
        } else {
                FUZZ_CHECK(addr == NULL && err.msg != NULL && err.msg[0] != '\0');
                tt_error_clear(&err);
        }
        free(in);
        return 0;
}
