/* SPDX-License-Identifier: GPL-2.0-or-later */
/* guest-get-diskstats, guest-get-cpustats, guest-get-load: /proc counters. */
#include "agent/agent.h"
#include "agent/sysinfo.h"
#include "common/cleanup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest device name we accept from /proc/diskstats (qemu-ga: 128). */
#define DISK_NAME_MAX 127

/*
 * /proc/diskstats columns after "major minor name", by position. Which of them exist depends on
 * the kernel: 4 (old partition lines), 11 (2.6+), 15 (4.18+, discard), 17 (5.5+, flush).
 */
enum {
        DS_RD_IOS,
        DS_RD_MERGES,
        DS_RD_SEC,
        DS_RD_TICKS,
        DS_WR_IOS,
        DS_WR_MERGES,
        DS_WR_SEC,
        DS_WR_TICKS,
        DS_IOS_PGR,
        DS_TOT_TICKS,
        DS_RQ_TICKS,
        DS_DC_IOS,
        DS_DC_MERGES,
        DS_DC_SEC,
        DS_DC_TICKS,
        DS_FL_IOS,
        DS_FL_TICKS,
        DS_COLS,
};

/* Reply member for each column, in qemu's GuestDiskStats member order. */
static const struct {
        const char *key; /* reply member */
        int col;         /* column (DS_*) for the 11+ column layout */
        int min_cols;    /* present when the line has at least this many columns */
} diskstat_members[] = {
    {"read-sectors", DS_RD_SEC, 11},      {"read-ios", DS_RD_IOS, 11},
    {"read-merges", DS_RD_MERGES, 11},    {"write-sectors", DS_WR_SEC, 11},
    {"write-ios", DS_WR_IOS, 11},         {"write-merges", DS_WR_MERGES, 11},
    {"discard-sectors", DS_DC_SEC, 15},   {"discard-ios", DS_DC_IOS, 15},
    {"discard-merges", DS_DC_MERGES, 15}, {"flush-ios", DS_FL_IOS, 17},
    {"read-ticks", DS_RD_TICKS, 11},      {"write-ticks", DS_WR_TICKS, 11},
    {"discard-ticks", DS_DC_TICKS, 15},   {"flush-ticks", DS_FL_TICKS, 17},
    {"ios-pgr", DS_IOS_PGR, 11},          {"total-ticks", DS_TOT_TICKS, 11},
    {"weight-ticks", DS_RQ_TICKS, 11},
};

/* Split up to max unsigned decimal columns from s; returns how many parsed before a non-number. */
static int parse_u64_columns(const char *s, uint64_t *vals, int max)
{
        int n = 0;

        while (n < max) {
                char *end;
                unsigned long long v;

                while (*s == ' ' || *s == '\t')
                        s++;
                if (*s < '0' || *s > '9')
                        break;
                errno = 0;
                v = strtoull(s, &end, 10);
                if (errno == ERANGE)
                        break;
                vals[n++] = v;
                s = end;
        }
        return n;
}

static json_t *diskstat_entry(const char *line)
{
        char name[DISK_NAME_MAX + 1];
        unsigned int major, minor;
        uint64_t c[DS_COLS];
        int off = 0, ncols;
        json_t *stats;
        size_t i;

        if (sscanf(line, "%u %u %127s%n", &major, &minor, name, &off) != 3 || off == 0)
                return NULL;
        ncols = parse_u64_columns(line + off, c, DS_COLS);
        if (ncols < 4)
                return NULL;
        stats = json_object();
        if (stats == NULL)
                return NULL;
        if (ncols < 11) {
                /* Old partition format: reads, read sectors, writes, write sectors. qemu-ga
                 * fills these only for exactly 4 columns; 5..10 leave the stats empty. */
                if (ncols == 4) {
                        json_object_set_new(stats, "read-sectors", agent_json_u64(c[1]));
                        json_object_set_new(stats, "read-ios", agent_json_u64(c[0]));
                        json_object_set_new(stats, "write-sectors", agent_json_u64(c[3]));
                        json_object_set_new(stats, "write-ios", agent_json_u64(c[2]));
                }
        } else {
                for (i = 0; i < TT_ARRAY_SIZE(diskstat_members); i++)
                        if (ncols >= diskstat_members[i].min_cols)
                                json_object_set_new(stats, diskstat_members[i].key,
                                                    agent_json_u64(c[diskstat_members[i].col]));
        }
        return json_pack("{s:s,s:I,s:I,s:o}", "name", name, "major", (json_int_t)major, "minor",
                         (json_int_t)minor, "stats", stats);
}

AGENT_HANDLER(agent_cmd_get_diskstats)
{
        _cleanup_free_ char *path = agent_path("/proc/diskstats");
        _cleanup_json_ json_t *list = json_array();
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        if (path == NULL || list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        f = fopen(path, "re");
        if (f == NULL)
                return tt_error_errno(err, errno, "open(\"%s\")", "/proc/diskstats");
        while (getline(&line, &cap, f) != -1) {
                json_t *e = diskstat_entry(line);

                if (e && json_array_append_new(list, e) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
        }
        *ret = steal_pointer(&list);
        return 0;
}

/* /proc/stat cpuN columns, in order; the first four are always reported. */
static const char *const cpustat_keys[] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestnice",
};

AGENT_HANDLER(agent_cmd_get_cpustats)
{
        _cleanup_free_ char *path = agent_path("/proc/stat");
        _cleanup_json_ json_t *list = json_array();
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        long clk_tck = sysconf(_SC_CLK_TCK);
        size_t cap = 0;

        if (path == NULL || list == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        if (clk_tck <= 0)
                clk_tck = 100;
        f = fopen(path, "re");
        if (f == NULL)
                return tt_error_errno(err, errno, "open(\"%s\")", "/proc/stat");
        while (getline(&line, &cap, f) != -1) {
                uint64_t v[TT_ARRAY_SIZE(cpustat_keys)];
                int64_t cpu;
                json_t *e;
                char *end;
                int n, i;

                /* "cpuN ..." lines only: the "cpu ..." total is skipped */
                if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
                        continue;
                errno = 0;
                cpu = strtoll(line + 3, &end, 10);
                if (errno || (*end != ' ' && *end != '\t'))
                        continue;
                n = parse_u64_columns(end, v, (int)TT_ARRAY_SIZE(cpustat_keys));
                if (n < 4)
                        break; /* qemu-ga stops at a malformed line, too */
                e = json_pack("{s:s,s:I}", "type", "linux", "cpu", (json_int_t)cpu);
                if (e == NULL || json_array_append_new(list, e) < 0)
                        return tt_error_set(err, ENOMEM, "out of memory");
                /* ticks to milliseconds; columns the kernel does not print are left out */
                for (i = 0; i < n; i++)
                        json_object_set_new(e, cpustat_keys[i],
                                            agent_json_u64(v[i] * 1000 / (uint64_t)clk_tck));
        }
        *ret = steal_pointer(&list);
        return 0;
}

AGENT_HANDLER(agent_cmd_get_load)
{
        double load[3];

        if (getloadavg(load, 3) != 3)
                return tt_error_errno(err, errno ? errno : EIO, "cannot query load average");
        *ret = json_pack("{s:f,s:f,s:f}", "load1m", load[0], "load5m", load[1], "load15m", load[2]);
        if (*ret == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        return 0;
}
