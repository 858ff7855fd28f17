/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "host/web_parse.h"
#include "common/cleanup.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The path prefix of one domain's resources. */
#define DOMAINS_PREFIX "/api/domains/"

bool web_cookie_value(const char *header, const char *name, char *out, size_t size)
{
        size_t nlen = strlen(name);
        const char *p = header;

        while (p && *p) {
                size_t len;

                while (*p == ' ' || *p == ';')
                        p++;
                len = strcspn(p, ";");
                if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
                        size_t vlen = len - nlen - 1;

                        if (vlen >= size)
                                return false;
                        memcpy(out, p + nlen + 1, vlen);
                        out[vlen] = '\0';
                        return true;
                }
                p += len;
        }
        return false;
}

bool web_path_domain(const char *path, char *out, size_t size, const char **rest)
{
        const char *p;
        size_t len, dlen;
        _cleanup_free_ char *enc = NULL, *dec = NULL;

        if (strncmp(path, DOMAINS_PREFIX, strlen(DOMAINS_PREFIX)) != 0)
                return false;
        p = path + strlen(DOMAINS_PREFIX);
        len = strcspn(p, "/");
        if (len == 0 || (enc = strndup(p, len)) == NULL)
                return false;
        /* decode_plus 0: '+' stays itself in a path. */
        dec = evhttp_uridecode(enc, 0, &dlen);
        /* "%00" would cut the name short: refuse it rather than look up another domain. */
        if (dec == NULL || dlen == 0 || dlen != strlen(dec) || dlen >= size)
                return false;
        memcpy(out, dec, dlen + 1);
        *rest = p + len;
        return true;
}

static int parse_port(const char *text, uint16_t *port)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < 0 || v > 65535)
                return -1;
        *port = (uint16_t)v;
        return 0;
}

int web_parse_listen(const char *spec, const char *what, char **addr, uint16_t *port,
                     struct tt_error *err)
{
        const char *colon;

        if (spec[0] == '[') {
                const char *close = strchr(spec, ']');
                if (close == NULL || close[1] != ':')
                        goto bad;
                *addr = strndup(spec + 1, close - spec - 1);
                colon = close + 1;
        } else {
                colon = strrchr(spec, ':');
                if (colon && memchr(spec, ':', colon - spec))
                        goto bad; /* an IPv6 address needs brackets */
                if (colon == NULL || colon == spec)
                        *addr = strdup("127.0.0.1");
                else
                        *addr = strndup(spec, colon - spec);
        }
        if (*addr == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (parse_port(colon ? colon + 1 : spec, port) < 0) {
                free(steal_pointer(addr));
                goto bad;
        }
        return 0;
bad:
        return tt_error_set(err, EINVAL,
                            "invalid %s address '%s': expected ADDR:PORT, [ADDR]:PORT or PORT",
                            what, spec);
}

bool web_is_loopback(const char *addr)
{
        struct in_addr a4;
        struct in6_addr a6;

        if (strcmp(addr, "localhost") == 0)
                return true;
        if (inet_pton(AF_INET, addr, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, addr, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

bool web_lib_path_ok(const char *rel)
{
        size_t len = strlen(rel);
        const char *c = rel;

        if (len < 4 || len > 200 || strcmp(rel + len - 3, ".js") != 0)
                return false;
        for (const char *p = rel; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr("_-./", *p))
                        return false;
        /* Each component: not empty, not "." or "..". */
        while (*c) {
                size_t n = strcspn(c, "/");

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
                if (*c == '/')
                        c++;
                if (*c == '\0' && c[-1] == '/')
                        return false;
        }
        return true;
}
