/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tetherd: parse options and the config file, load definitions, reconnect to running QEMUs,
 * serve the socket, poll the domains (monitor) and serve or push their metrics.
 */
#include "common/cleanup.h"
#include "common/log.h"
#include "host/api.h"
#include "host/hoststop.h"
#include "host/events.h"
#include "host/metrics.h"
#include "host/monitor.h"
#include "host/policy.h"
#include "host/tetherd.h"
#include "host/vm.h"
#include "host/web.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The longest interval a config may ask for (a day). */
#define CONF_MAX_INTERVAL_S 86400
/* The most control clients a config may allow at once (each costs a descriptor). */
#define CONF_MAX_CLIENTS 65536

/* What the config file sets; options given on the command line win. */
struct tetherd_conf {
        char *metrics_listen;      /* [monitor] metrics-listen, or NULL: no HTTP server */
        char *push_url;            /* [monitor] push-url, or NULL: no pushes */
        struct monitor_config mon; /* [monitor] *-interval */
        int max_clients;           /* [security] max-clients, or 0: the default */
        char *qemu_user;           /* [security] qemu-user: NULL = tether-qemu, "" = root */
        char *emulators;           /* [security] emulators, space-separated, or NULL: found */
        char *image_dirs;          /* [security] image-dirs, space-separated, or NULL: default */
        bool report_idle;          /* [monitor] report-idle */
        char *on_shutdown;         /* [lifecycle] on-shutdown, or NULL: ignore */
        char *on_boot;             /* [lifecycle] on-boot, or NULL: start */
        int shutdown_timeout;      /* [lifecycle] shutdown-timeout (seconds) */
        int parallel_shutdown;     /* [lifecycle] parallel-shutdown */
        char *web_listen;          /* [web] listen, or NULL: no web console */
        char *web_cert;            /* [web] cert: PEM certificate chain for TLS */
        char *web_key;             /* [web] key: its PEM private key */
        char *web_root;            /* [web] root: the pages' folder, or NULL: installed */
        int max_subscribers;       /* [security] max-event-subscribers, or 0: the default */
};

/* QEMU's user when nothing says otherwise. */
#define TETHERD_QEMU_USER "tether-qemu"

enum conf_type {
        CONF_STRING,  /* a malloc'd char * */
        CONF_SECONDS, /* an int, 0..CONF_MAX_INTERVAL_S */
        CONF_CLIENTS, /* an int, 1..CONF_MAX_CLIENTS */
        CONF_BOOL,    /* a bool: yes/no, true/false, 1/0, on/off */
        CONF_PARALLEL, /* an int, 1..HOSTSTOP_PARALLEL_MAX */
};

/* The keys of [monitor], [security], [lifecycle] and [web], each with where its value goes in struct tetherd_conf. */
static const struct conf_key {
        const char *section;  /* "[monitor]", "[security]", "[lifecycle]" or "[web]" */
        const char *name;     /* key in the file */
        enum conf_type type;  /* how the value is read */
        size_t offset;        /* field in struct tetherd_conf */
} conf_keys[] = {
        {"[monitor]", "metrics-listen", CONF_STRING, offsetof(struct tetherd_conf, metrics_listen)},
        {"[monitor]", "push-url", CONF_STRING, offsetof(struct tetherd_conf, push_url)},
        {"[monitor]", "host-interval", CONF_SECONDS, offsetof(struct tetherd_conf, mon.host_s)},
        {"[monitor]", "stats-interval", CONF_SECONDS, offsetof(struct tetherd_conf, mon.stats_s)},
        {"[monitor]", "users-interval", CONF_SECONDS, offsetof(struct tetherd_conf, mon.users_s)},
        {"[monitor]", "filesystems-interval", CONF_SECONDS,
         offsetof(struct tetherd_conf, mon.filesystems_s)},
        {"[monitor]", "osinfo-interval", CONF_SECONDS,
         offsetof(struct tetherd_conf, mon.osinfo_s)},
        {"[security]", "max-clients", CONF_CLIENTS, offsetof(struct tetherd_conf, max_clients)},
        {"[security]", "qemu-user", CONF_STRING, offsetof(struct tetherd_conf, qemu_user)},
        {"[security]", "emulators", CONF_STRING, offsetof(struct tetherd_conf, emulators)},
        {"[security]", "image-dirs", CONF_STRING, offsetof(struct tetherd_conf, image_dirs)},
        {"[monitor]", "report-idle", CONF_BOOL, offsetof(struct tetherd_conf, report_idle)},
        {"[lifecycle]", "on-shutdown", CONF_STRING, offsetof(struct tetherd_conf, on_shutdown)},
        {"[lifecycle]", "on-boot", CONF_STRING, offsetof(struct tetherd_conf, on_boot)},
        {"[lifecycle]", "shutdown-timeout", CONF_SECONDS,
         offsetof(struct tetherd_conf, shutdown_timeout)},
        {"[lifecycle]", "parallel-shutdown", CONF_PARALLEL,
         offsetof(struct tetherd_conf, parallel_shutdown)},
        {"[web]", "listen", CONF_STRING, offsetof(struct tetherd_conf, web_listen)},
        {"[web]", "cert", CONF_STRING, offsetof(struct tetherd_conf, web_cert)},
        {"[web]", "key", CONF_STRING, offsetof(struct tetherd_conf, web_key)},
        {"[web]", "root", CONF_STRING, offsetof(struct tetherd_conf, web_root)},
        {"[security]", "max-event-subscribers", CONF_CLIENTS,
         offsetof(struct tetherd_conf, max_subscribers)},
};

/* A row of conf_keys by section and name (the options that override the file use it). */
static const struct conf_key *conf_key(const char *section, const char *name)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(conf_keys); i++)
                if (strcmp(conf_keys[i].section, section) == 0 &&
                    strcmp(conf_keys[i].name, name) == 0)
                        return &conf_keys[i];
        return NULL;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: tetherd [--root DIR] [--group NAME] [--log FILE] [--verbose]\n"
                "               [--config FILE] [--metrics-listen ADDR:PORT] [--push-url URL]\n"
                "               [--qemu-user NAME] [--report-idle]\n"
                "               [--on-shutdown managedsave|shutdown|ignore] [--on-boot start|ignore]\n"
                "               [--shutdown-timeout SECONDS] [--parallel-shutdown N]\n"
                "               [--web-listen [ADDR:]PORT]\n"
                "               [--web-cert FILE --web-key FILE] [--web-root DIR]\n"
                "Tether's host daemon: defines, starts and supervises QEMU virtual machines,\n"
                "and polls them for metrics.\n"
                "\n"
                "  --root DIR     keep definitions, state, sockets and save images under DIR\n"
                "                 (default: /etc/tether, /var/lib/tether, /run/tether)\n"
                "  --group NAME   members of this group may use the control socket (root always)\n"
                "  --log FILE     log to FILE instead of stderr\n"
                "  --config FILE  read settings from FILE (default: ROOT/etc/tether/tetherd.conf\n"
                "                 when it exists). [monitor]: metrics-listen, push-url,\n"
                "                 host-interval, stats-interval, users-interval,\n"
                "                 filesystems-interval, osinfo-interval (seconds; 0 = off).\n"
                "                 [security]: max-clients (control clients at once, 256),\n"
                "                 max-event-subscribers (`tether event` clients at once, 64),\n"
                "                 qemu-user, emulators (the <emulator> paths a\n"
                "                 client that is not root may name), image-dirs (the folders its\n"
                "                 disks, kernel and initrd must lie in); lists are space-separated.\n"
                "                 [monitor] report-idle (yes/no). [lifecycle]: on-shutdown,\n"
                "                 on-boot, shutdown-timeout, parallel-shutdown (as the options)\n"
                "                 [web]: listen, cert, key, root (as the --web-* options)\n"
                "  --qemu-user NAME\n"
                "                 run QEMU as NAME (default: tether-qemu; root or '' keep QEMU\n"
                "                 running as root)\n"
                "  --metrics-listen ADDR:PORT\n"
                "                 serve Prometheus metrics on http://ADDR:PORT/metrics\n"
                "                 (PORT or :PORT alone: 127.0.0.1; [ADDR]:PORT for IPv6)\n"
                "  --web-listen [ADDR:]PORT\n"
                "                 serve the web console (off by default; 127.0.0.1 without an\n"
                "                 address); `tether web-url` prints a one-time login link.\n"
                "                 An address other than loopback needs --web-cert and --web-key\n"
                "  --web-cert FILE, --web-key FILE\n"
                "                 serve the console over TLS with this PEM certificate and key\n"
                "  --web-root DIR the console's pages (default: the installed ones, else the\n"
                "                 source tree's src/host/web when run from a build tree)\n"
                "  --push-url URL push the metrics to a Pushgateway (http://HOST:PORT) after\n"
                "                 each host-side round; the group is deleted on exit\n"
                "  --report-idle  show a running domain whose vCPUs used under 1%% of a CPU over\n"
                "                 the monitor's last host sample as idle (libvirt's state 2)\n"
                "  --on-shutdown managedsave|shutdown|ignore\n"
                "                 on SIGTERM, save or shut down every running guest before\n"
                "                 exiting (default ignore: QEMUs keep running); a guest still\n"
                "                 running when the timeout passes is destroyed\n"
                "  --on-boot start|ignore\n"
                "                 at start-up, restore the domains the last host stop saved\n"
                "                 (default start; autostart domains start either way)\n"
                "  --shutdown-timeout SECONDS\n"
                "                 the host stop's time budget (default 300)\n"
                "  --parallel-shutdown N\n"
                "                 guests saved or shut down at once (default 3)\n"
                "  -v, --verbose  log QMP events and more\n"
                "  -V, --version  print the version and exit\n");
}

static void on_signal(evutil_socket_t sig, short what, void *opaque)
{
        struct tetherd *d = opaque;

        if (sig == SIGCHLD) {
                /* Reap QEMUs we forked; their monitor EOF drives the state change. */
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                return;
        }
        if (sig == SIGTERM && hoststop_begin(d))
                return; /* the host stop breaks the loop when the guests are done */
        tt_info("signal %d: exiting (QEMU processes keep running)", (int)sig);
        event_base_loopbreak(d->base);
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

static int conf_set(struct tetherd_conf *conf, const struct conf_key *k, const char *value,
                    const char *path, unsigned line, struct tt_error *err)
{
        void *field = (char *)conf + k->offset;
        char *end;
        long long v;

        switch (k->type) {
        case CONF_STRING: {
                char *copy = strdup(value);
                if (copy == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                free(*(char **)field);
                *(char **)field = copy;
                return 0;
        }
        case CONF_SECONDS:
                errno = 0;
                v = strtoll(value, &end, 10);
                if (errno || end == value || *end || v < 0 || v > CONF_MAX_INTERVAL_S)
                        return tt_error_set(err, EINVAL,
                                            "%s:%u: invalid value '%s' for %s: seconds from 0 "
                                            "(off) to %d",
                                            path, line, value, k->name, CONF_MAX_INTERVAL_S);
                *(int *)field = (int)v;
                return 0;
        case CONF_CLIENTS:
                errno = 0;
                v = strtoll(value, &end, 10);
                if (errno || end == value || *end || v < 1 || v > CONF_MAX_CLIENTS)
                        return tt_error_set(err, EINVAL,
                                            "%s:%u: invalid value '%s' for %s: from 1 to %d",
                                            path, line, value, k->name, CONF_MAX_CLIENTS);
                *(int *)field = (int)v;
                return 0;
        case CONF_PARALLEL:
                errno = 0;
                v = strtoll(value, &end, 10);
                if (errno || end == value || *end || v < 1 || v > HOSTSTOP_PARALLEL_MAX)
                        return tt_error_set(err, EINVAL,
                                            "%s:%u: invalid value '%s' for %s: from 1 to %d",
                                            path, line, value, k->name, HOSTSTOP_PARALLEL_MAX);
                *(int *)field = (int)v;
                return 0;
        case CONF_BOOL: {
                static const struct {
                        const char *word;
                        bool on;
                } words[] = {{"yes", true}, {"true", true}, {"on", true}, {"1", true},
                             {"no", false}, {"false", false}, {"off", false}, {"0", false}};

                for (size_t i = 0; i < TT_ARRAY_SIZE(words); i++) {
                        if (strcasecmp(value, words[i].word) == 0) {
                                *(bool *)field = words[i].on;
                                return 0;
                        }
                }
                return tt_error_set(err, EINVAL,
                                    "%s:%u: invalid value '%s' for %s: yes or no", path, line,
                                    value, k->name);
        }
        }
        return 0;
}

/* A small key = value file: '#' or ';' comments, [monitor] and [security] sections. */
static int conf_load(struct tetherd_conf *conf, const char *path, struct tt_error *err)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t cap = 0;
        unsigned line = 0;
        const char *section = NULL;

        if (f == NULL)
                return tt_error_errno(err, errno, "cannot open config '%s'", path);
        while (getline(&buf, &cap, f) != -1) {
                char *s = trim(buf), *eq, *key, *value;
                const struct conf_key *k = NULL;

                line++;
                if (*s == '\0' || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        section = NULL;
                        for (size_t i = 0; i < TT_ARRAY_SIZE(conf_keys); i++)
                                if (strcmp(conf_keys[i].section, s) == 0)
                                        section = conf_keys[i].section;
                        if (section == NULL)
                                return tt_error_set(err, EINVAL, "%s:%u: unknown section %s",
                                                    path, line, s);
                        continue;
                }
                eq = strchr(s, '=');
                if (eq == NULL)
                        return tt_error_set(err, EINVAL, "%s:%u: expected KEY = VALUE", path,
                                            line);
                *eq = '\0';
                key = trim(s);
                value = trim(eq + 1);
                if (section == NULL)
                        return tt_error_set(err, EINVAL,
                                            "%s:%u: key '%s' outside a section ([monitor], "
                                            "[security], [lifecycle] or [web])",
                                            path, line, key);
                for (size_t i = 0; i < TT_ARRAY_SIZE(conf_keys); i++)
                        if (strcmp(conf_keys[i].section, section) == 0 &&
                            strcmp(conf_keys[i].name, key) == 0)
                                k = &conf_keys[i];
                if (k == NULL)
                        return tt_error_set(err, EINVAL, "%s:%u: unknown key '%s' in %s", path,
                                            line, key, section);
                if (conf_set(conf, k, value, path, line, err) < 0)
                        return -1;
        }
        if (ferror(f))
                return tt_error_errno(err, errno, "cannot read config '%s'", path);
        return 0;
}

/* --config FILE, else ROOT/etc/tether/tetherd.conf when it exists, else nothing. */
static int conf_read(struct tetherd_conf *conf, const struct store *st, const char *given,
                     struct tt_error *err)
{
        _cleanup_free_ char *dflt = NULL;

        if (given)
                return conf_load(conf, given, err);
        if (asprintf(&dflt, "%s/tetherd.conf", st->conf_dir) < 0)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (access(dflt, F_OK) < 0)
                return 0;
        return conf_load(conf, dflt, err);
}

/*
 * QEMU's user (resolved now: the child that execs QEMU may not call getpwnam), the emulators
 * and image folders a client that is not root may name.
 */
static int security_setup(struct tetherd *d, const struct tetherd_conf *conf, const char *root,
                          struct tt_error *err)
{
        const char *user = conf->qemu_user ? conf->qemu_user : TETHERD_QEMU_USER;

        d->request_uid = TETHERD_SELF;
        d->emulators = conf->emulators ? policy_split_list(conf->emulators)
                                       : policy_default_emulators();
        d->image_dirs = conf->image_dirs ? policy_split_list(conf->image_dirs)
                                         : policy_default_image_dirs(root);
        if (d->emulators == NULL || d->image_dirs == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (*user == '\0' || strcmp(user, "root") == 0) {
                tt_info("QEMU runs as root (qemu-user '%s')", user);
                return 0;
        }
        if (geteuid() != 0) {
                /* Only root can hand QEMU to another user; a developer's tetherd keeps its own. */
                tt_info("QEMU runs as tetherd's own user (uid %u): tetherd is not root",
                        (unsigned)geteuid());
                return 0;
        }
        {
                struct passwd *pw = getpwnam(user);
                int n = 64;

                if (pw == NULL)
                        return tt_error_set(err, EINVAL,
                                            "QEMU's user '%s' does not exist: create it "
                                            "(useradd --system --no-create-home --shell "
                                            "/usr/sbin/nologin %s) or choose another with "
                                            "--qemu-user (root: QEMU runs as root)",
                                            user, user);
                if (pw->pw_uid == 0)
                        return 0;
                d->qemu_uid = pw->pw_uid;
                d->qemu_gid = pw->pw_gid;
                for (;;) {
                        gid_t *g = realloc(d->qemu_groups, (size_t)n * sizeof(gid_t));
                        int want = n;

                        if (g == NULL)
                                return tt_error_set(err, ENOMEM, "out of memory");
                        d->qemu_groups = g;
                        if (getgrouplist(user, pw->pw_gid, g, &want) >= 0) {
                                d->n_qemu_groups = want;
                                break;
                        }
                        n = want > n ? want : n * 2;
                }
                d->qemu_user = strdup(user);
                if (d->qemu_user == NULL)
                        return tt_error_set(err, ENOMEM, "out of memory");
                d->qemu_drop = true;
                tt_info("QEMU runs as '%s' (uid %u)", user, (unsigned)d->qemu_uid);
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"root", required_argument, NULL, 'r'},  {"group", required_argument, NULL, 'g'},
                {"log", required_argument, NULL, 'l'},   {"verbose", no_argument, NULL, 'v'},
                {"version", no_argument, NULL, 'V'},     {"help", no_argument, NULL, 'h'},
                {"config", required_argument, NULL, 'c'},
                {"metrics-listen", required_argument, NULL, 'm'},
                {"push-url", required_argument, NULL, 'p'},
                {"qemu-user", required_argument, NULL, 'u'},
                {"report-idle", no_argument, NULL, 'I'},
                {"on-shutdown", required_argument, NULL, 'S'},
                {"on-boot", required_argument, NULL, 'B'},
                {"shutdown-timeout", required_argument, NULL, 'T'},
                {"parallel-shutdown", required_argument, NULL, 'P'},
                {"web-listen", required_argument, NULL, 'W'},
                {"web-cert", required_argument, NULL, 'C'},
                {"web-key", required_argument, NULL, 'K'},
                {"web-root", required_argument, NULL, 'R'},
                {NULL, 0, NULL, 0},
        };
        struct tetherd d = {0};
        struct tt_error err = {0};
        struct tetherd_conf conf = {0};
        const char *root = NULL, *logfile = NULL, *config = NULL;
        const char *opt_listen = NULL, *opt_push = NULL, *opt_qemu_user = NULL;
        /* Lifecycle options given on the command line, applied over the file: key, value. */
        const char *opt_lifecycle[4][2] = {{0}};
        size_t n_lifecycle = 0;
        bool opt_report_idle = false;
        struct hoststop_config hsc;
        /* --web-listen, --web-cert, --web-key, --web-root: [web]'s keys in this order */
        static const char *const web_keys[4] = {"listen", "cert", "key", "root"};
        const char *opt_web[4] = {NULL};
        _cleanup_free_ char *sock = NULL;
        struct event *sigs[4] = {0};
        const int signums[4] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
        int c, status = EXIT_FAILURE;

        tt_log_set_ident("tetherd");
        while ((c = getopt_long(argc, argv, "vVh", longopts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'g': {
                        struct group *g = getgrnam(optarg);
                        if (g == NULL) {
                                fprintf(stderr, "tetherd: unknown group '%s'\n", optarg);
                                return EXIT_FAILURE;
                        }
                        d.access_gid = g->gr_gid;
                        d.access_gid_set = true;
                        break;
                }
                case 'l':
                        logfile = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'm':
                        opt_listen = optarg;
                        break;
                case 'p':
                        opt_push = optarg;
                        break;
                case 'u':
                        opt_qemu_user = optarg;
                        break;
                case 'I':
                        opt_report_idle = true;
                        break;
                case 'S':
                case 'B':
                case 'T':
                case 'P': {
                        const char *key = c == 'S'   ? "on-shutdown"
                                          : c == 'B' ? "on-boot"
                                          : c == 'T' ? "shutdown-timeout"
                                                     : "parallel-shutdown";
                        size_t i;

                        for (i = 0; i < n_lifecycle && strcmp(opt_lifecycle[i][0], key); i++)
                                ;
                        opt_lifecycle[i][0] = key;
                        opt_lifecycle[i][1] = optarg;
                        if (i == n_lifecycle)
                                n_lifecycle++;
                        break;
                }
                case 'W':
                        opt_web[0] = optarg;
                        break;
                case 'C':
                        opt_web[1] = optarg;
                        break;
                case 'K':
                        opt_web[2] = optarg;
                        break;
                case 'R':
                        opt_web[3] = optarg;
                        break;
                case 'v':
                        tt_log_set_level(TT_LOG_DEBUG);
                        break;
                case 'V':
                        printf("tetherd %s\n", TETHER_VERSION);
                        return EXIT_SUCCESS;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return EXIT_FAILURE;
                }
        }
        if (logfile && tt_log_open(logfile) < 0) {
                fprintf(stderr, "tetherd: cannot open log '%s': %s\n", logfile, strerror(errno));
                return EXIT_FAILURE;
        }
        /* Nothing tetherd creates is for others unless it says so (the control socket, the
           folders on the way to it). */
        umask(077);
        signal(SIGPIPE, SIG_IGN);
        monitor_config_default(&conf.mon);
        conf.shutdown_timeout = HOSTSTOP_TIMEOUT_S;
        conf.parallel_shutdown = HOSTSTOP_PARALLEL;
        d.base = event_base_new();
        if (d.base == NULL) {
                tt_error_set(&err, ENOMEM, "out of memory");
                goto out;
        }
        /*
         * Signals are caught from the start: whoever sees tetherd (systemd, a test, the
         * socket) may send SIGTERM at once, and it must start the host stop, not kill tetherd
         * with the guests unsaved. They are handled once the loop runs, after the domains
         * are loaded (a config read from a pipe may keep tetherd waiting until then).
         */
        for (size_t i = 0; i < TT_ARRAY_SIZE(signums); i++) {
                sigs[i] = evsignal_new(d.base, signums[i], on_signal, &d);
                if (sigs[i] == NULL || event_add(sigs[i], NULL) < 0) {
                        tt_error_set(&err, ENOMEM, "cannot catch signal %d", signums[i]);
                        goto out;
                }
        }
        if (store_open(&d.store, root, &err) < 0 || conf_read(&conf, &d.store, config, &err) < 0)
                goto out;
        /* The command line wins over the file. */
        if ((opt_listen && conf_set(&conf, &conf_keys[0], opt_listen, "--metrics-listen", 0,
                                    &err) < 0) ||
            (opt_push && conf_set(&conf, &conf_keys[1], opt_push, "--push-url", 0, &err) < 0) ||
            (opt_qemu_user &&
             conf_set(&conf, &conf_keys[8], opt_qemu_user, "--qemu-user", 0, &err) < 0))
                goto out;
        for (size_t i = 0; i < n_lifecycle; i++) {
                char what[40];

                snprintf(what, sizeof(what), "--%s", opt_lifecycle[i][0]);
                if (conf_set(&conf, conf_key("[lifecycle]", opt_lifecycle[i][0]),
                             opt_lifecycle[i][1], what, 0, &err) < 0)
                        goto out;
        }
        if (opt_report_idle)
                conf.report_idle = true;
        d.report_idle = conf.report_idle;
        hoststop_config_default(&hsc);
        hsc.timeout_s = conf.shutdown_timeout;
        hsc.parallel = conf.parallel_shutdown;
        if ((conf.on_shutdown &&
             hoststop_parse_action(conf.on_shutdown, "on-shutdown", &hsc.on_shutdown, &err) < 0) ||
            (conf.on_boot && hoststop_parse_boot(conf.on_boot, "on-boot", &hsc.on_boot, &err) < 0) ||
            hoststop_setup(&d, &hsc, &err) < 0)
                goto out;
        for (size_t i = 0; i < TT_ARRAY_SIZE(opt_web); i++)
                if (opt_web[i] && conf_set(&conf, conf_key("[web]", web_keys[i]), opt_web[i],
                                           "--web-*", 0, &err) < 0)
                        goto out;
        if (security_setup(&d, &conf, root, &err) < 0)
                goto out;
        /* Before any domain starts: a console that may not listen stops tetherd here. */
        if (conf.web_listen) {
                struct web_config wc = {conf.web_listen, conf.web_cert, conf.web_key,
                                        conf.web_root};

                if (web_listen(&d, &wc, &err) < 0)
                        goto out;
        }
        d.max_clients = (unsigned)conf.max_clients;
        d.max_subscribers = (unsigned)conf.max_subscribers;
        d.events = events_new(d.max_subscribers);
        if (d.events == NULL) {
                tt_error_set(&err, ENOMEM, "out of memory");
                goto out;
        }
        sock = store_socket_path(&d.store);
        if (sock == NULL || api_listen(&d, sock, &err) < 0)
                goto out;
        if (vm_load_all(&d, &err) < 0)
                goto out;
        hoststop_boot(&d);
        /* Always: `tether domstats` reads the same cache as /metrics. */
        if (monitor_start(&d, &conf.mon, &err) < 0)
                goto out;
        if (conf.metrics_listen && metrics_listen(&d, conf.metrics_listen, &err) < 0)
                goto out;
        if (conf.push_url && metrics_push_start(&d, conf.push_url, &err) < 0)
                goto out;
        tt_info("tetherd %s listening on %s", TETHER_VERSION, sock);
        event_base_dispatch(d.base);
        status = EXIT_SUCCESS;
out:
        if (err.msg)
                tt_err("%s", err.msg);
        tt_error_clear(&err);
        /* The monitor first: no round may push while the Pushgateway group is deleted. */
        monitor_stop(&d);
        metrics_close(&d);
        web_close(&d);
        api_close(&d);
        vm_free_all(&d);
        hoststop_free(&d); /* after the domains: a job they end may still answer a host stop */
        events_free(d.events);
        for (size_t i = 0; i < TT_ARRAY_SIZE(sigs); i++)
                if (sigs[i])
                        event_free(sigs[i]);
        store_close(&d.store);
        if (d.base)
                event_base_free(d.base);
        free(conf.metrics_listen);
        free(conf.push_url);
        free(conf.qemu_user);
        free(conf.emulators);
        free(conf.image_dirs);
        free(conf.on_shutdown);
        free(conf.on_boot);
        free(conf.web_listen);
        free(conf.web_cert);
        free(conf.web_key);
        free(conf.web_root);
        free(d.qemu_user);
        free(d.qemu_groups);
        policy_strv_free(d.emulators);
        policy_strv_free(d.image_dirs);
        return status;
}
