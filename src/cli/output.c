/* SPDX-License-Identifier: GPL-2.0-or-later */
/* virsh-style tables, JSON output, and error lines. */
#include "cli/cli.h"
#include "common/cleanup.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

bool cli_flag(const struct cli_opts *o, const char *name)
{
        for (size_t i = 0; i < o->nflags; i++)
                if (strcmp(o->flags[i], name) == 0)
                        return true;
        return false;
}

#define CLI_TABLE_MAX_COLS 16

void cli_table_init(struct cli_table *t, size_t ncols, const char *const *header)
{
        t->ncols = ncols < CLI_TABLE_MAX_COLS ? ncols : CLI_TABLE_MAX_COLS;
        t->nrows = 0;
        t->cells = NULL;
        cli_table_add(t, header);
}

void cli_table_add(struct cli_table *t, const char *const *row)
{
        char **n = reallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(char *));

        if (n == NULL)
                return;
        t->cells = n;
        for (size_t c = 0; c < t->ncols; c++)
                t->cells[t->nrows * t->ncols + c] = strdup(row[c] ? row[c] : "");
        t->nrows++;
}

/* Columns a cell takes on the terminal (vshTable pads by display width, not bytes). */
static size_t cell_width(const char *s)
{
        mbstate_t st = {0};
        const char *p = s;
        size_t n = mbsrtowcs(NULL, &p, 0, &st);
        _cleanup_free_ wchar_t *w = NULL;
        int cols;

        if (n == (size_t)-1 || (w = calloc(n + 1, sizeof(*w))) == NULL)
                return strlen(s);
        p = s;
        memset(&st, 0, sizeof(st));
        mbsrtowcs(w, &p, n + 1, &st);
        cols = wcswidth(w, n);
        return cols < 0 ? strlen(s) : (size_t)cols;
}

void cli_table_print(const struct cli_table *t, bool quiet)
{
        size_t width[CLI_TABLE_MAX_COLS] = {0}, total = 0;

        /* As vshTable: with --quiet the header is not printed and does not widen columns. */
        for (size_t r = quiet ? 1 : 0; r < t->nrows; r++)
                for (size_t c = 0; c < t->ncols; c++) {
                        size_t len = cell_width(t->cells[r * t->ncols + c]);
                        if (len > width[c])
                                width[c] = len;
                }
        for (size_t r = quiet ? 1 : 0; r < t->nrows; r++) {
                for (size_t c = 0; c < t->ncols; c++) {
                        const char *cell = t->cells[r * t->ncols + c];

                        printf(" %s", cell);
                        if (c + 1 < t->ncols)
                                printf("%*s", (int)(width[c] - cell_width(cell) + 2), "");
                }
                printf("\n");
                if (r == 0) {
                        for (size_t c = 0; c < t->ncols; c++)
                                total += width[c] + 3;
                        for (size_t i = 0; i < total; i++)
                                putchar('-');
                        printf("\n");
                }
        }
        /* virsh ends a command's output with a blank line, except with --quiet. */
        if (!quiet)
                printf("\n");
}

void cli_table_free(struct cli_table *t)
{
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        t->cells = NULL;
}

void cli_print_json(json_t *v)
{
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

        if (s) {
                printf("%s\n", s);
                free(s);
        }
}

void cli_error(const char *fmt, ...)
{
        va_list ap;

        fputs("error: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

json_t *cli_flag_values(const struct cli_opts *o, const char *name)
{
        json_t *arr = json_array();
        size_t len = strlen(name);

        for (size_t i = 0; arr && i < o->nflags; i++)
                if (strncmp(o->flags[i], name, len) == 0 && o->flags[i][len] == '=')
                        json_array_append_new(arr, json_string(o->flags[i] + len + 1));
        return arr;
}

const char *cli_flag_value(const struct cli_opts *o, const char *name)
{
        size_t len = strlen(name);
        const char *found = NULL;

        /* The last one given wins, as virsh's single-valued options. */
        for (size_t i = 0; i < o->nflags; i++)
                if (strncmp(o->flags[i], name, len) == 0 && o->flags[i][len] == '=')
                        found = o->flags[i] + len + 1;
        return found;
}

/* A string as yajl writes it: '"' '\\' and control bytes escaped, the rest as is. */
static int yajl_string(FILE *f, const char *s, size_t len)
{
        fputc('"', f);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                switch (c) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                case '\b': fputs("\\b", f); break;
                case '\f': fputs("\\f", f); break;
                default:
                        if (c < 0x20)
                                fprintf(f, "\\u00%02X", c);
                        else
                                fputc(c, f);
                }
        }
        fputc('"', f);
        return 0;
}

static void yajl_indent(FILE *f, int depth)
{
        for (int i = 0; i < depth; i++)
                fputs("  ", f);
}

/*
 * yajl's beautified generator (libvirt 9.0's virJSONValueToString(v, true)): containers open
 * with a newline, members are indented by two spaces per level with ": " after keys, and a
 * closing bracket always starts a new line, so an empty container is "{\n\n}".
 */
static void yajl_value(FILE *f, json_t *v, int depth)
{
        const char *key;
        json_t *m;
        size_t i;
        bool first = true;

        switch (json_typeof(v)) {
        case JSON_OBJECT:
                fputs("{\n", f);
                json_object_foreach(v, key, m) {
                        if (!first)
                                fputs(",\n", f);
                        first = false;
                        yajl_indent(f, depth + 1);
                        yajl_string(f, key, strlen(key));
                        fputs(": ", f);
                        yajl_value(f, m, depth + 1);
                }
                fputc('\n', f);
                yajl_indent(f, depth);
                fputc('}', f);
                break;
        case JSON_ARRAY:
                fputs("[\n", f);
                json_array_foreach(v, i, m) {
                        if (!first)
                                fputs(",\n", f);
                        first = false;
                        yajl_indent(f, depth + 1);
                        yajl_value(f, m, depth + 1);
                }
                fputc('\n', f);
                yajl_indent(f, depth);
                fputc(']', f);
                break;
        case JSON_STRING:
                yajl_string(f, json_string_value(v), json_string_length(v));
                break;
        default: {
                char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));

                if (text)
                        fputs(text, f);
                free(text);
        }
        }
}

char *cli_json_libvirt(json_t *v, bool pretty)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        if (!pretty)
                return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        f = open_memstream(&text, &size);
        if (f == NULL)
                return NULL;
        yajl_value(f, v, 0);
        /* yajl ends a complete top-level value with a newline when beautifying. */
        fputc('\n', f);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}
