/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every fuzz target shares: the libFuzzer entry point (each target defines it), the
 * replay driver (replay.c) that runs it over files when the target is built without
 * -fsanitize=fuzzer, and a check that fails loudly.
 */
#ifndef TT_FUZZ_H
#define TT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code under test broke: say which, then abort (libFuzzer saves the input). */
#define FUZZ_CHECK(cond)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
                                #cond);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* A copy of data with a NUL after it (most parsers under test take C strings); malloc'd. */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* A private scratch folder for this process, created on first use, removed at exit. */
const char *fuzz_scratch_dir(void);
/* Write data to DIR/rel (parents created), replacing the file; aborts on failure. */
void fuzz_write_file(const char *dir, const char *rel, const void *data, size_t len);
/* Remove DIR/rel if it exists. */
void fuzz_remove_file(const char *dir, const char *rel);

#endif
