// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * agent_bench: measures two QGA agents side by side in one run, over unix sockets, with the
 * same client code for both. Agent A is the reference (qemu-ga), agent B the candidate
 * (tether-agent); every ratio printed is B / A.
 *
 * The client never decodes base64 on the hot path: it only finds the end of each reply (the
 * newline that both agents put after every response) and a few fields near its head and tail,
 * so the numbers measure the agents and not the client.
 *
 * Only read-only commands, file reads under the bench's own temp dir and exec of /bin/true are
 * sent. Agents are started by this process, run with PR_SET_PDEATHSIG, and are stopped by PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB      (1024u * 1024u)
#define PING_REQ "{\"execute\":\"guest-ping\"}\n"
/* What the echo server answers: the exact bytes qemu-ga sends for guest-ping. */
#define PING_REPLY "{\"return\": {}}\n"

struct params {
        int ping_n, ping_warmup, ping_block;
        int starts;
        int exec_n, exec_block;
        int mixed_n;
        int read_reps; /* runs of the 1 MiB read test */
        int big_reps;  /* runs of the 48 MiB read test, each with a fresh agent */
};

static const struct params full_params = {
    .ping_n = 20000,
    .ping_warmup = 2000,
    .ping_block = 1000,
    .starts = 40,
    .exec_n = 400,
    .exec_block = 20,
    .mixed_n = 10000,
    .read_reps = 5,
    .big_reps = 4,
};
static const struct params quick_params = {
    .ping_n = 2000,
    .ping_warmup = 200,
    .ping_block = 500,
    .starts = 5,
    .exec_n = 20,
    .exec_block = 10,
    .mixed_n = 1000,
    .read_reps = 1,
    .big_reps = 1,
};

struct agent {
        const char *label;
        const char *path;
        char sock[PATH_MAX];
        char statedir[PATH_MAX];
        char log[PATH_MAX];
        pid_t pid;
};

/* One client connection to an agent (or to the echo server). */
struct conn {
        int fd;
        size_t len;  /* bytes in the receive buffer */
        long errors; /* replies carrying "error" */
        char first_error[256];
};

/*
 * One receive buffer for every connection, mapped and touched in advance, so that page faults on
 * a fresh 64 MiB buffer are not charged to the agent being measured. Sharing it is safe because
 * the client never pipelines and agents send nothing unasked: when a reply has been handled
 * nothing else is pending on any connection. It is MADV_DONTFORK, so that it does not slow down
 * the fork of each agent start.
 */
static struct {
        char *buf;
        size_t cap;
} g_rx;

static const char *g_tmp;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("agent_bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(2);
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
        struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Replaces the receive buffer by a larger one, keeping its first `keep` bytes. */
static void rx_grow(size_t cap, size_t keep)
{
        char *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                die("mmap %zu bytes: %s", cap, strerror(errno));
        madvise(p, cap, MADV_DONTFORK);
        memset(p, ' ', cap);
        if (g_rx.buf) {
                memcpy(p, g_rx.buf, keep);
                munmap(g_rx.buf, g_rx.cap);
        }
        g_rx.buf = p;
        g_rx.cap = cap;
}

/* ---- agents ----------------------------------------------------------------------------- */

static void agent_init(struct agent *a, const char *label, const char *path, const char *tag)
{
        a->label = label;
        a->path = path;
        a->pid = -1;
        snprintf(a->sock, sizeof(a->sock), "%s/%s.sock", g_tmp, tag);
        snprintf(a->statedir, sizeof(a->statedir), "%s/%s.state", g_tmp, tag);
        snprintf(a->log, sizeof(a->log), "%s/%s.log", g_tmp, tag);
        if (mkdir(a->statedir, 0700) < 0 && errno != EEXIST)
                die("mkdir %s: %s", a->statedir, strerror(errno));
}

static void child_common(const char *log)
{
        int fd;

        /* If the bench dies, its agents die with it: no stray processes are left behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
                dup2(fd, 0);
                close(fd);
        }
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
        }
}

static void agent_spawn(struct agent *a)
{
        unlink(a->sock);
        a->pid = fork();
        if (a->pid < 0)
                die("fork: %s", strerror(errno));
        if (a->pid == 0) {
                child_common(a->log);
                execl(a->path, a->path, "-m", "unix-listen", "-p", a->sock, "-t", a->statedir,
                      (char *)NULL);
                _exit(127);
        }
}

static void agent_stop(struct agent *a)
{
        int status;

        if (a->pid <= 0)
                return;
        kill(a->pid, SIGTERM);
        for (int i = 0; i < 2000; i++) {
                if (waitpid(a->pid, &status, WNOHANG) == a->pid) {
                        a->pid = -1;
                        return;
                }
                sleep_ns(1000000);
        }
        kill(a->pid, SIGKILL);
        waitpid(a->pid, &status, 0);
        a->pid = -1;
}

/* Peak resident set of a process in KiB (VmHWM is kept exactly by the kernel). */
static long proc_kb(pid_t pid, const char *key)
{
        char path[64], line[256];
        size_t klen = strlen(key);
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "r");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
                        kb = strtol(line + klen + 1, NULL, 10);
                        break;
                }
        }
        fclose(f);
        return kb;
}

/* CPU time (user + system) a process has used so far, in seconds. */
static double proc_cpu_s(pid_t pid)
{
        char path[64], buf[1024];
        unsigned long long ut = 0, st = 0;
        const char *p;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        /* Fields after the ")" that ends comm: state is field 3, utime 14, stime 15. */
        p = strrchr(buf, ')');
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return -1;
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- connection and framing -------------------------------------------------------------- */

static void set_sun_path(struct sockaddr_un *sa, const char *path)
{
        size_t len = strlen(path);

        if (len >= sizeof(sa->sun_path))
                die("socket path too long: %s", path);
        memcpy(sa->sun_path, path, len + 1);
}

static int try_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                die("socket: %s", strerror(errno));
        set_sun_path(&sa, path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return fd;
        close(fd);
        return -1;
}

/* Connects, retrying every poll_ns until timeout; pid (if > 0) must stay alive meanwhile. */
static int connect_retry(const char *path, pid_t pid, long poll_ns, double timeout_s)
{
        uint64_t end = now_ns() + (uint64_t)(timeout_s * 1e9);
        int fd, status;

        for (;;) {
                fd = try_connect(path);
                if (fd >= 0)
                        return fd;
                if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
                        die("agent pid %d exited before listening on %s (status 0x%x)", (int)pid,
                            path, status);
                if (now_ns() > end)
                        die("timed out connecting to %s", path);
                sleep_ns(poll_ns);
        }
}

static void conn_open(struct conn *c, int fd)
{
        memset(c, 0, sizeof(*c));
        c->fd = fd;
}

static void conn_close(struct conn *c)
{
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

static void send_all(struct conn *c, const char *msg, size_t len)
{
        while (len > 0) {
                ssize_t n = write(c->fd, msg, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        die("write to agent: %s", n < 0 ? strerror(errno) : "short write");
                msg += n;
                len -= (size_t)n;
        }
}

/*
 * Reads one reply (up to and excluding its newline). Returns a pointer into the buffer, valid
 * until the next call. A leading 0xFF (guest-sync-delimited) is not expected and not stripped.
 */
static const char *recv_reply(struct conn *c, size_t *out_len)
{
        size_t scan = 0;

        c->len = 0;
        for (;;) {
                char *nl = scan < c->len ? memchr(g_rx.buf + scan, '\n', c->len - scan) : NULL;
                char *r = g_rx.buf;
                ssize_t n;

                if (nl) {
                        *out_len = (size_t)(nl - r);
                        if (*out_len + 1 != c->len)
                                die("agent sent %zu bytes after its reply", c->len - *out_len - 1);
                        if (memmem(r, *out_len < 16 ? *out_len : 16, "\"error\"", 7)) {
                                if (c->errors++ == 0)
                                        snprintf(c->first_error, sizeof(c->first_error), "%.*s",
                                                 (int)(*out_len < 200 ? *out_len : 200), r);
                        }
                        return r;
                }
                scan = c->len;
                if (g_rx.cap - c->len < MIB)
                        rx_grow(g_rx.cap * 2, c->len);
                n = read(c->fd, g_rx.buf + c->len, g_rx.cap - c->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        die("read from agent: %s", n < 0 ? strerror(errno) : "EOF");
                c->len += (size_t)n;
        }
}

static const char *roundtrip(struct conn *c, const char *req, size_t *out_len)
{
        send_all(c, req, strlen(req));
        return recv_reply(c, out_len);
}

/*
 * Finds "key" in a reply and returns a pointer to the first byte of its value. Looks in the
 * first and last 256 bytes first (where small members sit around a big buf-b64), then in the
 * whole reply: base64 never contains a quote, so a full search is correct, only slower.
 */
static const char *find_member(const char *r, size_t len, const char *key)
{
        char pat[64];
        size_t plen = (size_t)snprintf(pat, sizeof(pat), "\"%s\"", key);
        const char *p = memmem(r, len < 256 ? len : 256, pat, plen);

        if (!p && len > 256)
                p = memmem(r + len - 256, 256, pat, plen);
        if (!p)
                p = memmem(r, len, pat, plen);
        if (!p)
                return NULL;
        p += plen;
        while (p < r + len && (*p == ' ' || *p == ':' || *p == '\t'))
                p++;
        return p < r + len ? p : NULL;
}

static bool member_int(const char *r, size_t len, const char *key, long long *v)
{
        const char *p = find_member(r, len, key);
        char *end;

        if (!p)
                return false;
        *v = strtoll(p, &end, 10);
        return end != p;
}

static bool member_true(const char *r, size_t len, const char *key)
{
        const char *p = find_member(r, len, key);

        return p && (size_t)(r + len - p) >= 4 && memcmp(p, "true", 4) == 0;
}

/* ---- echo server: the socket floor -------------------------------------------------------- */

/* The base64 text of a 64 MiB file, as in the 48 MiB read test (which needs two replies). */
#define BULK_LEN ((64 * MIB + 2) / 3 * 4)

static void write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                p += n;
                len -= (size_t)n;
        }
}

static pid_t echo_spawn(const char *path, const char *log)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char *bulk_buf = NULL;
        pid_t pid;
        int lfd;

        unlink(path);
        pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid > 0)
                return pid;
        child_common(log);
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        set_sun_path(&sa, path);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
                _exit(1);
        for (;;) {
                int fd = accept(lfd, NULL, NULL);
                char buf[4096];
                ssize_t n;

                if (fd < 0)
                        continue;
                /*
                 * One reply per newline received, exactly what an agent does for a ping; a line
                 * starting with 'B' instead gets BULK_LEN bytes of base64-like text, the size of
                 * a 48 MiB read's reply, to show the socket's bulk throughput.
                 */
                while ((n = read(fd, buf, sizeof(buf))) > 0) {
                        for (ssize_t i = 0; i < n; i++) {
                                bool bulk = buf[i] == 'B';

                                if (buf[i] != '\n' && !bulk)
                                        continue;
                                if (bulk && !bulk_buf) {
                                        bulk_buf = malloc(BULK_LEN + 1);
                                        if (!bulk_buf)
                                                _exit(1);
                                        memset(bulk_buf, 'A', BULK_LEN);
                                        bulk_buf[BULK_LEN] = '\n';
                                }
                                if (bulk) {
                                        write_all(fd, bulk_buf, BULK_LEN + 1);
                                        i++; /* its newline */
                                } else {
                                        write_all(fd, PING_REPLY, sizeof(PING_REPLY) - 1);
                                }
                        }
                }
                close(fd);
        }
}

/* ---- statistics ------------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static double pct_us(uint64_t *v, int n, double pct)
{
        int i = (int)(pct / 100.0 * (n - 1) + 0.5);

        qsort(v, (size_t)n, sizeof(*v), cmp_u64);
        return (double)v[i] / 1e3;
}

static double median_d(double *v, int n)
{
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        double t = v[j];

                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
        /* One failed run (negative) makes the whole measure invalid. */
        if (n == 0 || v[0] < 0)
                return -1;
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- measures ----------------------------------------------------------------------------- */

/* fork/exec to the first reply: connect-retry every 20 us, then one guest-ping. */
static double startup_once(struct agent *a)
{
        struct conn c;
        uint64_t t0;
        double ms;
        size_t len;
        const char *r;

        unlink(a->sock);
        t0 = now_ns();
        agent_spawn(a);
        conn_open(&c, connect_retry(a->sock, a->pid, 20000, 10.0));
        r = roundtrip(&c, PING_REQ, &len);
        ms = (double)(now_ns() - t0) / 1e6;
        if (!memmem(r, len, "\"return\"", 8))
                die("%s: bad first reply: %.*s", a->label, (int)len, r);
        conn_close(&c);
        agent_stop(a);
        return ms;
}

/* The process-start floor: fork, exec /bin/true and reap it, as the agents' starts do. */
static double spawn_true_once(void)
{
        uint64_t t0 = now_ns();
        pid_t pid = fork();

        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                execl("/bin/true", "true", (char *)NULL);
                _exit(127);
        }
        waitpid(pid, NULL, 0);
        return (double)(now_ns() - t0) / 1e6;
}

static void ping_block(struct conn *c, uint64_t *out, int n)
{
        size_t len;

        for (int i = 0; i < n; i++) {
                uint64_t t0 = now_ns();
                const char *r = roundtrip(c, PING_REQ, &len);

                out[i] = now_ns() - t0;
                if (len < 10 || memcmp(r, "{\"return\"", 9) != 0)
                        die("unexpected ping reply: %.*s", (int)len, r);
        }
}

static long long file_open(struct conn *c, const char *path)
{
        char req[PATH_MAX + 128];
        long long h;
        size_t len;
        const char *r;

        snprintf(
            req, sizeof(req),
            "{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"%s\",\"mode\":\"r\"}}\n",
            path);
        r = roundtrip(c, req, &len);
        if (!member_int(r, len, "return", &h)) {
                fprintf(stderr, "agent_bench: guest-file-open failed: %.*s\n",
                        (int)(len < 300 ? len : 300), r);
                return -1;
        }
        return h;
}

static void file_close(struct conn *c, long long h)
{
        char req[128];
        size_t len;

        snprintf(req, sizeof(req),
                 "{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":%lld}}\n", h);
        roundtrip(c, req, &len);
}

static int b64val(char ch)
{
        static const char tab[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = ch ? strchr(tab, ch) : NULL;

        return p ? (int)(p - tab) : -1;
}

/* Decodes the first 48 base64 chars of a chunk and compares them with the file's first bytes. */
static bool b64_prefix_matches(const char *b64, size_t b64len, const unsigned char *want)
{
        for (size_t i = 0; i + 4 <= b64len && i < 48; i += 4) {
                int v[4];
                unsigned char out[3];

                for (int k = 0; k < 4; k++)
                        if ((v[k] = b64val(b64[i + k])) < 0)
                                return false;
                out[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
                out[1] = (unsigned char)(v[1] << 4 | v[2] >> 2);
                out[2] = (unsigned char)(v[2] << 6 | v[3]);
                if (memcmp(out, want + i / 4 * 3, 3) != 0)
                        return false;
        }
        return true;
}

/*
 * Open, read the whole file in `count`-byte reads, close. Returns wall seconds, or a negative
 * value if the bytes did not add up (the agent's answer is then not a valid measurement).
 */
static double file_read_all(struct conn *c, const char *path, long long count,
                            long long expect_size, const unsigned char *prefix)
{
        char req[160];
        long long h, total = 0;
        bool ok = true, first = true;
        uint64_t t0 = now_ns();

        h = file_open(c, path);
        if (h < 0)
                return -1;
        snprintf(
            req, sizeof(req),
            "{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":%lld,\"count\":%lld}}\n", h,
            count);
        for (int guard = 0; guard < 100000; guard++) {
                size_t len;
                const char *r = roundtrip(c, req, &len), *b64;
                long long n;

                if (!member_int(r, len, "count", &n)) {
                        fprintf(stderr, "agent_bench: bad file-read reply: %.*s\n",
                                (int)(len < 300 ? len : 300), r);
                        ok = false;
                        break;
                }
                /* The base64 text must be exactly as long as the count says: O(1) check. */
                b64 = find_member(r, len, "buf-b64");
                if (!b64 || *b64 != '"' ||
                    (size_t)(r + len - (b64 + 1)) <= (size_t)((n + 2) / 3 * 4) ||
                    b64[1 + (n + 2) / 3 * 4] != '"')
                        ok = false;
                else if (first && n >= 36 && !b64_prefix_matches(b64 + 1, 48, prefix))
                        ok = false;
                first = false;
                total += n;
                if (member_true(r, len, "eof") || n == 0)
                        break;
        }
        file_close(c, h);
        if (!ok || total != expect_size) {
                fprintf(stderr, "agent_bench: file read returned %lld bytes (want %lld)%s\n", total,
                        expect_size, ok ? "" : ", malformed reply");
                return -1;
        }
        return (double)(now_ns() - t0) / 1e9;
}

/*
 * guest-exec /bin/true, then poll guest-exec-status back to back until it has exited. Returns
 * the number of status polls, or -1 if the agent failed (reported on stderr).
 */
static int exec_true(struct conn *c)
{
        static const char req[] =
            "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/true\"}}\n";
        char st[128];
        long long pid, code;
        size_t len;
        const char *r = roundtrip(c, req, &len);
        uint64_t deadline = now_ns() + 10000000000u;
        int polls = 0;

        if (!member_int(r, len, "pid", &pid)) {
                fprintf(stderr, "agent_bench: guest-exec failed: %.*s\n",
                        (int)(len < 300 ? len : 300), r);
                return -1;
        }
        snprintf(st, sizeof(st),
                 "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%lld}}\n", pid);
        for (;;) {
                r = roundtrip(c, st, &len);
                polls++;
                if (memmem(r, len < 16 ? len : 16, "\"error\"", 7)) {
                        fprintf(stderr, "agent_bench: guest-exec-status failed: %.*s\n",
                                (int)(len < 300 ? len : 300), r);
                        return -1;
                }
                if (member_true(r, len, "exited")) {
                        if (member_int(r, len, "exitcode", &code) && code == 0)
                                return polls;
                        fprintf(stderr, "agent_bench: /bin/true did not exit 0: %.*s\n",
                                (int)(len < 300 ? len : 300), r);
                        return -1;
                }
                if (now_ns() > deadline) {
                        fprintf(stderr, "agent_bench: /bin/true not exited after 10 s\n");
                        return -1;
                }
        }
}

/* The mix of everyday commands; the three marked ones need a handle or a pid. */
enum mix_op { MIX_PLAIN, MIX_FILE, MIX_EXEC };
struct mix_entry {
        enum mix_op op;
        const char *req;
};
static const struct mix_entry mix[] = {
    {MIX_PLAIN, PING_REQ},
    {MIX_PLAIN, "{\"execute\":\"guest-info\"}\n"},
    {MIX_PLAIN, "{\"execute\":\"guest-get-time\"}\n"},
    {MIX_PLAIN, "{\"execute\":\"guest-get-osinfo\"}\n"},
    {MIX_PLAIN, "{\"execute\":\"guest-network-get-interfaces\"}\n"},
    {MIX_PLAIN, "{\"execute\":\"guest-get-vcpus\"}\n"},
    {MIX_FILE, NULL}, /* open + read (default count) + close */
    {MIX_EXEC, NULL}, /* exec /bin/true + status polls */
};

/* Sends about n commands (every request counts, status polls included); returns the count. */
static long mixed_run(struct conn *c, long n, const char *small_file)
{
        long sent = 0;

        for (size_t i = 0; sent < n; i = (i + 1) % (sizeof(mix) / sizeof(mix[0]))) {
                size_t len;

                switch (mix[i].op) {
                case MIX_PLAIN:
                        roundtrip(c, mix[i].req, &len);
                        sent++;
                        break;
                case MIX_FILE: {
                        long long h = file_open(c, small_file);
                        char req[128];

                        sent++;
                        if (h < 0)
                                break;
                        snprintf(
                            req, sizeof(req),
                            "{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":%lld}}\n",
                            h);
                        roundtrip(c, req, &len);
                        file_close(c, h);
                        sent += 2;
                        break;
                }
                case MIX_EXEC: {
                        int polls = exec_true(c);

                        sent += 1 + (polls > 0 ? polls : 0);
                        break;
                }
                }
        }
        return sent;
}

/* ---- report ------------------------------------------------------------------------------- */

struct row {
        const char *name;
        double a, b;     /* reference, candidate; < 0 = no valid measurement */
        const char *cmp; /* "<=" or ">=", NULL for informational rows */
        double target;
        const char *unit;
        bool invalid; /* the candidate answered with errors: the number does not count */
};

static struct row mkrow(const char *name, const char *unit, double a, double b, const char *cmp,
                        double target)
{
        return (struct row){
            .name = name, .unit = unit, .a = a, .b = b, .cmp = cmp, .target = target};
}

/* The table; returns how many rows missed their target or could not be measured. */
static int print_table(const struct row *rows, int n, const struct agent *A, const struct agent *B)
{
        int failed = 0;

        printf("\n| %-44s | %12s | %12s | %7s | %8s | %-6s |\n", "measure", A->label, B->label,
               "ratio", "target", "result");
        printf("|%.46s|%.14s|%.14s|%.9s|%.10s|%.8s|\n",
               "----------------------------------------------", "--------------", "--------------",
               "---------", "----------", "--------");
        bool any_invalid = false;

        for (int i = 0; i < n; i++) {
                const struct row *r = &rows[i];
                char name[96], va[32], vb[32], ratio[16] = "-", target[16] = "-";
                const char *res = "-";

                snprintf(name, sizeof(name), "%s (%s)", r->name, r->unit);
                snprintf(va, sizeof(va), r->a < 0 ? "n/a" : "%.2f", r->a);
                snprintf(vb, sizeof(vb), r->b < 0 ? "n/a" : "%.2f", r->b);
                if (!r->cmp && r->a > 0 && r->b >= 0) {
                        snprintf(ratio, sizeof(ratio), "%.3f", r->b / r->a);
                } else if (r->cmp) {
                        snprintf(target, sizeof(target), "%s %.2g", r->cmp, r->target);
                        if (r->a > 0 && r->b >= 0) {
                                double q = r->b / r->a;
                                bool pass = r->cmp[0] == '<' ? q <= r->target : q >= r->target;

                                snprintf(ratio, sizeof(ratio), "%.3f", q);
                                res = r->invalid ? "FAIL*" : pass ? "PASS" : "FAIL";
                        } else {
                                res = "FAIL";
                        }
                }
                printf("| %-44s | %12s | %12s | %7s | %8s | %-6s |\n", name, va, vb, ratio, target,
                       res);
                any_invalid |= r->invalid;
                failed += strncmp(res, "FAIL", 4) == 0;
        }
        if (any_invalid)
                printf("FAIL*: the candidate answered some of these commands with errors (see "
                       "above)\n");
        return failed;
}

/*
 * qemu-ga against itself, from its own samples of this run: the median of one half over the
 * other, the halves interleaved in pairs of rounds (0,1,4,5,... against 2,3,6,7,...) so each
 * half has as many rounds in the first slot as in the second. The ratio a real difference
 * must clear.
 */
static double self_ratio_d(const double *v, int n)
{
        double h[2][1000];
        int m[2] = {0, 0};

        for (int i = 0; i < n && i < 2000; i++) {
                int k = (i / 2) % 2;

                if (m[k] < 1000)
                        h[k][m[k]++] = v[i];
        }
        if (m[0] == 0 || m[1] == 0)
                return -1;
        double a = median_d(h[0], m[0]), b = median_d(h[1], m[1]);

        return a > 0 ? b / a : -1;
}

static void usage(void)
{
        fprintf(stderr,
                "usage: agent_bench [--quick] --tmp DIR --ref AGENT --cand AGENT --data FILE "
                "--small FILE\n");
        exit(2);
}

int main(int argc, char **argv)
{
        const struct params *P = &full_params;
        const char *ref = NULL, *cand = NULL, *data = NULL, *small = NULL;
        struct agent A, B, *ag[2];
        struct stat sb;
        unsigned char prefix[64];
        char echo_sock[PATH_MAX], echo_log[PATH_MAX];
        struct row rows[16];
        int nrows = 0;
        double floor_med = -1, floor_p99 = -1, spawn_floor = -1, bulk_floor = -1, bulk[3];
        double noise_ping_med = -1, noise_ping_p99 = -1, noise_exec = -1, noise_start = -1;
        double noise_read = -1;
        int failed;

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        P = &quick_params;
                else if (i + 1 < argc && !strcmp(argv[i], "--tmp"))
                        g_tmp = argv[++i];
                else if (i + 1 < argc && !strcmp(argv[i], "--ref"))
                        ref = argv[++i];
                else if (i + 1 < argc && !strcmp(argv[i], "--cand"))
                        cand = argv[++i];
                else if (i + 1 < argc && !strcmp(argv[i], "--data"))
                        data = argv[++i];
                else if (i + 1 < argc && !strcmp(argv[i], "--small"))
                        small = argv[++i];
                else
                        usage();
        }
        if (!g_tmp || !ref || !cand || !data || !small)
                usage();
        signal(SIGPIPE, SIG_IGN);
        /* The largest reply is a 48 MiB read: 64 MiB of base64 plus a few bytes. */
        rx_grow(72 * MIB, 0);
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (stat(data, &sb) < 0)
                die("%s: %s", data, strerror(errno));
        {
                int fd = open(data, O_RDONLY);

                if (fd < 0 || read(fd, prefix, sizeof(prefix)) != (ssize_t)sizeof(prefix))
                        die("cannot read %s", data);
                close(fd);
        }
        agent_init(&A, "qemu-ga", ref, "ref");
        /* The harness check runs qemu-ga against itself: say so in the column header. */
        agent_init(&B, strcmp(ref, cand) ? "tether" : "qemu-ga#2", cand, "cand");
        ag[0] = &A;
        ag[1] = &B;

        /* 1. Start-up: fresh processes, alternating, median. */
        {
                double s[2][64], fl[64];
                int n = P->starts < 64 ? P->starts : 64;

                printf("[1/6] start to first reply, %d starts each ...\n", n);
                for (int i = 0; i < n; i++)
                        for (int j = 0; j < 2; j++) {
                                int k = i % 2 ? 1 - j : j; /* ABBA order */

                                s[k][i] = startup_once(ag[k]);
                                if (j == 0)
                                        fl[i] = spawn_true_once();
                        }
                spawn_floor = median_d(fl, n);
                {
                        double own[64];

                        memcpy(own, s[0], (size_t)n * sizeof(double));
                        noise_start = self_ratio_d(own, n);
                }
                rows[nrows++] = mkrow("start to first reply, median", "ms", median_d(s[0], n),
                                      median_d(s[1], n), "<=", 0.5);
                /* median_d sorted the samples: the fastest start shows the cost without load. */
                printf("      fastest: %s %.2f ms, %s %.2f ms\n", A.label, s[0][0], B.label,
                       s[1][0]);
        }

        /* 2. Fresh pair: 10,000 mixed commands, then the peak RSS of each agent. */
        struct conn ca, cb, ce, *cs[3];
        pid_t echo_pid;
        long long size = (long long)sb.st_size;
        {
                long na = 0, nb = 0, block = P->mixed_n / 10;
                uint64_t t0;
                double ta = 0, tb = 0;

                printf("[2/6] %d mixed commands each, then VmHWM ...\n", P->mixed_n);
                agent_spawn(&A);
                agent_spawn(&B);
                conn_open(&ca, connect_retry(A.sock, A.pid, 1000000, 10.0));
                conn_open(&cb, connect_retry(B.sock, B.pid, 1000000, 10.0));
                for (int round = 0; na < P->mixed_n || nb < P->mixed_n; round++)
                        for (int j = 0; j < 2; j++) {
                                int k = round % 2 ? 1 - j : j; /* ABBA order */

                                t0 = now_ns();
                                if (k == 0)
                                        na += mixed_run(&ca, block, small);
                                else
                                        nb += mixed_run(&cb, block, small);
                                if (k == 0)
                                        ta += (double)(now_ns() - t0) / 1e9;
                                else
                                        tb += (double)(now_ns() - t0) / 1e9;
                        }
                rows[nrows++] = mkrow("peak RSS after mixed cmds (VmHWM)", "MiB",
                                      proc_kb(A.pid, "VmHWM") / 1024.0,
                                      proc_kb(B.pid, "VmHWM") / 1024.0, "<=", 0.25);
                printf("      %s: %ld cmds in %.2f s, %ld error replies%s%s\n", A.label, na, ta,
                       ca.errors, ca.errors ? ", first: " : "", ca.first_error);
                printf("      %s: %ld cmds in %.2f s, %ld error replies%s%s\n", B.label, nb, tb,
                       cb.errors, cb.errors ? ", first: " : "", cb.first_error);
                rows[nrows - 1].invalid = cb.errors > 0;
                rows[nrows++] = mkrow("mixed cmds, mean time per command", "us", ta / na * 1e6,
                                      tb / nb * 1e6, NULL, 0);
        }

        /* 3. Ping latency: reference, candidate and the echo floor in alternating blocks. */
        {
                static uint64_t lat[3][100000];
                int n = P->ping_n < 100000 ? P->ping_n : 100000;

                printf("[3/6] guest-ping x %d each (+ %d warm-up), alternating blocks of %d ...\n",
                       n, P->ping_warmup, P->ping_block);
                snprintf(echo_sock, sizeof(echo_sock), "%s/echo.sock", g_tmp);
                snprintf(echo_log, sizeof(echo_log), "%s/echo.log", g_tmp);
                echo_pid = echo_spawn(echo_sock, echo_log);
                conn_open(&ce, connect_retry(echo_sock, echo_pid, 1000000, 10.0));
                cs[0] = &ca;
                cs[1] = &cb;
                cs[2] = &ce;
                for (int k = 0; k < 3; k++)
                        ping_block(cs[k], lat[k], P->ping_warmup < n ? P->ping_warmup : n);
                for (int done = 0, b = 0; done < n; done += P->ping_block, b++) {
                        int m = n - done < P->ping_block ? n - done : P->ping_block;

                        /* ABBA order: reference, candidate, floor; then floor, candidate, ... */
                        for (int j = 0; j < 3; j++) {
                                int k = b % 2 ? 2 - j : j;

                                ping_block(cs[k], lat[k] + done, m);
                        }
                }
                double med[3], p99[3];

                /* qemu-ga's own blocks, in interleaved halves (see self_ratio_d). */
                {
                        static uint64_t half[2][100000];
                        int hm[2] = {0, 0};

                        for (int done = 0, b = 0; done < n; done += P->ping_block, b++) {
                                int m = n - done < P->ping_block ? n - done : P->ping_block;
                                int h = (b / 2) % 2;

                                memcpy(half[h] + hm[h], lat[0] + done, (size_t)m * sizeof(uint64_t));
                                hm[h] += m;
                        }
                        if (hm[0] && hm[1]) {
                                double m0 = pct_us(half[0], hm[0], 50), m1 = pct_us(half[1], hm[1], 50);
                                double q0 = pct_us(half[0], hm[0], 99), q1 = pct_us(half[1], hm[1], 99);

                                noise_ping_med = m1 / m0;
                                noise_ping_p99 = q1 / q0;
                        }
                }

                for (int k = 0; k < 3; k++) {
                        med[k] = pct_us(lat[k], n, 50);
                        p99[k] = pct_us(lat[k], n, 99);
                }
                rows[nrows++] =
                    mkrow("guest-ping round trip, median", "us", med[0], med[1], "<=", 0.5);
                rows[nrows++] =
                    mkrow("guest-ping round trip, p99", "us", p99[0], p99[1], "<=", 0.5);
                floor_med = med[2];
                floor_p99 = p99[2];
                for (int i = 0; i < 3; i++) {
                        uint64_t t0 = now_ns();
                        size_t len;

                        roundtrip(&ce, "B\n", &len);
                        bulk[i] = 64.0 * MIB / ((double)(now_ns() - t0) / 1e9) / 1e6;
                        if (len != BULK_LEN)
                                die("echo server bulk reply of %zu bytes", len);
                }
                bulk_floor = median_d(bulk, 3);
                conn_close(&ce);
                kill(echo_pid, SIGKILL);
                waitpid(echo_pid, NULL, 0);
        }

        /* 4. 1 MiB reads of the data file: alternating repetitions, median throughput. */
        {
                double mbs[2][16];
                int reps = P->read_reps < 16 ? P->read_reps : 16;

                printf("[4/6] guest-file-read %lld MiB in 1 MiB reads, %d reps each ...\n",
                       size / MIB, reps);
                for (int i = 0; i < reps; i++)
                        for (int j = 0; j < 2; j++) {
                                int k = i % 2 ? 1 - j : j; /* ABBA order */
                                double c0 = proc_cpu_s(ag[k]->pid), u0 = self_cpu_s();
                                double s = file_read_all(k ? &cb : &ca, data, MIB, size, prefix);

                                mbs[k][i] = s > 0 ? (double)size / s / 1e6 : -1;
                                printf(
                                    "      %s: %.3f s wall, agent CPU %.2f s, client CPU %.2f s\n",
                                    ag[k]->label, s, proc_cpu_s(ag[k]->pid) - c0,
                                    self_cpu_s() - u0);
                        }
                {
                        double own[16];

                        memcpy(own, mbs[0], (size_t)reps * sizeof(double));
                        noise_read = self_ratio_d(own, reps);
                }
                rows[nrows++] = mkrow("file-read 1 MiB chunks, median", "MB/s",
                                      median_d(mbs[0], reps), median_d(mbs[1], reps), ">=", 3);
        }

        /* 5. guest-exec /bin/true + status polling until exited. */
        {
                static double ms[2][1000];
                double sum[2] = {0, 0};
                long polls[2] = {0, 0};
                bool bad[2] = {false, false};
                int n = 0;

                printf("[5/6] guest-exec /bin/true + status polls, %d each ...\n", P->exec_n);
                for (int b = 0; n < P->exec_n && n + P->exec_block <= 1000;
                     n += P->exec_block, b++)
                        for (int j = 0; j < 2; j++) {
                                int k = b % 2 ? 1 - j : j; /* ABBA order */

                                for (int i = n; i < n + P->exec_block; i++) {
                                        uint64_t t0 = now_ns();
                                        int m = exec_true(k ? &cb : &ca);

                                        ms[k][i] = (double)(now_ns() - t0) / 1e6;
                                        sum[k] += ms[k][i];
                                        polls[k] += m;
                                        bad[k] |= m < 0;
                                }
                        }
                /* qemu-ga's exec blocks, in interleaved halves: block means. */
                {
                        double blk[1000];
                        int nb = 0;

                        for (int i = 0; i + P->exec_block <= n; i += P->exec_block) {
                                double t = 0;

                                for (int x = i; x < i + P->exec_block; x++)
                                        t += ms[0][x];
                                blk[nb++] = t / P->exec_block;
                        }
                        noise_exec = self_ratio_d(blk, nb);
                }
                printf("      status polls per exec: %s %.1f, %s %.1f; median exec: %s %.2f ms, "
                       "%s %.2f ms\n",
                       A.label, (double)polls[0] / n, B.label, (double)polls[1] / n, A.label,
                       median_d(ms[0], n), B.label, median_d(ms[1], n));
                rows[nrows++] =
                    mkrow("guest-exec /bin/true until exited, mean", "ms", bad[0] ? -1 : sum[0] / n,
                          bad[1] ? -1 : sum[1] / n, "<=", 0.6);
        }
        conn_close(&ca);
        conn_close(&cb);
        agent_stop(&A);
        agent_stop(&B);

        /* 6. Fresh pair: 48 MiB reads (the protocol maximum) and the agent's peak RSS. */
        {
                int reps = P->big_reps < 8 ? P->big_reps : 8;
                double mbs[2][8];
                long hwm[2] = {0, 0};
                bool bad[2] = {false, false}; /* a run returned wrong bytes: no valid RSS */

                printf("[6/6] guest-file-read %lld MiB in 48 MiB reads, fresh agent per run, %d "
                       "runs each ...\n",
                       size / MIB, reps);
                for (int i = 0; i < reps; i++)
                        for (int j = 0; j < 2; j++) {
                                int k = i % 2 ? 1 - j : j; /* ABBA order */
                                struct agent *a = ag[k];
                                long hwm0, hwm1;
                                double cpu, ucpu, s;
                                struct conn c;

                                agent_spawn(a);
                                conn_open(&c, connect_retry(a->sock, a->pid, 1000000, 10.0));
                                hwm0 = proc_kb(a->pid, "VmHWM");
                                cpu = proc_cpu_s(a->pid);
                                ucpu = self_cpu_s();
                                s = file_read_all(&c, data, 48 * MIB, size, prefix);
                                ucpu = self_cpu_s() - ucpu;
                                hwm1 = proc_kb(a->pid, "VmHWM");
                                cpu = proc_cpu_s(a->pid) - cpu;
                                conn_close(&c);
                                agent_stop(a);
                                printf(
                                    "      %s: %.2f s wall, agent CPU %.2f s, client CPU %.2f s, "
                                    "VmHWM %ld KiB before, %ld KiB after\n",
                                    a->label, s, cpu, ucpu, hwm0, hwm1);
                                mbs[k][i] = s > 0 ? (double)size / s / 1e6 : -1;
                                bad[k] |= s < 0;
                                if (hwm1 > hwm[k])
                                        hwm[k] = hwm1;
                        }
                rows[nrows++] = mkrow("file-read 48 MiB chunks, median", "MB/s",
                                      median_d(mbs[0], reps), median_d(mbs[1], reps), ">=", 10);
                rows[nrows++] =
                    mkrow("peak RSS during 48 MiB reads (VmHWM)", "MiB",
                          bad[0] ? -1 : hwm[0] / 1024.0, bad[1] ? -1 : hwm[1] / 1024.0, "<=", 0.5);
        }

        /* Order the rows as in the brief: latency first, start-up last. */
        {
                static const char *const order[] = {
                    "guest-ping round trip, median",
                    "guest-ping round trip, p99",
                    "file-read 1 MiB chunks, median",
                    "file-read 48 MiB chunks, median",
                    "peak RSS during 48 MiB reads (VmHWM)",
                    "guest-exec /bin/true until exited, mean",
                    "peak RSS after mixed cmds (VmHWM)",
                    "mixed cmds, mean time per command",
                    "start to first reply, median",
                };
                struct row sorted[16];
                int m = 0;

                for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++)
                        for (int i = 0; i < nrows; i++)
                                if (!strcmp(rows[i].name, order[o]))
                                        sorted[m++] = rows[i];
                failed = print_table(sorted, m, &A, &B);
                printf("socket floor (trivial C echo server, same request and reply bytes): "
                       "median %.2f us, p99 %.2f us\n",
                       floor_med, floor_p99);
                printf("socket bulk floor (echo server sends the base64 of 64 MiB as one reply): "
                       "%.0f MB/s of file bytes\n",
                       bulk_floor);
                printf("process start floor (fork, exec /bin/true, until reaped): median %.2f ms\n",
                       spawn_floor);
                {
                        const double nv[] = {noise_ping_med, noise_ping_p99, noise_exec,
                                             noise_read, noise_start};
                        const char *const nn[] = {"ping median", "ping p99", "exec mean",
                                                  "1 MiB reads", "start"};

                        printf("noise floor, qemu-ga against itself (interleaved halves of its "
                               "own samples):");
                        for (size_t i = 0; i < sizeof(nv) / sizeof(nv[0]); i++)
                                printf(nv[i] > 0 ? "%s %s %.3f" : "%s %s n/a (too few samples)",
                                       i ? "," : "", nn[i], nv[i]);
                        printf("\n");
                }
        }
        if (failed) {
                printf("agent_bench: %d row(s) missed their target or could not be measured\n",
                       failed);
                return 1;
        }
        return 0;
}
