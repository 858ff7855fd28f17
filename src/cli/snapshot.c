/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The snapshot verbs (virsh snapshot-*). tetherd keeps the snapshots and their metadata; the
 * views (list filters, the tree, info's counts, parent) are computed here from one
 * snapshot-list reply, and printed in virsh 9.0's words and layout.
 */
#include "cli/cli.h"
#include "cli/lazyxml.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A snapshot file given to snapshot-create is at most this large. */
#define SNAP_MAX_FILE (1u << 20)

/* Call the daemon; an error reply is printed (with virsh's blank line) and NULL returned. */
static json_t *snap_call(struct cli_conn *c, const char *execute, json_t *args,
                         const struct cli_opts *o, const char *fail_line)
{
        struct tt_error err = {0};
        json_t *reply = cli_call(c, execute, args, &err);
        json_t *error;

        if (reply == NULL) {
                cli_error("%s", err.msg ? err.msg : "no reply");
                tt_error_clear(&err);
                return NULL;
        }
        error = json_object_get(reply, "error");
        if (error) {
                const char *class = json_string_value(json_object_get(error, "class"));

                /* virsh's own line, except when the snapshot was not even found. */
                if (fail_line && !(class && strcmp(class, "NoDomain") == 0))
                        fprintf(stderr, "error: %s\n", fail_line);
                cli_error("%s", json_string_value(json_object_get(error, "desc")));
                if (!o->quiet)
                        printf("\n");
                json_decref(reply);
                return NULL;
        }
        return reply;
}

static int failed(const struct cli_opts *o)
{
        if (!o->quiet)
                printf("\n");
        return EXIT_FAILURE;
}

/* ---- create ---- */

int cli_args_snapshot_create_as(json_t *args, const struct cli_opts *o)
{
        const char *desc = cli_flag_value(o, "description");
        const char *name = cli_flag_value(o, "name");

        if (o->npos > 3) {
                cli_error("unexpected data '%s'", o->pos[3]);
                return -1;
        }
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        /* Valued options arrive typed ("123" as a number): the texts are strings. */
        json_object_del(args, "name");
        json_object_del(args, "description");
        if (o->npos >= 2)
                name = o->pos[1];
        if (o->npos >= 3)
                desc = o->pos[2];
        if (name)
                json_object_set_new(args, "name", json_string(name));
        if (desc)
                json_object_set_new(args, "description", json_string(desc));
        return 0;
}

/* snapshot-create DOMAIN [XMLFILE]: name and description come from the document. */
int cli_args_snapshot_create(json_t *args, const struct cli_opts *o)
{
        _cleanup_free_ char *text = NULL;
        struct tt_error err = {0};
        size_t len = 0;
        const struct lazyxml *x;
        xmlDocPtr doc;
        xmlXPathContextPtr ctx;

        if (o->npos > 2) {
                cli_error("unexpected data '%s'", o->pos[2]);
                return -1;
        }
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (o->npos < 2)
                return 0;
        if (tt_read_file(o->pos[1], SNAP_MAX_FILE, &text, &len, &err) < 0) {
                cli_error("Failed to read file '%s' to create snapshot", o->pos[1]);
                tt_error_clear(&err);
                return -1;
        }
        x = lazyxml();
        if (x == NULL)
                return -1;
        doc = x->read_memory(text, (int)len, o->pos[1], NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        ctx = doc ? x->xpath_new_context(doc) : NULL;
        if (ctx == NULL) {
                x->free_doc(doc);
                cli_error("XML error: cannot parse '%s'", o->pos[1]);
                return -1;
        }
        {
                static const char *const fields[][2] = {
                        {"name", "string(/domainsnapshot/name)"},
                        {"description", "string(/domainsnapshot/description)"},
                };

                for (size_t i = 0; i < TT_ARRAY_SIZE(fields); i++) {
                        xmlXPathObjectPtr v =
                                x->xpath_eval_expression((const xmlChar *)fields[i][1], ctx);

                        if (v && v->stringval && v->stringval[0])
                                json_object_set_new(args, fields[i][0],
                                                    json_string((const char *)v->stringval));
                        x->xpath_free_object(v);
                }
        }
        x->xpath_free_context(ctx);
        x->free_doc(doc);
        json_object_set_new(args, "file", json_string(o->pos[1]));
        return 0;
}

int cli_run_snapshot_create(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        _cleanup_json_ json_t *req = json_deep_copy(args);

        /* "file" is ours, for the message; the daemon gets the document's fields. */
        json_object_del(req, "file");
        {
                _cleanup_json_ json_t *reply = snap_call(c, "snapshot-create", req, o, NULL);
                json_t *ret = json_object_get(reply, "return");
                const char *file = json_string_value(json_object_get(args, "file"));
                const char *name;

                if (reply == NULL)
                        return EXIT_FAILURE;
                name = json_string_value(json_object_get(ret, "name"));
                if (o->json)
                        cli_print_json(ret);
                else if (!o->quiet && file)
                        printf("Domain snapshot %s created from '%s'\n", name, file);
                else if (!o->quiet)
                        printf("Domain snapshot %s created\n", name);
        }
        return EXIT_SUCCESS;
}

/* ---- the views built on snapshot-list ---- */

struct snapview {
        json_t *reply;     /* the whole reply (owned) */
        json_t *snaps;     /* its "snapshots" array */
        const char *current; /* the current snapshot's name, or NULL */
        const char *domain;  /* the domain's name */
};

static int view_load(struct cli_conn *c, const struct cli_opts *o, struct snapview *v)
{
        _cleanup_json_ json_t *args = json_pack("{s:s}", "domain", o->pos[0]);
        json_t *ret;

        v->reply = snap_call(c, "snapshot-list", args, o, NULL);
        if (v->reply == NULL)
                return -1;
        ret = json_object_get(v->reply, "return");
        v->snaps = json_object_get(ret, "snapshots");
        v->current = json_string_value(json_object_get(ret, "current"));
        v->domain = json_string_value(json_object_get(ret, "domain"));
        return 0;
}

static const char *snap_str(json_t *s, const char *key)
{
        return json_string_value(json_object_get(s, key));
}

static json_t *view_find(struct snapview *v, const char *name)
{
        size_t i;
        json_t *s;

        json_array_foreach(v->snaps, i, s)
                if (name && strcmp(snap_str(s, "name"), name) == 0)
                        return s;
        return NULL;
}

static bool is_child_of(json_t *s, const char *parent)
{
        const char *p = snap_str(s, "parent");

        return parent ? p && strcmp(p, parent) == 0 : p == NULL;
}

static size_t count_children(struct snapview *v, const char *name, bool all)
{
        size_t i, n = 0;
        json_t *s;

        json_array_foreach(v->snaps, i, s) {
                if (!is_child_of(s, name))
                        continue;
                n++;
                if (all)
                        n += count_children(v, snap_str(s, "name"), true);
        }
        return n;
}

/* The snapshot a verb names: NAME, --snapshotname NAME, or --current. */
static const char *view_pick(struct snapview *v, const struct cli_opts *o, bool *missing)
{
        const char *name = o->npos >= 2 ? o->pos[1] : cli_flag_value(o, "snapshotname");

        *missing = false;
        if (name == NULL && cli_flag(o, "current")) {
                if (v->current == NULL) {
                        cli_error("domain '%s' has no current snapshot", o->pos[0]);
                        *missing = true;
                }
                return v->current;
        }
        if (name == NULL) {
                cli_error("--snapshotname or --current is required");
                *missing = true;
                return NULL;
        }
        if (view_find(v, name) == NULL) {
                cli_error("Domain snapshot not found: no domain snapshot with matching name "
                          "'%s'",
                          name);
                *missing = true;
        }
        return name;
}

static void view_clear(struct snapview *v)
{
        json_decref(v->reply);
        v->reply = NULL;
}

static int cmp_names(const void *a, const void *b)
{
        json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

        return strcasecmp(snap_str(x, "name"), snap_str(y, "name"));
}

/* virsh's vshTreePrint: each root, its children under "+- ", "|" while siblings follow. */
static void tree_print(struct snapview *v, json_t **rows, size_t n, size_t dev, size_t lastdev,
                       bool root, char *indent, size_t ilen)
{
        const char *name = snap_str(rows[dev], "name");
        ssize_t nextlast = -1;

        printf("%.*s%s%s\n", (int)ilen, indent, root ? "" : "+- ", name);
        if (!root) {
                indent[ilen++] = dev == lastdev ? ' ' : '|';
                indent[ilen++] = ' ';
        }
        for (size_t i = 0; i < n; i++)
                if (is_child_of(rows[i], name))
                        nextlast = (ssize_t)i;
        if (nextlast != -1)
                printf("%.*s  |\n", (int)ilen, indent);
        indent[ilen] = ' ';
        indent[ilen + 1] = ' ';
        for (size_t i = 0; i < n; i++)
                if (is_child_of(rows[i], name))
                        tree_print(v, rows, n, i, (size_t)nextlast, false, indent, ilen + 2);
        if (nextlast == -1 && dev == lastdev)
                printf("%.*s\n", (int)ilen, indent);
}

static void format_time(json_int_t t, char *buf, size_t len)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
                snprintf(buf, len, "%lld", (long long)t);
}

/* A snapshot under from (NULL: any), directly or (descendants) at any depth. */
static bool under(struct snapview *v, json_t *s, const char *from, bool descendants)
{
        const char *p = snap_str(s, "parent");

        if (from == NULL)
                return true;
        while (p) {
                json_t *ps;

                if (strcmp(p, from) == 0)
                        return true;
                if (!descendants)
                        return false;
                ps = view_find(v, p);
                p = ps ? snap_str(ps, "parent") : NULL;
        }
        return false;
}

/* virsh's mutually exclusive pairs, checked in its order. */
static int list_exclusive(const struct cli_opts *o)
{
        static const char *const pairs[][2] = {
                {"tree", "name"}, {"parent", "roots"}, {"parent", "tree"},
                {"roots", "tree"}, {"roots", "current"},
        };

        for (size_t i = 0; i < TT_ARRAY_SIZE(pairs); i++)
                if (cli_flag(o, pairs[i][0]) && cli_flag(o, pairs[i][1])) {
                        cli_error("Options --%s and --%s are mutually exclusive", pairs[i][0],
                                  pairs[i][1]);
                        return -1;
                }
        return 0;
}

int cli_run_snapshot_list(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        struct snapview v = {0};
        _cleanup_free_ json_t **rows = NULL;
        size_t i, n = 0;
        json_t *s;
        const char *from = NULL;
        bool tree = cli_flag(o, "tree");

        if (list_exclusive(o) < 0)
                return failed(o);
        if (view_load(c, o, &v) < 0)
                return EXIT_FAILURE;
        if (cli_flag(o, "current")) {
                from = v.current;
                if (from == NULL) {
                        cli_error("domain '%s' has no current snapshot", o->pos[0]);
                        view_clear(&v);
                        return failed(o);
                }
        }
        rows = calloc(json_array_size(v.snaps) + 1, sizeof(json_t *));
        if (rows == NULL) {
                view_clear(&v);
                return EXIT_FAILURE;
        }
        json_array_foreach(v.snaps, i, s) {
                const char *name = snap_str(s, "name");

                /* --current: its children (the tree: it and all its descendants). */
                if (from && !(tree && strcmp(name, from) == 0) && !under(&v, s, from, tree))
                        continue;
                if (cli_flag(o, "roots") && snap_str(s, "parent"))
                        continue;
                if (cli_flag(o, "leaves") && count_children(&v, name, false) > 0)
                        continue;
                rows[n++] = s;
        }
        qsort(rows, n, sizeof(*rows), cmp_names);
        if (o->json) {
                json_t *arr = json_array();

                for (i = 0; i < n; i++)
                        json_array_append(arr, rows[i]);
                cli_print_json(arr);
                json_decref(arr);
        } else if (tree) {
                char indent[1024];

                for (i = 0; i < n; i++) {
                        const char *p = snap_str(rows[i], "parent");
                        bool root = p == NULL || (from && strcmp(snap_str(rows[i], "name"), from) == 0);

                        if (root && n < sizeof(indent) / 4)
                                tree_print(&v, rows, n, i, i, true, indent, 0);
                }
                printf("\n");
        } else if (cli_flag(o, "name")) {
                for (i = 0; i < n; i++)
                        printf("%s\n", snap_str(rows[i], "name"));
                printf("\n");
        } else {
                bool parent = cli_flag(o, "parent");
                static const char *const head[] = {"Name", "Creation Time", "State", "Parent"};
                struct cli_table t;

                cli_table_init(&t, parent ? 4 : 3, head);
                for (i = 0; i < n; i++) {
                        char when[64];
                        const char *p = snap_str(rows[i], "parent");
                        const char *row[4] = {snap_str(rows[i], "name"), when,
                                              snap_str(rows[i], "state"), p ? p : ""};

                        format_time(json_integer_value(json_object_get(rows[i], "creation_time")),
                                    when, sizeof(when));
                        cli_table_add(&t, row);
                }
                cli_table_print(&t, o->quiet);
                cli_table_free(&t);
        }
        view_clear(&v);
        return EXIT_SUCCESS;
}

int cli_run_snapshot_info(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        struct snapview v = {0};
        bool missing;
        const char *name;
        json_t *s;

        if (view_load(c, o, &v) < 0)
                return EXIT_FAILURE;
        name = view_pick(&v, o, &missing);
        if (missing) {
                view_clear(&v);
                return failed(o);
        }
        s = view_find(&v, name);
        if (o->json) {
                json_t *out = json_deep_copy(s);

                json_object_set_new(out, "domain", json_string(v.domain));
                json_object_set_new(out, "children",
                                    json_integer((json_int_t)count_children(&v, name, false)));
                json_object_set_new(out, "descendants",
                                    json_integer((json_int_t)count_children(&v, name, true)));
                json_object_set_new(out, "metadata", json_true());
                cli_print_json(out);
                json_decref(out);
        } else {
                const char *p = snap_str(s, "parent");

                printf("%-15s %s\n", "Name:", name);
                printf("%-15s %s\n", "Domain:", v.domain);
                printf("%-15s %s\n", "Current:",
                       v.current && strcmp(v.current, name) == 0 ? "yes" : "no");
                printf("%-15s %s\n", "State:", snap_str(s, "state"));
                printf("%-15s %s\n", "Location:", snap_str(s, "location"));
                printf("%-15s %s\n", "Parent:", p ? p : "-");
                printf("%-15s %zu\n", "Children:", count_children(&v, name, false));
                printf("%-15s %zu\n", "Descendants:", count_children(&v, name, true));
                printf("%-15s %s\n", "Metadata:", "yes");
                printf("\n");
        }
        view_clear(&v);
        return EXIT_SUCCESS;
}

int cli_run_snapshot_parent(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        struct snapview v = {0};
        bool missing;
        const char *name, *p;

        if (view_load(c, o, &v) < 0)
                return EXIT_FAILURE;
        name = view_pick(&v, o, &missing);
        if (missing) {
                view_clear(&v);
                return failed(o);
        }
        p = snap_str(view_find(&v, name), "parent");
        if (p == NULL) {
                cli_error("snapshot '%s' has no parent", name);
                view_clear(&v);
                return failed(o);
        }
        if (o->json) {
                json_t *out = json_pack("{s:s}", "parent", p);

                cli_print_json(out);
                json_decref(out);
        } else {
                printf("%s\n", p);
        }
        view_clear(&v);
        return EXIT_SUCCESS;
}

/* snapshot-dumpxml DOMAIN NAME, snapshot-current DOMAIN [--name]. */
static int show_xml(struct cli_conn *c, const struct cli_opts *o, const char *name,
                    bool name_only)
{
        _cleanup_json_ json_t *args = json_pack("{s:s}", "domain", o->pos[0]);
        _cleanup_json_ json_t *reply = NULL;
        json_t *ret;

        if (name)
                json_object_set_new(args, "name", json_string(name));
        reply = snap_call(c, "snapshot-dumpxml", args, o, NULL);
        if (reply == NULL)
                return EXIT_FAILURE;
        ret = json_object_get(reply, "return");
        if (o->json)
                cli_print_json(ret);
        else if (name_only)
                printf("%s\n", snap_str(ret, "name"));
        else
                printf("%s\n", snap_str(ret, "xml"));
        return EXIT_SUCCESS;
}

int cli_run_snapshot_dumpxml(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        const char *name = o->npos >= 2 ? o->pos[1] : cli_flag_value(o, "snapshotname");

        if (name == NULL) {
                cli_error("command 'snapshot-dumpxml' requires <snapshotname> option");
                return EXIT_FAILURE;
        }
        return show_xml(c, o, name, false);
}

int cli_run_snapshot_current(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        struct snapview v = {0};
        int rc;

        if (view_load(c, o, &v) < 0)
                return EXIT_FAILURE;
        if (v.current == NULL) {
                cli_error("domain '%s' has no current snapshot", o->pos[0]);
                view_clear(&v);
                return failed(o);
        }
        rc = show_xml(c, o, v.current, cli_flag(o, "name"));
        view_clear(&v);
        return rc;
}

/* ---- revert and delete ---- */

int cli_args_snapshot_named(json_t *args, const struct cli_opts *o)
{
        const char *name = o->npos >= 2 ? o->pos[1] : cli_flag_value(o, "snapshotname");

        if (o->npos > 2) {
                cli_error("unexpected data '%s'", o->pos[2]);
                return -1;
        }
        json_object_del(args, "snapshotname");
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (name)
                json_object_set_new(args, "name", json_string(name));
        if (cli_flag(o, "running") && cli_flag(o, "paused")) {
                cli_error("Options --running and --paused are mutually exclusive");
                return -1;
        }
        return 0;
}

/* Resolve --current to the current snapshot's name (revert and delete take it too). */
static int resolve_current(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        struct snapview v = {0};

        json_object_del(args, "current");
        if (json_object_get(args, "name"))
                return 0;
        if (!cli_flag(o, "current")) {
                cli_error("--snapshotname or --current is required");
                failed(o);
                return -1;
        }
        if (view_load(c, o, &v) < 0)
                return -1;
        if (v.current == NULL) {
                cli_error("domain '%s' has no current snapshot", o->pos[0]);
                view_clear(&v);
                failed(o);
                return -1;
        }
        json_object_set_new(args, "name", json_string(v.current));
        view_clear(&v);
        return 0;
}

int cli_run_snapshot_revert(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        _cleanup_json_ json_t *reply = NULL;

        if (resolve_current(c, args, o) < 0)
                return EXIT_FAILURE;
        reply = snap_call(c, "snapshot-revert", args, o, NULL);
        if (reply == NULL)
                return EXIT_FAILURE;
        if (o->json)
                cli_print_json(json_object_get(reply, "return"));
        else if (!o->quiet)
                printf("Domain snapshot %s reverted\n\n", snap_str(args, "name"));
        return EXIT_SUCCESS;
}

int cli_run_snapshot_delete(struct cli_conn *c, json_t *args, const struct cli_opts *o)
{
        _cleanup_json_ json_t *reply = NULL;
        char line[512];

        if (resolve_current(c, args, o) < 0)
                return EXIT_FAILURE;
        snprintf(line, sizeof(line), "Failed to delete snapshot %s", snap_str(args, "name"));
        reply = snap_call(c, "snapshot-delete", args, o, line);
        if (reply == NULL)
                return EXIT_FAILURE;
        if (o->json)
                cli_print_json(json_object_get(reply, "return"));
        else if (!o->quiet)
                printf("Domain snapshot %s deleted\n\n", snap_str(args, "name"));
        return EXIT_SUCCESS;
}

int cli_args_snapshot_domain(json_t *args, const struct cli_opts *o)
{
        if (o->npos > 2) {
                cli_error("unexpected data '%s'", o->pos[2]);
                return -1;
        }
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        return 0;
}
