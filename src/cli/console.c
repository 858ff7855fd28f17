/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `tether console DOMAIN [--force]`: the guest's serial console in this terminal, as virsh
 * console. The "console" request's reply turns the connection into a byte stream (keystrokes
 * out raw, the guest's output back in frames: src/wire/stream.h). Ctrl+] detaches. The
 * terminal is raw while attached and restored on every way out, signals included.
 */
#include "cli/cli.h"
#include "common/cleanup.h"
#include "common/fileutil.h"
#include "wire/stream.h"
#include "wire/wire.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* virsh's default escape character: Ctrl+] (GS). */
#define CONSOLE_ESCAPE 0x1d

/* The terminal as it was, restored on the way out (also from atexit and signal paths). */
static struct termios saved_tty;
static bool tty_raw;
/* A signal asked us to stop (the loop restores the terminal and exits). */
static volatile sig_atomic_t stop_signal;

static void tty_restore(void)
{
        if (tty_raw) {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
                tty_raw = false;
        }
}

static void on_signal(int sig)
{
        stop_signal = sig;
}

/* Raw as virsh makes it (cfmakeraw): every byte goes to the guest, Ctrl+C too. */
static int tty_make_raw(void)
{
        struct termios raw;

        if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
                return -1;
        raw = saved_tty;
        cfmakeraw(&raw);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
                return -1;
        tty_raw = true;
        return 0;
}

static void signals_catch(void)
{
        static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE};
        struct sigaction sa = {.sa_handler = on_signal};

        /* No SA_RESTART: poll() returns EINTR and the loop ends cleanly. */
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < TT_ARRAY_SIZE(sigs); i++)
                sigaction(sigs[i], &sa, NULL);
}

/* The reply to "console", read a byte at a time: what follows it is the stream's. */
static int take_reply(void *opaque, json_t *msg, const struct tt_error *perr)
{
        json_t **out = opaque;

        if (msg == NULL)
                return -1;
        *out = msg;
        return -1; /* stop: exactly one message */
}

static json_t *read_reply(int fd, struct tt_error *err)
{
        struct wire_splitter *sp = wire_splitter_new();
        json_t *reply = NULL;

        if (sp == NULL) {
                tt_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        while (reply == NULL) {
                char ch;
                ssize_t n = read(fd, &ch, 1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        tt_error_set(err, EIO, "the connection to tetherd closed");
                        break;
                }
                if (wire_splitter_feed(sp, &ch, 1, take_reply, &reply) < 0 && reply == NULL) {
                        tt_error_set(err, EPROTO, "tetherd sent a malformed reply");
                        break;
                }
        }
        wire_splitter_free(sp);
        /* Every reply ends with a newline (wire_write_return): it is not the stream's. */
        while (reply) {
                char nl;
                ssize_t n = read(fd, &nl, 1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n != 1 || nl != '\n') {
                        tt_error_set(err, EPROTO, "tetherd sent a malformed reply");
                        json_decref(reply);
                        reply = NULL;
                }
                break;
        }
        return reply;
}

/* The guest's side: frames from tetherd, parsed across reads. */
struct frames {
        uint8_t hdr[WIRE_STREAM_HEADER]; /* the header being read */
        size_t have;                     /* bytes of it read */
        size_t left;                     /* payload bytes still to come of the current frame */
        char type;                       /* its type */
        char end[WIRE_STREAM_MAX + 1];   /* an 'E' frame's text */
        size_t end_len;                  /* bytes of it */
        bool ended;                      /* the 'E' frame is complete */
};

/* Feed bytes from tetherd: data goes to stdout. -1 when stdout fails. */
static int frames_feed(struct frames *f, const char *buf, size_t len)
{
        while (len > 0 && !f->ended) {
                size_t n;

                if (f->left == 0 && f->have < WIRE_STREAM_HEADER) {
                        f->hdr[f->have++] = (uint8_t)*buf++;
                        len--;
                        if (f->have == WIRE_STREAM_HEADER) {
                                f->type = (char)f->hdr[0];
                                f->left = wire_stream_length(f->hdr);
                                f->have = 0;
                                if (f->type == WIRE_STREAM_END && f->left == 0)
                                        f->ended = true;
                                /* An empty frame of another type: the next header follows. */
                        }
                        continue;
                }
                n = len < f->left ? len : f->left;
                if (f->type == WIRE_STREAM_DATA) {
                        if (tt_write_all(STDOUT_FILENO, buf, n) < 0)
                                return -1;
                } else if (f->type == WIRE_STREAM_END) {
                        memcpy(f->end + f->end_len, buf, n);
                        f->end_len += n;
                }
                /* Unknown types are skipped: a newer tetherd may send more kinds. */
                buf += n;
                len -= n;
                f->left -= n;
                if (f->left == 0 && f->type == WIRE_STREAM_END)
                        f->ended = true;
        }
        return 0;
}

/* Why the session ended. */
enum console_end {
        CONSOLE_DETACHED,   /* Ctrl+] */
        CONSOLE_STOPPED,    /* the domain stopped, or stdin ended */
        CONSOLE_ENDED,      /* tetherd ended it and said why (frames.end) */
        CONSOLE_LOST,       /* the connection broke */
        CONSOLE_SIGNALLED,  /* a signal */
};

static enum console_end relay(struct cli_conn *c, struct frames *f)
{
        struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                                {.fd = c->rfd, .events = POLLIN}};
        char buf[65536];

        for (;;) {
                if (stop_signal)
                        return CONSOLE_SIGNALLED;
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return CONSOLE_LOST;
                }
                if (pfd[0].revents) {
                        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                        char *esc;

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                return CONSOLE_STOPPED;
                        esc = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
                        if (esc)
                                n = esc - buf; /* what came before Ctrl+] still goes */
                        if (n > 0 && tt_write_all(c->wfd, buf, (size_t)n) < 0)
                                return CONSOLE_LOST;
                        if (esc)
                                return CONSOLE_DETACHED;
                }
                if (pfd[1].revents) {
                        ssize_t n = read(c->rfd, buf, sizeof(buf));

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                return CONSOLE_LOST;
                        if (frames_feed(f, buf, (size_t)n) < 0)
                                return CONSOLE_LOST;
                        if (f->ended)
                                return f->end_len ? CONSOLE_ENDED : CONSOLE_STOPPED;
                }
        }
}

/* virsh ends a failed command with a newline on stdout (see main.c's verb_failed). */
static int console_failed(const struct cli_opts *o)
{
        if (!o->quiet)
                printf("\n");
        return EXIT_FAILURE;
}

int cli_run_console(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        const char *name = o->pos[0];
        struct tt_error err = {0};
        _cleanup_json_ json_t *info_args = NULL;
        _cleanup_json_ json_t *info = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_free_ struct frames *f = NULL;
        json_t *error;
        const char *state;
        enum console_end end;

        /* virsh looks at the state first: a shut off domain has no banner. */
        info_args = json_pack("{s:s}", "domain", name);
        info = cli_call(c, "dominfo", info_args, &err);
        if (info == NULL) {
                cli_error("%s", err.msg);
                tt_error_clear(&err);
                return console_failed(o);
        }
        error = json_object_get(info, "error");
        if (error) {
                cli_error("%s", json_string_value(json_object_get(error, "desc")));
                return console_failed(o);
        }
        state = json_string_value(json_object_get(json_object_get(info, "return"), "state"));
        if (state == NULL || strcmp(state, "shut off") == 0) {
                cli_error("The domain is not running");
                return console_failed(o);
        }
        if (!isatty(STDIN_FILENO)) {
                cli_error("Cannot run interactive console without a controlling TTY");
                return console_failed(o);
        }
        name = json_string_value(json_object_get(json_object_get(info, "return"), "name"));
        if (name == NULL)
                name = o->pos[0];
        printf("Connected to domain '%s'\n", name);
        printf("Escape character is ^] (Ctrl + ])\n");
        fflush(stdout);

        json_object_set_new(args, "domain", json_string(name));
        if (cli_send(c, "console", args, &err) < 0 ||
            (reply = read_reply(c->rfd, &err)) == NULL) {
                cli_error("%s", err.msg);
                tt_error_clear(&err);
                return console_failed(o);
        }
        error = json_object_get(reply, "error");
        if (error) {
                cli_error("%s", json_string_value(json_object_get(error, "desc")));
                return console_failed(o);
        }
        f = calloc(1, sizeof(*f));
        if (f == NULL) {
                cli_error("out of memory");
                return console_failed(o);
        }
        signals_catch();
        atexit(tty_restore);
        if (tty_make_raw() < 0) {
                cli_error("unable to make terminal raw: %s", strerror(errno));
                return console_failed(o);
        }
        end = relay(c, f);
        tty_restore();
        switch (end) {
        case CONSOLE_DETACHED:
        case CONSOLE_STOPPED:
                return EXIT_SUCCESS;
        case CONSOLE_ENDED:
                f->end[f->end_len] = '\0';
                fputc('\n', stdout);
                fflush(stdout);
                cli_error("%s", f->end);
                return EXIT_FAILURE;
        case CONSOLE_SIGNALLED:
                fputc('\n', stdout);
                fflush(stdout);
                cli_error("console interrupted by signal %d", (int)stop_signal);
                return 128 + (int)stop_signal;
        case CONSOLE_LOST:
        default:
                fputc('\n', stdout);
                fflush(stdout);
                cli_error("the connection to tetherd was lost");
                return EXIT_FAILURE;
        }
}
