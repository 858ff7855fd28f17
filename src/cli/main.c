/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tether [-c URI] [--root DIR] VERB [--json] [options] [arguments] */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: tether [-c URI] [--root DIR] VERB [--json] [OPTIONS] [ARGS]\n"
                "Tether's CLI; verbs, options and output follow virsh.\n"
                "\n"
                "  -c, --connect URI  tether:///system (default, or $TETHER_DEFAULT_URI),\n"
                "                     tether:///system?socket=PATH, tether+ssh://[user@]host[:port]/system\n"
                "                     (ssh: ?socket=PATH&keyfile=PATH&known_hosts=PATH&no_verify=1\n"
                "                     &command=SSH, as libvirt's remote URIs)\n"
                "      --root DIR     the daemon runs with --root DIR (local socket under DIR)\n"
                "  -q, --quiet        no table headers\n"
                "      --json         machine-readable output\n"
                "\nVerbs:\n");
        cli_verbs_usage(out);
}

/*
 * The verb table's own string for an option, or NULL. An option with a value is listed once
 * per value ("mode=acpi", "mode=agent"): `--mode agent` and `--mode=agent` both find
 * "mode=agent". With len, only the first len bytes of name count.
 */
static const char *verb_option(const struct cli_verb *v, const char *name, size_t len)
{
        for (size_t i = 0; i < CLI_MAX_FLAGS && v->options[i]; i++)
                if (strlen(v->options[i]) == len && strncmp(v->options[i], name, len) == 0)
                        return v->options[i];
        return NULL;
}

/* Does the verb take `--name VALUE` (some "name=..." row)? */
static bool verb_has_valued(const struct cli_verb *v, const char *name, size_t len)
{
        for (size_t i = 0; i < CLI_MAX_FLAGS && v->options[i]; i++)
                if (strncmp(v->options[i], name, len) == 0 && v->options[i][len] == '=')
                        return true;
        return false;
}

/*
 * --name VALUE or --name=VALUE for a valued option. A row "name=value" accepts that value, a
 * row "name=#" any whole number. Returns "name=value" (stored in buf), or NULL after an error.
 */
static const char *valued_option(const struct cli_verb *v, const char *a, const char *next,
                                 char *buf, size_t size)
{
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : next;
        char numeric[64];
        int64_t num;
        int n;

        snprintf(numeric, sizeof(numeric), "%.*s=#", (int)nlen, a);
        if (value == NULL) {
                cli_error("expected syntax: --%.*s <%s>", (int)nlen, a,
                          verb_option(v, numeric, strlen(numeric)) ? "number" : "string");
                return NULL;
        }
        n = snprintf(buf, size, "%.*s=%s", (int)nlen, a, value);
        if (n > 0 && (size_t)n < size && verb_option(v, buf, (size_t)n))
                return buf;
        if (verb_option(v, numeric, strlen(numeric))) {
                if (tt_parse_int64(value, 10, &num) == 0 && num >= 0)
                        return buf;
                cli_error("Numeric value '%s' for <%.*s> option is malformed or out of range",
                          value, (int)nlen, a);
                return NULL;
        }
        cli_error("invalid value '%s' for option --%.*s", value, (int)nlen, a);
        return NULL;
}

/* A boolean option becomes "name": true; "name=value" becomes "name": value (a number if whole). */
static void add_option_arg(json_t *args, const char *opt)
{
        const char *eq = strchr(opt, '=');
        char key[128];
        int64_t num;

        if (eq == NULL || (size_t)(eq - opt) >= sizeof(key)) {
                json_object_set_new(args, opt, json_true());
                return;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - opt), opt);
        if (tt_parse_int64(eq + 1, 10, &num) == 0)
                json_object_set_new(args, key, json_integer(num));
        else
                json_object_set_new(args, key, json_string(eq + 1));
}

/* `tether proxy [--socket PATH | --root DIR]`: the far end of tether+ssh://. */
static int run_proxy(int argc, char **argv, const char *root)
{
        const char *sock = NULL;
        _cleanup_free_ char *path = NULL;
        struct tt_error err = {0};

        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
                        sock = argv[++i];
                else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
                        root = argv[++i];
        }
        if (sock == NULL) {
                path = cli_socket_path(NULL, root, &err);
                sock = path;
        }
        if (sock == NULL || cli_proxy(sock, &err) < 0) {
                cli_error("%s", err.msg ? err.msg : "out of memory");
                tt_error_clear(&err);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
        const char *uri = getenv("TETHER_DEFAULT_URI");
        const char *root = NULL;
        const struct cli_verb *verb;
        struct cli_opts o = {0};
        static char valued[CLI_MAX_FLAGS][256]; /* "name=value" of valued options */
        struct cli_conn conn;
        struct tt_error err = {0};
        _cleanup_json_ json_t *args = json_object();
        _cleanup_json_ json_t *reply = NULL;
        json_t *ret, *error;
        int i = 1;

        /* A peer (tetherd, ssh) that goes away is an error reply, not a silent death. */
        signal(SIGPIPE, SIG_IGN);
        /* Table columns are padded by display width in the user's character set, as virsh. */
        setlocale(LC_CTYPE, "");

        for (; i < argc && argv[i][0] == '-'; i++) {
                if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--connect") == 0) &&
                    i + 1 < argc) {
                        uri = argv[++i];
                } else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
                        root = argv[++i];
                } else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
                        o.quiet = true;
                } else if (strcmp(argv[i], "--json") == 0) {
                        o.json = true;
                } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        usage(stdout);
                        return EXIT_SUCCESS;
                } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
                        printf("tether %s\n", TETHER_VERSION);
                        return EXIT_SUCCESS;
                } else if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--connect") == 0 ||
                           strcmp(argv[i], "--root") == 0) {
                        cli_error("option '%s' requires an argument", argv[i]);
                        return EXIT_FAILURE;
                } else {
                        cli_error("unsupported option '%s'. See --help.", argv[i]);
                        return EXIT_FAILURE;
                }
        }
        if (i >= argc) {
                usage(stderr);
                return EXIT_FAILURE;
        }
        if (strcmp(argv[i], "proxy") == 0)
                return run_proxy(argc - i - 1, argv + i + 1, root);
        verb = cli_verb_find(argv[i]);
        if (verb == NULL) {
                cli_error("unknown command: '%s'", argv[i]);
                return EXIT_FAILURE;
        }
        for (i++; i < argc; i++) {
                const char *a = argv[i];
                const char *name = a[0] == '-' && a[1] == '-' ? a + 2 : NULL;

                if (strcmp(a, "--json") == 0) {
                        o.json = true;
                } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
                        o.quiet = true;
                } else if (name && verb_option(verb, name, strlen(name))) {
                        if (o.nflags < CLI_MAX_FLAGS)
                                o.flags[o.nflags++] = name;
                } else if (name && verb_has_valued(verb, name, strcspn(name, "="))) {
                        char *buf = valued[o.nflags < CLI_MAX_FLAGS ? o.nflags : 0];
                        const char *opt = valued_option(verb, name,
                                                        strchr(a, '=') || i + 1 >= argc
                                                                ? NULL
                                                                : argv[i + 1],
                                                        buf, sizeof(valued[0]));

                        if (opt == NULL)
                                return EXIT_FAILURE;
                        if (strchr(a, '=') == NULL)
                                i++;
                        if (o.nflags < CLI_MAX_FLAGS)
                                o.flags[o.nflags++] = opt;
                } else if (strncmp(a, "--", 2) == 0 && strcmp(a, "--domain") == 0 &&
                           i + 1 < argc && o.npos < CLI_MAX_POS) {
                        o.pos[o.npos++] = argv[++i];
                } else if (a[0] == '-' && a[1] != '\0') {
                        cli_error("command '%s' doesn't support option %s", verb->name, a);
                        return EXIT_FAILURE;
                } else if (o.npos < CLI_MAX_POS) {
                        o.pos[o.npos++] = a;
                } else {
                        cli_error("unexpected data '%s'", a);
                        return EXIT_FAILURE;
                }
        }
        if (o.npos < verb->npos) {
                cli_error("command '%s' requires <%s> option", verb->name,
                          strcmp(verb->execute, "define") == 0 ||
                                          strcmp(verb->execute, "create") == 0
                                  ? "file"
                                  : "domain");
                return EXIT_FAILURE;
        }
        if (o.npos > verb->npos) {
                cli_error("unexpected data '%s'", o.pos[verb->npos]);
                return EXIT_FAILURE;
        }
        for (size_t f = 0; f < o.nflags; f++)
                add_option_arg(args, o.flags[f]);
        /* list-style flags are applied here, not by the daemon; send only what it takes. */
        if (strcmp(verb->execute, "list") == 0 || strcmp(verb->execute, "dominfo") == 0) {
                json_decref(args);
                args = json_object();
        }
        if (verb->args && verb->args(args, &o) < 0)
                return EXIT_FAILURE;
        if (cli_connect(&conn, uri, root, &err) < 0) {
                cli_error("%s", err.msg);
                tt_error_clear(&err);
                return EXIT_FAILURE;
        }
        reply = cli_call(&conn, verb->execute, args, &err);
        cli_disconnect(&conn);
        if (reply == NULL) {
                cli_error("%s", err.msg);
                tt_error_clear(&err);
                return EXIT_FAILURE;
        }
        error = json_object_get(reply, "error");
        if (error) {
                cli_error("%s", json_string_value(json_object_get(error, "desc")));
                return EXIT_FAILURE;
        }
        ret = json_object_get(reply, "return");
        if (verb->print)
                return verb->print(ret, &o) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (o.json) {
                cli_print_json(ret);
        } else if (verb->done && !o.quiet) {
                /* virsh prints confirmations with vshPrintExtra, which --quiet silences. */
                const char *name = json_string_value(json_object_get(ret, "name"));
                const char *msg = verb->done_alt && o.nflags ? verb->done_alt : verb->done;

                if (name == NULL)
                        name = o.pos[0];
                /* The templates are the verb table's own constants, with %s slots only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                printf(msg, name, o.pos[0]);
#pragma GCC diagnostic pop
                printf("\n\n");
        }
        return EXIT_SUCCESS;
}
