/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Scope-bound ownership: variables that free, close or decref themselves (crun style). */
#ifndef TT_CLEANUP_H
#define TT_CLEANUP_H

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void tt_freep(void *p)
{
        free(*(void **)p);
}

static inline void tt_closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void tt_fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

static inline void tt_closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

static inline void tt_json_decrefp(json_t **j)
{
        json_decref(*j);
}

#define _cleanup_free_    __attribute__((cleanup(tt_freep)))
#define _cleanup_close_   __attribute__((cleanup(tt_closep)))
#define _cleanup_fclose_  __attribute__((cleanup(tt_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(tt_closedirp)))
#define _cleanup_json_    __attribute__((cleanup(tt_json_decrefp)))
/*
 * Take ownership of a json_t received as a parameter: `_owns_json_ json_t *owned = msg;` drops
 * the reference at scope exit. The variable exists only for that, so clang must not call it unused.
 */
#define _owns_json_       __attribute__((cleanup(tt_json_decrefp), unused))

/* Hand ownership over: returns the pointer and leaves NULL behind. */
#define steal_pointer(pp)                                                                          \
        ({                                                                                         \
                __typeof__(*(pp)) _stolen = *(pp);                                                 \
                *(pp) = NULL;                                                                      \
                _stolen;                                                                           \
        })

/* Hand a file descriptor over: returns it and leaves -1 behind. */
#define steal_fd(fdp)                                                                              \
        ({                                                                                         \
                int _stolen = *(fdp);                                                              \
                *(fdp) = -1;                                                                       \
                _stolen;                                                                           \
        })

#define TT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
