/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Save images (virsh save / managedsave): a Tether header, the domain XML, padding to 4 KiB,
 * then QEMU's migration stream, which QEMU writes straight into the file through a passed fd.
 *
 *   offset  size  field
 *        0    16  magic: "TetherPart" while the save runs, "TetherSave" once it is complete
 *       16     4  version (1), little endian like every field below
 *       20     4  flags (SAVEIMAGE_WAS_RUNNING)
 *       24     4  XML length in bytes (no terminator)
 *       28     4  reserved, 0
 *       32     8  offset of the migration stream (a multiple of 4096)
 *       40     8  length of the migration stream (0 until complete)
 *       48    16  reserved, 0
 *       64     -  the domain XML (with graphics passwords: restore needs them)
 *
 * Like libvirt's LibvirtQemudPart/LibvirtQemudSave, the magic is flipped last, after an fsync,
 * so a crash mid-save leaves a file that restore refuses. The stream length also catches a file
 * truncated later (libvirt only notices that when QEMU fails half-way through loading it).
 */
#ifndef TT_HOST_SAVEIMAGE_H
#define TT_HOST_SAVEIMAGE_H

#include <stdint.h>
#include "common/tt_error.h"

#define SAVEIMAGE_MAGIC "TetherSave"
#define SAVEIMAGE_MAGIC_PARTIAL "TetherPart"
#define SAVEIMAGE_VERSION 1
#define SAVEIMAGE_HEADER_SIZE 64
#define SAVEIMAGE_ALIGN 4096
/* Larger XML is refused when reading (a definition is a few KiB; the parser takes 1 MiB). */
#define SAVEIMAGE_MAX_XML (1u << 20)

enum saveimage_flags {
        SAVEIMAGE_WAS_RUNNING = 1 << 0, /* vCPUs ran when the save began: restore resumes them */
};

struct saveimage {
        uint32_t version;     /* header version */
        uint32_t flags;       /* enum saveimage_flags */
        char *xml;            /* the domain XML, NUL-terminated, malloc'd */
        uint64_t data_offset; /* where QEMU's migration stream starts */
        uint64_t data_len;    /* its length (complete images only) */
};

/*
 * Create path (mode 0600, replacing a file there), write a partial header and the XML, and
 * return an fd positioned at the stream offset, for QEMU to write the stream to. img is filled.
 */
int saveimage_create(const char *path, const char *xml, uint32_t flags, struct saveimage *img,
                     struct tt_error *err);
/*
 * The same into fd, a file a client opened (path names it in messages only): refused unless it
 * is a regular file open for writing without O_APPEND. Returns fd (not taken over) or -1.
 */
int saveimage_create_fd(int fd, const char *path, const char *xml, uint32_t flags,
                        struct saveimage *img, struct tt_error *err);
/* QEMU finished writing: fsync, record the stream length, flip the magic, fsync again. */
int saveimage_finish(int fd, struct saveimage *img, struct tt_error *err);
/*
 * Open and check an image: returns an fd positioned at the stream, with img filled. Refused
 * with a clear text: "not a Tether save image", "image is incomplete (...)", "unsupported save
 * image version N", ... (err->code is EINVAL for a bad file, errno for I/O errors).
 */
int saveimage_open(const char *path, struct saveimage *img, struct tt_error *err);
/*
 * The same on fd, a file a client opened (path names it in messages only): refused unless it is
 * a regular file open for reading; nothing is read before that is known. Returns fd (not taken
 * over) or -1.
 */
int saveimage_open_fd(int fd, const char *path, struct saveimage *img, struct tt_error *err);
void saveimage_clear(struct saveimage *img);

#endif
