/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "agent/config.h"
#include "agent/channel.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum key_type {
        KEY_STRING,
        KEY_BOOL,
        KEY_LIST,
        KEY_UINT,
};

/* The [general] keys: qemu-ga's, then Tether's own bounds. -D prints them in this order. */
static const struct config_key {
        const char *name;     /* key in [general] */
        enum key_type type;   /* how the value is parsed */
        size_t offset;        /* field in struct agent_config */
        bool dump_if_unset;   /* -D prints it even when empty (qemu-ga prints some always) */
} config_keys[] = {
        {"daemon", KEY_BOOL, offsetof(struct agent_config, daemonize), true},
        {"method", KEY_STRING, offsetof(struct agent_config, method), true},
        {"path", KEY_STRING, offsetof(struct agent_config, path), true},
        {"logfile", KEY_STRING, offsetof(struct agent_config, logfile), false},
        {"pidfile", KEY_STRING, offsetof(struct agent_config, pidfile), true},
        {"fsfreeze-hook", KEY_STRING, offsetof(struct agent_config, fsfreeze_hook), false},
        {"statedir", KEY_STRING, offsetof(struct agent_config, statedir), true},
        {"verbose", KEY_BOOL, offsetof(struct agent_config, verbose), true},
        {"debug", KEY_BOOL, offsetof(struct agent_config, debug), false},
        {"retry-path", KEY_BOOL, offsetof(struct agent_config, retry_path), true},
        {"block-rpcs", KEY_LIST, offsetof(struct agent_config, block_rpcs), true},
        {"allow-rpcs", KEY_LIST, offsetof(struct agent_config, allow_rpcs), false},
        {"max-file-handles", KEY_UINT, offsetof(struct agent_config, max_file_handles), true},
        {"max-exec", KEY_UINT, offsetof(struct agent_config, max_exec), true},
        {"exec-reap-seconds", KEY_UINT, offsetof(struct agent_config, exec_reap_seconds), true},
        {"freeze-timeout", KEY_UINT, offsetof(struct agent_config, freeze_timeout), true},
};

static const struct config_key *find_key(const char *name)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(config_keys); i++)
                if (strcmp(config_keys[i].name, name) == 0)
                        return &config_keys[i];
        /* qemu-ga before 7.2 called block-rpcs "blacklist"; keep old config files working. */
        if (strcmp(name, "blacklist") == 0)
                return find_key("block-rpcs");
        return NULL;
}

static int set_string(char **field, const char *value)
{
        char *copy = strdup(value);

        if (copy == NULL)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

/* Append the comma-separated names in value to a NULL-terminated list. */
static int list_add(char ***list, const char *value)
{
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL, *tok;
        size_t n = 0;

        if (copy == NULL)
                return -ENOMEM;
        while (*list && (*list)[n])
                n++;
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char **nl, *end;

                while (isspace((unsigned char)*tok))
                        tok++;
                /* "a , b": names are trimmed on both sides, as the line's value is */
                end = tok + strlen(tok);
                while (end > tok && isspace((unsigned char)end[-1]))
                        *--end = '\0';
                if (*tok == '\0')
                        continue;
                nl = reallocarray(*list, n + 2, sizeof(char *));
                if (nl == NULL)
                        return -ENOMEM;
                *list = nl;
                nl[n] = strdup(tok);
                if (nl[n] == NULL)
                        return -ENOMEM;
                nl[++n] = NULL;
        }
        return 0;
}

static int parse_bool(const char *v, bool *out)
{
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
                *out = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
                *out = false;
        else
                return -EINVAL;
        return 0;
}

static int set_key(struct agent_config *cfg, const struct config_key *k, const char *value,
                   struct tt_error *err)
{
        void *field = (char *)cfg + k->offset;
        uint64_t u;

        switch (k->type) {
        case KEY_STRING:
                if (set_string(field, value) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
                return 0;
        case KEY_BOOL:
                if (parse_bool(value, field) < 0)
                        return tt_error_set(err, EINVAL, "key '%s': '%s' is not a boolean",
                                            k->name, value);
                return 0;
        case KEY_LIST:
                if (list_add(field, value) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
                return 0;
        case KEY_UINT:
                if (tt_parse_uint64(value, 10, &u) < 0 || u > UINT32_MAX)
                        return tt_error_set(err, EINVAL,
                                            "key '%s': '%s' is not a non-negative integer",
                                            k->name, value);
                *(unsigned *)field = (unsigned)u;
                return 0;
        }
        return 0;
}

static char *trim(char *s)
{
        char *end;

        while (isspace((unsigned char)*s))
                s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
                *--end = '\0';
        return s;
}

int agent_config_load_file(struct agent_config *cfg, const char *path, struct tt_error *err)
{
        _cleanup_free_ char *text = NULL;
        char *line, *save = NULL;
        bool in_general = false;
        unsigned lineno = 0;

        if (tt_read_file(path, 1 << 20, &text, NULL, err) < 0)
                return tt_error_prefix(err, "error loading configuration");
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                const struct config_key *k;
                char *eq, *key, *value;

                lineno++;
                line = trim(line);
                if (*line == '\0' || *line == '#' || *line == ';')
                        continue;
                if (*line == '[') {
                        in_general = strcmp(line, "[general]") == 0;
                        continue;
                }
                if (!in_general)
                        continue;
                eq = strchr(line, '=');
                if (eq == NULL)
                        return tt_error_set(err, EINVAL, "%s: line '%s' is not key=value", path,
                                            line);
                *eq = '\0';
                key = trim(line);
                value = trim(eq + 1);
                k = find_key(key);
                if (k == NULL)
                        return tt_error_set(err, EINVAL, "%s: unknown key '%s' in [general]",
                                            path, key);
                if (set_key(cfg, k, value, err) < 0)
                        return tt_error_prefix(err, "%s", path);
        }
        return 0;
}

static void usage(FILE *out, const char *argv0)
{
        fprintf(out,
                "Usage: %s [-m <method> -p <path>] [<options>]\n"
                "Tether guest agent %s, a drop-in replacement for qemu-ga\n"
                "\n"
                "  -c, --config      configuration file (default %s)\n"
                "  -m, --method      transport method: one of unix-listen, virtio-serial,\n"
                "                    isa-serial, or vsock-listen (virtio-serial is the default)\n"
                "  -p, --path        device/socket path (default for virtio-serial:\n"
                "                    /dev/virtio-ports/org.qemu.guest_agent.0, for isa-serial:\n"
                "                    /dev/ttyS0); vsock-listen addresses are <cid>:<port>\n"
                "  -l, --logfile     set logfile path, logs to stderr by default\n"
                "  -f, --pidfile     pidfile when daemonizing (default %s)\n"
                "  -F, --fsfreeze-hook[=PATH]\n"
                "                    run a hook on freeze/thaw (default %s)\n"
                "  -t, --statedir    directory for state files (default %s)\n"
                "  -v, --verbose     log extra debugging information\n"
                "      --debug       log even more\n"
                "  -V, --version     print version information and exit\n"
                "  -d, --daemonize   become a daemon\n"
                "  -b, --block-rpcs  comma-separated list of RPCs to disable (\"help\" lists them)\n"
                "  -a, --allow-rpcs  comma-separated list of RPCs to enable (\"help\" lists them)\n"
                "  -D, --dump-conf   print a config file of the current settings and exit\n"
                "  -r, --retry-path  reopen the path when it fails instead of exiting\n"
                "  -h, --help        display this help and exit\n",
                argv0, TETHER_VERSION, AGENT_DEFAULT_CONFIG, AGENT_DEFAULT_PIDFILE,
                AGENT_DEFAULT_HOOK, AGENT_DEFAULT_STATEDIR);
}

static bool list_is_help(char **list)
{
        for (size_t i = 0; list && list[i]; i++)
                if (strcmp(list[i], "help") == 0 || strcmp(list[i], "?") == 0)
                        return true;
        return false;
}

static void set_defaults(struct agent_config *cfg)
{
        cfg->max_file_handles = 128;
        cfg->max_exec = 64;
        cfg->exec_reap_seconds = 600;
        cfg->freeze_timeout = 600;
}

static int fill_unset(struct agent_config *cfg)
{
        const char *path;

        if (cfg->method == NULL && set_string(&cfg->method, "virtio-serial") < 0)
                return -ENOMEM;
        path = agent_channel_default_path(cfg->method);
        if (cfg->path == NULL && path && set_string(&cfg->path, path) < 0)
                return -ENOMEM;
        if (cfg->pidfile == NULL && set_string(&cfg->pidfile, AGENT_DEFAULT_PIDFILE) < 0)
                return -ENOMEM;
        if (cfg->statedir == NULL && set_string(&cfg->statedir, AGENT_DEFAULT_STATEDIR) < 0)
                return -ENOMEM;
        return 0;
}

int agent_config_parse(struct agent_config *cfg, int argc, char **argv, enum agent_action *action,
                       struct tt_error *err)
{
        static const struct option longopts[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"config", required_argument, NULL, 'c'},
                {"dump-conf", no_argument, NULL, 'D'},
                {"logfile", required_argument, NULL, 'l'},
                {"pidfile", required_argument, NULL, 'f'},
                {"fsfreeze-hook", optional_argument, NULL, 'F'},
                {"verbose", no_argument, NULL, 'v'},
                {"debug", no_argument, NULL, 'g'},
                {"method", required_argument, NULL, 'm'},
                {"path", required_argument, NULL, 'p'},
                {"daemonize", no_argument, NULL, 'd'},
                {"block-rpcs", required_argument, NULL, 'b'},
                {"allow-rpcs", required_argument, NULL, 'a'},
                {"statedir", required_argument, NULL, 't'},
                {"retry-path", no_argument, NULL, 'r'},
                {NULL, 0, NULL, 0},
        };
        static const char shortopts[] = "hVc:Dl:f:F::vm:p:db:a:t:r";
        const char *conf = NULL;
        bool conf_required = false, dump = false;
        int c;

        *action = AGENT_RUN;
        set_defaults(cfg);
        /* First pass: only find -c, -h and -V, so the file is read before the options apply. */
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
                if (c == 'c') {
                        conf = optarg;
                        conf_required = true;
                } else if (c == 'h') {
                        usage(stdout, argv[0]);
                        *action = AGENT_EXIT_OK;
                        return 0;
                } else if (c == 'V') {
                        printf("Tether guest agent %s\n", TETHER_VERSION);
                        *action = AGENT_EXIT_OK;
                        return 0;
                }
        }
        if (conf == NULL) {
                conf = getenv("QGA_CONF");
                if (conf == NULL)
                        conf = AGENT_DEFAULT_CONFIG;
        }
        if (conf_required || access(conf, F_OK) == 0)
                if (agent_config_load_file(cfg, conf, err) < 0)
                        return -1;

        optind = 1;
        opterr = 1;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
                int r = 0;

                switch (c) {
                case 'c':
                        break;
                case 'D':
                        dump = true;
                        break;
                case 'l':
                        r = set_string(&cfg->logfile, optarg);
                        break;
                case 'f':
                        r = set_string(&cfg->pidfile, optarg);
                        break;
                case 'F':
                        r = set_string(&cfg->fsfreeze_hook, optarg ? optarg : AGENT_DEFAULT_HOOK);
                        break;
                case 'v':
                        cfg->verbose = true;
                        break;
                case 'g':
                        cfg->debug = true;
                        break;
                case 'm':
                        r = set_string(&cfg->method, optarg);
                        break;
                case 'p':
                        r = set_string(&cfg->path, optarg);
                        break;
                case 'd':
                        cfg->daemonize = true;
                        break;
                case 'b':
                        r = list_add(&cfg->block_rpcs, optarg);
                        break;
                case 'a':
                        r = list_add(&cfg->allow_rpcs, optarg);
                        break;
                case 't':
                        r = set_string(&cfg->statedir, optarg);
                        break;
                case 'r':
                        cfg->retry_path = true;
                        break;
                default:
                        return tt_error_set(err, EINVAL,
                                            "Unknown option, try '%s --help' for more information.",
                                            argv[0]);
                }
                if (r < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        if (optind < argc)
                return tt_error_set(err, EINVAL, "unexpected argument '%s'", argv[optind]);
        if (list_is_help(cfg->block_rpcs) || list_is_help(cfg->allow_rpcs)) {
                for (const struct agent_command *cmd = agent_commands; cmd->name; cmd++)
                        printf("%s\n", cmd->name);
                *action = AGENT_EXIT_OK;
                return 0;
        }
        if (cfg->method && agent_channel_default_path(cfg->method) == NULL &&
            strcmp(cfg->method, "unix-listen") != 0 && strcmp(cfg->method, "vsock-listen") != 0)
                return tt_error_set(err, EINVAL, "invalid method '%s'", cfg->method);
        if (cfg->statedir && cfg->statedir[0] != '/')
                return tt_error_set(err, EINVAL, "statedir must be an absolute path");
        if (fill_unset(cfg) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (dump) {
                agent_config_dump(cfg, stdout);
                *action = AGENT_EXIT_OK;
        }
        return 0;
}

void agent_config_dump(const struct agent_config *cfg, FILE *out)
{
        fprintf(out, "[general]\n");
        for (size_t i = 0; i < TT_ARRAY_SIZE(config_keys); i++) {
                const struct config_key *k = &config_keys[i];
                const void *field = (const char *)cfg + k->offset;

                switch (k->type) {
                case KEY_STRING: {
                        const char *s = *(char *const *)field;
                        if (s)
                                fprintf(out, "%s=%s\n", k->name, s);
                        break;
                }
                case KEY_BOOL:
                        if (k->dump_if_unset || *(const bool *)field)
                                fprintf(out, "%s=%s\n", k->name,
                                        *(const bool *)field ? "true" : "false");
                        break;
                case KEY_LIST: {
                        char *const *list = *(char **const *)field;
                        /* qemu-ga always prints block-rpcs=, even empty. */
                        if ((list && list[0]) || k->dump_if_unset) {
                                fprintf(out, "%s=", k->name);
                                for (size_t j = 0; list && list[j]; j++)
                                        fprintf(out, "%s%s", j ? "," : "", list[j]);
                                fputc('\n', out);
                        }
                        break;
                }
                case KEY_UINT:
                        fprintf(out, "%s=%u\n", k->name, *(const unsigned *)field);
                        break;
                }
        }
}

static void free_list(char **list)
{
        for (size_t i = 0; list && list[i]; i++)
                free(list[i]);
        free(list);
}

void agent_config_free(struct agent_config *cfg)
{
        free(cfg->method);
        free(cfg->path);
        free(cfg->logfile);
        free(cfg->pidfile);
        free(cfg->fsfreeze_hook);
        free(cfg->statedir);
        free_list(cfg->block_rpcs);
        free_list(cfg->allow_rpcs);
        memset(cfg, 0, sizeof(*cfg));
}
