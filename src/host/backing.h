/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backing chain of a qcow2 disk image, read by tetherd (issue 10). QEMU, started as root,
 * would otherwise open every backing file by the path written in the image's header, whoever
 * wrote that header: a client that is not root could then name /etc/shadow as the backing
 * file of an image in an image folder and read it from the guest. tetherd walks the chain
 * itself, checks each link (image folders for a client that is not root), opens it, and QEMU
 * gets each link as a descriptor with the chain spelled out (-blockdev ...,backing=NODE).
 */
#ifndef TT_HOST_BACKING_H
#define TT_HOST_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include "common/tt_error.h"

/* At most this many backing files below an image (QEMU itself allows 1000). */
#define BACKING_MAX_DEPTH 16
/* How much of an image's start is read for its header, extensions and backing name. */
#define BACKING_HEADER_MAX 65536

/* What one image's header says about the files below it. */
struct backing_info {
        bool qcow2;     /* the image is qcow2 (magic QFI\xfb, version 2 or 3) */
        char *name;     /* backing file name as written in the header (malloc'd), or NULL */
        char *format;   /* backing format from the header extension (malloc'd), or NULL */
        bool data_file; /* the image keeps its data in an external file (opened by path) */
};

/*
 * Parse the first len bytes of an image. Not qcow2: 0 with qcow2 false. qcow2: 0 with the
 * fields set. A malformed qcow2 header (a backing name out of bounds or too long, a broken
 * extension): -1 with err. Free with backing_info_clear().
 */
int backing_parse(const unsigned char *buf, size_t len, struct backing_info *out,
                  struct tt_error *err);
void backing_info_clear(struct backing_info *info);

/*
 * The full path of a backing name relative to the image that names it (QEMU's rule: relative
 * to the image's folder; a "file:" prefix is dropped). Names with another protocol or a
 * "json:" pseudo-path are refused (-1 with err): tetherd only hands QEMU plain files.
 * *out is malloc'd.
 */
int backing_resolve(const char *image_path, const char *name, char **out, struct tt_error *err);

/* One link of a chain as tetherd opened it. */
struct backing_link {
        int fd;     /* read-only descriptor, owned by whoever holds the link */
        bool qcow2; /* its format: qcow2, else raw */
        char *path; /* the path it was opened by (malloc'd) */
};

/*
 * Opens one link: path is the resolved backing file, image the image that names it. Returns
 * a read-only descriptor, or -1 with err (the refusal of a policy, or the open's error).
 */
typedef int (*backing_open_fn)(void *opaque, const char *path, const char *image,
                               struct tt_error *err);

/*
 * Walk the chain below the image open as top_fd (opened from top_path): each backing file is
 * opened through open_fn, its format taken from the header extension, else probed. Fills
 * *links (top-down: the image's own backing file first) and *n; nothing below a raw image.
 * -1 with err on a malformed header, an unsupported format, a chain deeper than
 * BACKING_MAX_DEPTH, an external data file, or open_fn's refusal; the links opened so far
 * are closed then.
 */
int backing_walk(int top_fd, const char *top_path, backing_open_fn open_fn, void *opaque,
                 struct backing_link **links, size_t *n, struct tt_error *err);
void backing_links_free(struct backing_link *links, size_t n);

#endif
