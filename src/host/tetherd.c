/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tetherd: parse options and the config file, load definitions, reconnect to running QEMUs,
 * serve the socket, poll the domains (monitor) and serve or push their metrics.
 */
#include "common/cleanup.h"
#include "common/log.h"
#include "host/api.h"
#include "host/events.h"
#include "host/metrics.h"
#include "host/monitor.h"
#include "host/policy.h"
#include "host/tetherd.h"
#include "host/vm.h"

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
        int max_subscribers;       /* [security] max-event-subscribers, or 0: the default */
};

/* QEMU's user when nothing says otherwise. */
#define TETHERD_QEMU_USER "tether-qemu"

enum conf_type {
        CONF_STRING,  /* a malloc'd char * */
        CONF_SECONDS, /* an int, 0..CONF_MAX_INTERVAL_S */
        CONF_CLIENTS, /* an int, 1..CONF_MAX_CLIENTS */
};

/* The keys of [monitor] and [security], each with where its value goes in struct tetherd_conf. */
static const struct conf_key {
        const char *section;  /* "[monitor]" or "[security]" */
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
        {"[security]", "max-event-subscribers", CONF_CLIENTS,
         offsetof(struct tetherd_conf, max_subscribers)},
};

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: tetherd [--root DIR] [--group NAME] [--log FILE] [--verbose]\n"
                "               [--config FILE] [--metrics-listen ADDR:PORT] [--push-url URL]\n"
                "               [--qemu-user NAME]\n"
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
                "                 disks, kernel and initrd must lie in); lists are space-separated\n"
                "  --qemu-user NAME\n"
                "                 run QEMU as NAME (default: tether-qemu; root or '' keep QEMU\n"
                "                 running as root)\n"
                "  --metrics-listen ADDR:PORT\n"
                "                 serve Prometheus metrics on http://ADDR:PORT/metrics\n"
                "                 (PORT or :PORT alone: 127.0.0.1; [ADDR]:PORT for IPv6)\n"
                "  --push-url URL push the metrics to a Pushgateway (http://HOST:PORT) after\n"
                "                 each host-side round; the group is deleted on exit\n"
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
                                            "%s:%u: key '%s' outside [monitor] or [security]",
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
                {NULL, 0, NULL, 0},
        };
        struct tetherd d = {0};
        struct tt_error err = {0};
        struct tetherd_conf conf = {0};
        const char *root = NULL, *logfile = NULL, *config = NULL;
        const char *opt_listen = NULL, *opt_push = NULL, *opt_qemu_user = NULL;
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
        d.base = event_base_new();
        if (d.base == NULL || store_open(&d.store, root, &err) < 0 ||
            conf_read(&conf, &d.store, config, &err) < 0)
                goto out;
        /* The command line wins over the file. */
        if ((opt_listen && conf_set(&conf, &conf_keys[0], opt_listen, "--metrics-listen", 0,
                                    &err) < 0) ||
            (opt_push && conf_set(&conf, &conf_keys[1], opt_push, "--push-url", 0, &err) < 0) ||
            (opt_qemu_user &&
             conf_set(&conf, &conf_keys[8], opt_qemu_user, "--qemu-user", 0, &err) < 0))
                goto out;
        if (security_setup(&d, &conf, root, &err) < 0)
                goto out;
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
        for (size_t i = 0; i < TT_ARRAY_SIZE(signums); i++) {
                sigs[i] = evsignal_new(d.base, signums[i], on_signal, &d);
                event_add(sigs[i], NULL);
        }
        if (vm_load_all(&d, &err) < 0)
                goto out;
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
        api_close(&d);
        vm_free_all(&d);
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
        free(d.qemu_user);
        free(d.qemu_groups);
        policy_strv_free(d.emulators);
        policy_strv_free(d.image_dirs);
        return status;
}
