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

/* Strings made from the command line (options with values, joined words), freed at exit. */
static struct {
        char *s[2 * CLI_MAX_OPTS + 256]; /* the strings */
        size_t n;                        /* how many */
} argpool;

static void argpool_free(void)
{
        for (size_t k = 0; k < argpool.n; k++)
                free(argpool.s[k]);
        argpool.n = 0;
}

/* Keep s until exit; NULL (and s freed) when the pool is full. */
static char *argpool_keep(char *s)
{
        if (argpool.n == 0)
                atexit(argpool_free);
        if (argpool.n == sizeof(argpool.s) / sizeof(argpool.s[0])) {
                free(s);
                cli_error("too many arguments");
                return NULL;
        }
        argpool.s[argpool.n++] = s;
        return s;
}

/*
 * --name VALUE or --name=VALUE for a valued option. A row "name=value" accepts that value, a
 * row "name=#" any whole number, "name=i" any integer (negative too), "name=*" any string.
 * Returns "name=value" (in the argument pool), or NULL after an error.
 */
static const char *valued_option(const struct cli_verb *v, const char *a, const char *next)
{
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const char *value = eq ? eq + 1 : next;
        char numeric[64], signed_num[64], any[64];
        char *buf = NULL;
        int64_t num;
        int n;

        snprintf(numeric, sizeof(numeric), "%.*s=#", (int)nlen, a);
        snprintf(signed_num, sizeof(signed_num), "%.*s=i", (int)nlen, a);
        snprintf(any, sizeof(any), "%.*s=*", (int)nlen, a);
        if (value == NULL) {
                cli_error("expected syntax: --%.*s <%s>", (int)nlen, a,
                          verb_option(v, numeric, strlen(numeric)) ||
                                          verb_option(v, signed_num, strlen(signed_num))
                                  ? "number"
                                  : "string");
                return NULL;
        }
        n = asprintf(&buf, "%.*s=%s", (int)nlen, a, value);
        if (n < 0 || argpool_keep(buf) == NULL)
                return NULL;
        if (verb_option(v, buf, (size_t)n) || verb_option(v, any, strlen(any)))
                return buf;
        if (verb_option(v, signed_num, strlen(signed_num)) &&
            tt_parse_int64(value, 10, &num) == 0)
                return buf;
        if (verb_option(v, numeric, strlen(numeric)) ||
            verb_option(v, signed_num, strlen(signed_num))) {
                if (tt_parse_int64(value, 10, &num) == 0 && num >= 0)
                        return buf;
                cli_error("Numeric value '%s' for <%.*s> option is malformed or out of range",
                          value, (int)nlen, a);
                return NULL;
        }
        cli_error("invalid value '%s' for option --%.*s", value, (int)nlen, a);
        return NULL;
}

/* shutdown/reboot --mode LIST: a comma list of acpi and agent, as virsh's check words it. */
static int check_power_mode(const struct cli_verb *v, const char *list)
{
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL;

        if (copy == NULL)
                return -1;
        for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
                if (strcmp(m, "acpi") == 0 || strcmp(m, "agent") == 0)
                        continue;
                if (strcmp(m, "initctl") == 0 || strcmp(m, "signal") == 0 ||
                    strcmp(m, "paravirt") == 0) {
                        cli_error("mode '%s' is not supported by tether (acpi and agent are)", m);
                        return -1;
                }
                /* virsh's two texts differ by a comma. */
                cli_error("Unknown mode %s value, expecting 'acpi', 'agent', 'initctl', "
                          "'signal'%s or 'paravirt'",
                          m, strcmp(v->name, "shutdown") == 0 ? "," : "");
                return -1;
        }
        return 0;
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

/*
 * A verb failed after its error line. virsh ends every command with a newline on stdout, after
 * an error too (vshPrintExtra, silenced by --quiet); verbs marked error_newline do the same.
 */
static int verb_failed(const struct cli_verb *verb, const struct cli_opts *o)
{
        if (verb->error_newline && !o->quiet)
                printf("\n");
        return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
        const char *uri = getenv("TETHER_DEFAULT_URI");
        const char *root = NULL;
        const struct cli_verb *verb;
        struct cli_opts o = {0};
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

                if (strcmp(a, "--") == 0) {
                        /* The rest is data: exec's command, or more positionals. */
                        if (verb->take_rest) {
                                o.rest = argv + i + 1;
                                o.nrest = (size_t)(argc - i - 1);
                                break;
                        }
                        for (i++; i < argc; i++) {
                                if (o.npos >= CLI_MAX_POS) {
                                        cli_error("unexpected data '%s'", argv[i]);
                                        return EXIT_FAILURE;
                                }
                                o.pos[o.npos++] = argv[i];
                        }
                        break;
                } else if (strcmp(a, "--json") == 0) {
                        o.json = true;
                } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
                        o.quiet = true;
                } else if (name && verb_option(verb, name, strlen(name))) {
                        if (o.nflags >= CLI_MAX_OPTS) {
                                cli_error("too many options");
                                return EXIT_FAILURE;
                        }
                        o.flags[o.nflags++] = name;
                } else if (name && verb_has_valued(verb, name, strcspn(name, "="))) {
                        const char *opt = valued_option(verb, name,
                                                        strchr(a, '=') || i + 1 >= argc
                                                                ? NULL
                                                                : argv[i + 1]);

                        if (opt == NULL)
                                return EXIT_FAILURE;
                        if (strchr(a, '=') == NULL)
                                i++;
                        if (strncmp(opt, "mode=", 5) == 0 && check_power_mode(verb, opt + 5) < 0)
                                return EXIT_FAILURE;
                        if (o.nflags >= CLI_MAX_OPTS) {
                                cli_error("too many options");
                                return EXIT_FAILURE;
                        }
                        o.flags[o.nflags++] = opt;
                } else if (strncmp(a, "--", 2) == 0 && strcmp(a, "--domain") == 0 &&
                           i + 1 < argc && o.npos < CLI_MAX_POS) {
                        o.pos[o.npos++] = argv[++i];
                } else if (a[0] == '-' && a[1] != '\0' &&
                           !(verb->join_rest && o.npos >= verb->npos)) {
                        cli_error("command '%s' doesn't support option %s", verb->name, a);
                        return EXIT_FAILURE;
                } else if (verb->join_rest && verb->npos > 0 && o.npos >= verb->npos) {
                        /* virsh's ARGV: the last argument takes every further word. */
                        char *joined = NULL;

                        if (asprintf(&joined, "%s %s", o.pos[verb->npos - 1], a) < 0 ||
                            argpool_keep(joined) == NULL)
                                return EXIT_FAILURE;
                        o.pos[verb->npos - 1] = joined;
                } else if (o.npos < CLI_MAX_POS) {
                        o.pos[o.npos++] = a;
                } else {
                        cli_error("unexpected data '%s'", a);
                        return EXIT_FAILURE;
                }
        }
        if (o.npos < verb->npos) {
                const char *what = verb->posname[o.npos];

                if (what == NULL)
                        what = strcmp(verb->execute, "define") == 0 ||
                                               strcmp(verb->execute, "create") == 0
                                       ? "file"
                                       : "domain";
                cli_error("command '%s' requires <%s> option", verb->name, what);
                return EXIT_FAILURE;
        }
        if (o.npos > verb->npos && !verb->many_pos) {
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
                return verb_failed(verb, &o);
        if (cli_connect(&conn, uri, root, &err) < 0) {
                cli_error("%s", err.msg);
                tt_error_clear(&err);
                return EXIT_FAILURE;
        }
        if (verb->run) {
                int status = verb->run(&conn, args, &o);

                cli_disconnect(&conn);
                return status;
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
                /* virsh's own line before libvirt's error, e.g. "Unable to freeze filesystems";
                   not when the domain was not found (virsh looks it up first). */
                const char *class = json_string_value(json_object_get(error, "class"));

                if (verb->fail && !(class && strcmp(class, "NoDomain") == 0)) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                        fputs("error: ", stderr);
                        fprintf(stderr, verb->fail, o.pos[0]);
                        fputc('\n', stderr);
#pragma GCC diagnostic pop
                }
                cli_error("%s", json_string_value(json_object_get(error, "desc")));
                return verb_failed(verb, &o);
        }
        ret = json_object_get(reply, "return");
        if (verb->print)
                return verb->print(ret, &o) < 0 ? verb_failed(verb, &o) : EXIT_SUCCESS;
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
