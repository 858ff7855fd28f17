/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The replay driver linked into every *_replay program: each argument is a file holding one
 * input, or a folder of them, run once through LLVMFuzzerTestOneInput. A crash or a sanitizer
 * report ends the run; a folder without inputs fails it, so an empty or misnamed corpus
 * cannot pass.
 */
#include "fuzz.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        unsigned char *buf;
        long len;

        if (f == NULL) {
                perror(path);
                return -1;
        }
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(len > 0 ? (size_t)len : 1);
        if (buf == NULL || len < 0 || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                fprintf(stderr, "%s: cannot read\n", path);
                fclose(f);
                free(buf);
                return -1;
        }
        fclose(f);
        printf("%s: ", path);
        fflush(stdout);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        printf("ok\n");
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every input in a folder, in name order (so a failing run is the same run next time). */
static int replay_dir(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char **names = NULL;
        size_t n = 0;
        int failed = 0;

        if (d == NULL) {
                perror(dir);
                return -1;
        }
        while ((e = readdir(d)) != NULL) {
                char **nn;

                if (e->d_name[0] == '.')
                        continue;
                nn = realloc(names, (n + 1) * sizeof(*names));
                if (nn == NULL || (nn[n] = strdup(e->d_name)) == NULL) {
                        fprintf(stderr, "out of memory\n");
                        abort();
                }
                names = nn;
                n++;
        }
        closedir(d);
        if (n == 0) {
                fprintf(stderr, "%s: no inputs to replay\n", dir);
                return -1;
        }
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
                char path[4096];

                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                failed |= replay_file(path) < 0;
                free(names[i]);
        }
        free(names);
        printf("%s: %zu inputs replayed\n", dir, n);
        return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
        int failed = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
                        failed |= replay_dir(argv[i]) < 0;
                else
                        failed |= replay_file(argv[i]) < 0;
        }
        return failed;
}
