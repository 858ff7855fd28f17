/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tether: the CLI, a thin client of tetherd's control socket with virsh's verbs, options and
 * output. One table row per verb: its options, positional arguments, the control-API request
 * it sends and how the reply is printed (virsh's text, or --json).
 */
#include "cli/cli.h"
#include "cli/lazyxml.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- printing ---- */

/* virsh ends each command's output with a blank line, which --quiet leaves out. */
static void blank_line(const struct cli_opts *o)
{
        if (!o->quiet)
                printf("\n");
}

static const char *dom_state_text(json_t *dom)
{
        return json_string_value(json_object_get(dom, "state"));
}

/* virsh's list filters: groups AND together, flags within a group OR (libvirt-lifecycle §1.4). */
static bool list_keep(json_t *dom, const struct cli_opts *o)
{
        bool active = json_integer_value(json_object_get(dom, "id")) >= 0;
        const char *state = dom_state_text(dom);
        bool persistent = json_is_true(json_object_get(dom, "persistent"));
        bool autostart = json_is_true(json_object_get(dom, "autostart"));
        bool saved = json_is_true(json_object_get(dom, "managed_save"));
        bool any_state = cli_flag(o, "state-running") || cli_flag(o, "state-paused") ||
                         cli_flag(o, "state-shutoff") || cli_flag(o, "state-other");
        bool want_active = !cli_flag(o, "inactive") && !cli_flag(o, "state-shutoff");
        bool want_inactive = cli_flag(o, "inactive") || cli_flag(o, "state-shutoff");

        if (cli_flag(o, "all"))
                want_active = want_inactive = true;
        if (active ? !want_active : !want_inactive)
                return false;
        if (any_state) {
                bool running = strcmp(state, "running") == 0, paused = strcmp(state, "paused") == 0;
                bool shutoff = strcmp(state, "shut off") == 0;
                bool other = !running && !paused && !shutoff;

                if (!((cli_flag(o, "state-running") && running) || (cli_flag(o, "state-paused") && paused) ||
                      (cli_flag(o, "state-shutoff") && shutoff) || (cli_flag(o, "state-other") && other)))
                        return false;
        }
        if (cli_flag(o, "persistent") != cli_flag(o, "transient") &&
            persistent != cli_flag(o, "persistent"))
                return false;
        if (cli_flag(o, "with-managed-save") != cli_flag(o, "without-managed-save") &&
            saved != cli_flag(o, "with-managed-save"))
                return false;
        if (cli_flag(o, "autostart") != cli_flag(o, "no-autostart") && autostart != cli_flag(o, "autostart"))
                return false;
        if (cli_flag(o, "with-snapshot") != cli_flag(o, "without-snapshot") &&
            json_is_true(json_object_get(dom, "has_snapshot")) != cli_flag(o, "with-snapshot"))
                return false;
        return true;
}

/* Sort as virsh: active by id, then inactive by case-insensitive name. */
static int list_cmp(const void *a, const void *b)
{
        json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
        json_int_t ix = json_integer_value(json_object_get(x, "id"));
        json_int_t iy = json_integer_value(json_object_get(y, "id"));

        if (ix >= 0 && iy >= 0)
                return ix < iy ? -1 : ix > iy;
        if (ix >= 0 || iy >= 0)
                return ix >= 0 ? -1 : 1;
        return strcasecmp(json_string_value(json_object_get(x, "name")),
                          json_string_value(json_object_get(y, "name")));
}

static int print_list(json_t *ret, const struct cli_opts *o)
{
        size_t n = 0, i;
        _cleanup_free_ json_t **rows = calloc(json_array_size(ret) + 1, sizeof(json_t *));
        json_t *dom;

        if (rows == NULL)
                return -1;
        for (const char *const *f = (const char *const[]){"name", "uuid", "id", NULL}; *f; f++) {
                if (cli_flag(o, "table") && cli_flag(o, *f)) {
                        cli_error("Options --table and --%s are mutually exclusive", *f);
                        return -1;
                }
        }
        json_array_foreach(ret, i, dom)
                if (list_keep(dom, o))
                        rows[n++] = dom;
        qsort(rows, n, sizeof(json_t *), list_cmp);
        if (o->json) {
                json_t *arr = json_array();

                for (i = 0; i < n; i++)
                        json_array_append(arr, rows[i]);
                cli_print_json(arr);
                json_decref(arr);
                return 0;
        }
        if (cli_flag(o, "name") || cli_flag(o, "uuid") || cli_flag(o, "id")) {
                for (i = 0; i < n; i++) {
                        json_int_t id = json_integer_value(json_object_get(rows[i], "id"));
                        bool first = true;

                        /* --id alone skips inactive domains, as virsh does. */
                        if (cli_flag(o, "id") && !cli_flag(o, "name") && !cli_flag(o, "uuid") && id < 0)
                                continue;
                        /* virsh's order: uuid, id, name. */
                        if (cli_flag(o, "uuid")) {
                                printf("%s", json_string_value(json_object_get(rows[i], "uuid")));
                                first = false;
                        }
                        if (cli_flag(o, "id")) {
                                if (id >= 0)
                                        printf("%s%lld", first ? "" : " ", (long long)id);
                                else
                                        printf("%s-", first ? "" : " ");
                                first = false;
                        }
                        if (cli_flag(o, "name"))
                                printf("%s%s", first ? "" : " ",
                                       json_string_value(json_object_get(rows[i], "name")));
                        printf("\n");
                }
                blank_line(o);
                return 0;
        }
        {
                struct cli_table t;
                const char *head[] = {"Id", "Name", "State", "Title"};

                cli_table_init(&t, cli_flag(o, "title") ? 4 : 3, head);
                for (i = 0; i < n; i++) {
                        json_int_t id = json_integer_value(json_object_get(rows[i], "id"));
                        const char *state = dom_state_text(rows[i]);
                        char idbuf[32];

                        if (id >= 0)
                                snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
                        else
                                snprintf(idbuf, sizeof(idbuf), "-");
                        if (cli_flag(o, "managed-save") && strcmp(state, "shut off") == 0 &&
                            json_is_true(json_object_get(rows[i], "managed_save")))
                                state = "saved";
                        const char *cells[] = {
                                idbuf, json_string_value(json_object_get(rows[i], "name")), state,
                                json_string_value(json_object_get(rows[i], "title")) ?: ""};
                        cli_table_add(&t, cells);
                }
                cli_table_print(&t, o->quiet);
                cli_table_free(&t);
        }
        return 0;
}

static int print_dominfo(json_t *ret, const struct cli_opts *o)
{
        json_int_t id = json_integer_value(json_object_get(ret, "id"));

        if (o->json) {
                cli_print_json(ret);
                return 0;
        }
        if (id >= 0)
                printf("%-15s %lld\n", "Id:", (long long)id);
        else
                printf("%-15s %s\n", "Id:", "-");
        printf("%-15s %s\n", "Name:", json_string_value(json_object_get(ret, "name")));
        printf("%-15s %s\n", "UUID:", json_string_value(json_object_get(ret, "uuid")));
        printf("%-15s %s\n", "OS Type:", json_string_value(json_object_get(ret, "os_type")));
        printf("%-15s %s\n", "State:", dom_state_text(ret));
        printf("%-15s %lld\n", "CPU(s):",
               (long long)json_integer_value(json_object_get(ret, "vcpus")));
        printf("%-15s %lld KiB\n", "Max memory:",
               (long long)json_integer_value(json_object_get(ret, "max_memory_kib")));
        printf("%-15s %lld KiB\n", "Used memory:",
               (long long)json_integer_value(json_object_get(ret, "used_memory_kib")));
        printf("%-15s %s\n", "Persistent:",
               json_is_true(json_object_get(ret, "persistent")) ? "yes" : "no");
        printf("%-15s %s\n", "Autostart:",
               json_is_true(json_object_get(ret, "autostart")) ? "enable" : "disable");
        printf("%-15s %s\n", "Managed save:",
               json_is_true(json_object_get(ret, "managed_save")) ? "yes" : "no");
        blank_line(o);
        return 0;
}

static int print_domstate(json_t *ret, const struct cli_opts *o)
{
        if (o->json) {
                json_t *j = json_pack("{s:O, s:O}", "state", json_object_get(ret, "state"),
                                      "reason", json_object_get(ret, "reason"));
                cli_print_json(j);
                json_decref(j);
                return 0;
        }
        if (cli_flag(o, "reason"))
                printf("%s (%s)\n", dom_state_text(ret),
                       json_string_value(json_object_get(ret, "reason")));
        else
                printf("%s\n", dom_state_text(ret));
        blank_line(o);
        return 0;
}

/* domid, domuuid, domname: one field of dominfo. */
static int print_field(json_t *ret, const struct cli_opts *o, const char *key)
{
        json_t *v = json_object_get(ret, key);

        if (o->json) {
                json_t *j = json_pack("{s:O}", key, v);
                cli_print_json(j);
                json_decref(j);
                return 0;
        }
        if (json_is_integer(v) && json_integer_value(v) >= 0)
                printf("%lld\n", (long long)json_integer_value(v));
        else if (json_is_integer(v))
                printf("-\n");
        else
                printf("%s\n", json_string_value(v));
        blank_line(o);
        return 0;
}

static int print_domid(json_t *ret, const struct cli_opts *o)
{
        return print_field(ret, o, "id");
}

static int print_domuuid(json_t *ret, const struct cli_opts *o)
{
        return print_field(ret, o, "uuid");
}

static int print_domname(json_t *ret, const struct cli_opts *o)
{
        return print_field(ret, o, "name");
}

static int print_dumpxml(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                cli_print_json(ret);
        else
                fputs(json_string_value(json_object_get(ret, "xml")), stdout);
        return 0;
}

/* ---- verbs ---- */

static bool is_utf8_name(const char *enc)
{
        return strcasecmp(enc, "UTF-8") == 0 || strcasecmp(enc, "UTF8") == 0;
}

/* The first line of a libxml2 message, without its trailing space. */
static void first_line(char *dst, size_t size, const char *msg)
{
        size_t n = strcspn(msg ? msg : "", "\n");

        while (n > 0 && msg[n - 1] == ' ')
                n--;
        snprintf(dst, size, "%.*s", (int)n, msg ? msg : "");
}

/*
 * The domain XML of a file as the UTF-8 string the control API carries. A UTF-8 file (with no
 * other encoding declared) goes as it is, so the daemon's errors keep the file's line numbers.
 * A file in another encoding (declared, as <?xml ... encoding="ISO-8859-1"?>, or a UTF-16 BOM)
 * is read by libxml2 with that encoding and written out again as UTF-8. Anything else is an
 * error naming the file and what is wrong with it. Returns a json string, or NULL (printed).
 */
static json_t *xml_file_as_utf8(const char *file)
{
        _cleanup_free_ char *buf = NULL;
        struct tt_error err = {0};
        json_t *utf8 = NULL;
        const struct lazyxml *x;
        xmlDocPtr doc;
        size_t len;

        if (tt_read_file(file, 16 << 20, &buf, &len, &err) < 0) {
                cli_error("%s", err.msg);
                tt_error_clear(&err);
                return NULL;
        }
        x = lazyxml();
        if (x == NULL)
                return NULL;
        /* No network, no entities, no DTD loading, no messages on stderr: only the encoding. */
        doc = x->read_memory(buf, (int)len, file, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        utf8 = json_stringn(buf, len); /* NULL unless valid UTF-8 without NUL */
        if (doc == NULL) {
                const xmlError *e = x->get_last_error();
                char msg[256];
                const char *bytes;

                if (utf8)
                        return utf8; /* the daemon reports the XML error itself */
                first_line(msg, sizeof(msg), e ? e->message : NULL);
                bytes = e && e->message ? strstr(e->message, "Bytes: ") : NULL;
                if (e && e->code == XML_ERR_INVALID_CHAR && bytes) {
                        char b[64];

                        first_line(b, sizeof(b), bytes + 7);
                        cli_error("%s: not valid UTF-8 at line %d (bytes %s), and no other "
                                  "encoding is declared",
                                  file, e->line, b);
                } else {
                        cli_error("%s: not well-formed XML at line %d: %s", file, e ? e->line : 0,
                                  msg);
                }
                x->reset_last_error();
                return NULL;
        }
        if (utf8 && (doc->encoding == NULL || is_utf8_name((const char *)doc->encoding))) {
                x->free_doc(doc);
                return utf8;
        }
        json_decref(utf8);
        {
                xmlChar *out = NULL;
                int n = 0;

                /* Written with encoding="UTF-8" in its declaration, which the daemon follows. */
                x->dump_memory_enc(doc, &out, &n, "UTF-8");
                utf8 = out ? json_stringn((const char *)out, (size_t)n) : NULL;
                x->free(out);
        }
        if (utf8 == NULL)
                cli_error("%s: cannot convert from %s to UTF-8", file,
                          doc->encoding ? (const char *)doc->encoding : "its encoding");
        x->free_doc(doc);
        return utf8;
}

/* Read the XML file named by the first positional argument into args["xml"]. */
static int args_xml_file(json_t *args, const struct cli_opts *o)
{
        json_t *xml = xml_file_as_utf8(o->pos[0]);

        if (xml == NULL)
                return -1;
        json_object_set_new(args, "xml", xml);
        return 0;
}

static int args_domain(json_t *args, const struct cli_opts *o)
{
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        return 0;
}

/* A file for the daemon: relative names are made absolute against our working folder. */
static json_t *abs_path(const char *file)
{
        char cwd[4096];
        _cleanup_free_ char *full = NULL;

        if (file[0] == '/')
                return json_string(file);
        if (getcwd(cwd, sizeof(cwd)) == NULL || asprintf(&full, "%s/%s", cwd, file) < 0)
                return NULL;
        return json_string(full);
}

/*
 * A file for tetherd: we open it (cli_send, or the remote proxy), with our own rights, and pass
 * the descriptor; tetherd, which runs as root, never opens it. The path names it in messages.
 */
static json_t *client_file(const char *file, const char *open_as)
{
        return json_pack("{s:o, s:s}", "path", abs_path(file), "open", open_as);
}

/* save DOMAIN FILE */
static int args_domain_file(json_t *args, const struct cli_opts *o)
{
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        if (strcmp(o->pos[1], "-") != 0 &&
            json_object_set_new(args, "file", client_file(o->pos[1], "save")) < 0)
                return -1;
        return 0;
}

/* The domain only: the verb's flags are for printing, not for the daemon. */
static int args_domain_only(json_t *args, const struct cli_opts *o)
{
        json_object_clear(args);
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        return 0;
}

static int args_restore(json_t *args, const struct cli_opts *o)
{
        return json_object_set_new(args, "file", client_file(o->pos[0], "restore"));
}

/* --mode LIST arrives as "mode": "agent,acpi", the string the daemon takes. */
static int args_power(json_t *args, const struct cli_opts *o)
{
        return args_domain(args, o);
}

static int args_qmp(json_t *args, const struct cli_opts *o)
{
        json_error_t jerr;
        json_t *cmd = json_loads(o->pos[1], 0, &jerr);

        if (!json_is_object(cmd)) {
                cli_error("invalid JSON command: %s", cmd ? "not an object" : jerr.text);
                json_decref(cmd);
                return -1;
        }
        json_object_del(args, "pretty");
        json_object_set_new(args, "domain", json_string(o->pos[0]));
        json_object_set_new(args, "command", cmd);
        return 0;
}

/* Confirmations, like virsh's vshPrintExtra: silenced by --quiet, JSON with --json. */
static int print_saved(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                cli_print_json(ret);
        else if (!o->quiet)
                printf("\nDomain '%s' saved to %s\n\n", o->pos[0], o->pos[1]);
        return 0;
}

static int print_restored(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                cli_print_json(ret);
        else if (!o->quiet)
                printf("Domain restored from %s\n\n", o->pos[0]);
        return 0;
}

static int print_managedsave(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                cli_print_json(ret);
        else if (!o->quiet)
                printf("\nDomain '%s' state saved by tether\n\n", o->pos[0]);
        return 0;
}

static int print_managedsave_remove(json_t *ret, const struct cli_opts *o)
{
        if (o->json)
                cli_print_json(ret);
        else if (o->quiet)
                return 0;
        else if (json_is_true(json_object_get(ret, "removed")))
                printf("Removed managedsave image for domain '%s'\n\n", o->pos[0]);
        else
                printf("Domain '%s' has no manage save image; removal skipped\n\n", o->pos[0]);
        return 0;
}

static int print_shutdown(json_t *ret, const struct cli_opts *o)
{
        const char *reason = json_string_value(json_object_get(ret, "reason"));

        if (o->json)
                cli_print_json(ret);
        else if (o->quiet)
                return 0;
        else if (!cli_flag(o, "wait"))
                printf("Domain '%s' is being shutdown\n\n", o->pos[0]);
        else if (reason && strcmp(reason, "destroyed") == 0)
                printf("Domain '%s' did not shut down in time and was destroyed\n\n",
                       o->pos[0]);
        else
                printf("Domain '%s' has been shut down\n\n", o->pos[0]);
        return 0;
}

/* The first graphics of a type ("vnc", "spice") in a graphics list, or NULL. */
static json_t *graphics_of(json_t *list, const char *type)
{
        size_t i;
        json_t *g;

        json_array_foreach(list, i, g)
                if (type == NULL ||
                    strcmp(json_string_value(json_object_get(g, "type")), type) == 0)
                        return g;
        return NULL;
}

static int print_vncdisplay(json_t *ret, const struct cli_opts *o)
{
        json_t *g = graphics_of(ret, "vnc");
        const char *listen;

        if (g == NULL) {
                cli_error("VNC display is not available for domain '%s'", o->pos[0]);
                return -1;
        }
        if (o->json) {
                cli_print_json(g);
                return 0;
        }
        listen = json_string_value(json_object_get(g, "listen"));
        /* virsh: ":N" for a wildcard listen address, else "ADDR:N". */
        if (strcmp(listen, "0.0.0.0") == 0 || strcmp(listen, "::") == 0)
                listen = "";
        printf("%s:%lld\n", listen, (long long)json_integer_value(json_object_get(g, "port")) - 5900);
        blank_line(o);
        return 0;
}

static int print_domdisplay(json_t *ret, const struct cli_opts *o)
{
        bool all = cli_flag(o, "all");
        const char *only = cli_flag(o, "type=vnc") ? "vnc" : cli_flag(o, "type=spice") ? "spice" : NULL;
        size_t i, shown = 0;
        json_t *g;

        if (o->json) {
                cli_print_json(ret);
                return 0;
        }
        /* virsh prefers VNC, then SPICE; --all lists every one. */
        for (int pass = 0; pass < 2; pass++) {
                const char *type = pass == 0 ? "vnc" : "spice";

                if (only && strcmp(only, type) != 0)
                        continue;
                json_array_foreach(ret, i, g) {
                        long long port = (long long)json_integer_value(json_object_get(g, "port"));
                        const char *listen = json_string_value(json_object_get(g, "listen"));

                        if (strcmp(json_string_value(json_object_get(g, "type")), type) != 0)
                                continue;
                        if (strcmp(listen, "0.0.0.0") == 0)
                                listen = "localhost";
                        if (pass == 0)
                                printf("vnc://%s:%lld\n", listen, port - 5900);
                        else
                                printf("spice://%s:%lld\n", listen, port);
                        shown++;
                        if (!all)
                                return 0;
                }
        }
        if (shown == 0) {
                cli_error("No graphical display found");
                return -1;
        }
        return 0;
}

static int print_screenshot(json_t *ret, const struct cli_opts *o)
{
        const char *data = json_string_value(json_object_get(ret, "data"));
        const char *mime = json_string_value(json_object_get(ret, "mime"));
        _cleanup_free_ unsigned char *bytes = NULL;
        struct tt_error err = {0};
        size_t len = 0;
        FILE *f;
        int fd;

        if (data == NULL || tt_base64_decode(data, strlen(data), &bytes, &len, &err) < 0) {
                cli_error("bad screenshot data from the daemon%s%s", err.msg ? ": " : "",
                          err.msg ? err.msg : "");
                tt_error_clear(&err);
                return -1;
        }
        /*
         * tetherd had QEMU write the PNG in its own run folder and sent the bytes: the file is
         * written here, with our own rights (a link is not followed, as for save).
         */
        fd = open(o->pos[1], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                  0666);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
                cli_error("cannot write '%s': %s", o->pos[1],
                          errno == ELOOP ? "it is a symbolic link, and links are not followed"
                                         : strerror(errno));
                if (f == NULL && fd >= 0)
                        close(fd);
                return -1;
        }
        if (o->json) {
                json_t *j = json_pack("{s:s, s:s, s:I}", "file", o->pos[1], "mime", mime,
                                      "bytes", (json_int_t)len);
                cli_print_json(j);
                json_decref(j);
        } else {
                printf("Screenshot saved to %s, with type of %s\n", o->pos[1], mime);
                blank_line(o);
        }
        return 0;
}

static int print_qmp(json_t *ret, const struct cli_opts *o)
{
        _cleanup_free_ char *text =
                json_dumps(ret, (o->json || cli_flag(o, "pretty") ? JSON_INDENT(2) : JSON_COMPACT) |
                                        JSON_ENCODE_ANY);

        if (text == NULL)
                return -1;
        printf("%s\n", text);
        blank_line(o);
        return 0;
}

/* web-url: the one-time login link alone on its line (scripts open it). */
static int print_web_url(json_t *ret, const struct cli_opts *o)
{
        const char *url = json_string_value(json_object_get(ret, "url"));

        if (o->json) {
                cli_print_json(ret);
                return 0;
        }
        if (url == NULL) {
                cli_error("malformed web-url reply from the daemon");
                return -1;
        }
        printf("%s\n", url);
        return 0;
}

/* Confirmation lines, in virsh's words; %s is the domain (or file). */
static const struct cli_verb verbs[] = {
        {"list", "list", {"all", "inactive", "state-running", "state-paused", "state-shutoff",
                          "state-other", "persistent", "transient", "with-managed-save",
                          "without-managed-save", "autostart", "no-autostart", "with-snapshot",
                          "without-snapshot", "uuid", "name", "id", "title", "table",
                          "managed-save"},
         0, NULL, print_list, NULL, NULL},
        {"dominfo", "dominfo", {NULL}, 1, args_domain, print_dominfo, NULL, NULL},
        {"domstate", "dominfo", {"reason"}, 1, args_domain, print_domstate, NULL, NULL},
        {"domid", "dominfo", {NULL}, 1, args_domain, print_domid, NULL, NULL},
        {"domuuid", "dominfo", {NULL}, 1, args_domain, print_domuuid, NULL, NULL},
        {"domname", "dominfo", {NULL}, 1, args_domain, print_domname, NULL, NULL},
        {"dumpxml", "dumpxml", {"inactive"}, 1, args_domain, print_dumpxml, NULL, NULL},
        {"define", "define", {NULL}, 1, args_xml_file, NULL, "Domain '%s' defined from %s", NULL},
        {"undefine", "undefine", {"managed-save", "snapshots-metadata"}, 1, args_domain, NULL,
         "Domain '%s' has been undefined", NULL, .fail = "Failed to undefine domain '%s'"},
        {"create", "create", {"paused"}, 1, args_xml_file, NULL, "Domain '%s' created from %s",
         NULL},
        {"start", "start", {"paused", "force-boot"}, 1, args_domain, NULL, "Domain '%s' started",
         NULL},
        {"destroy", "destroy", {"graceful"}, 1, args_domain, NULL, "Domain '%s' destroyed", NULL},
        {"suspend", "suspend", {NULL}, 1, args_domain, NULL, "Domain '%s' suspended", NULL},
        {"resume", "resume", {NULL}, 1, args_domain, NULL, "Domain '%s' resumed", NULL},
        /* --wait, --timeout and --force go beyond virsh: wait for shut off, or destroy. */
        /* --mode takes a comma list of acpi and agent, tried in order (checked in main.c). */
        {"shutdown", "shutdown", {"mode=*", "wait", "timeout=#", "force"}, 1, args_power,
         print_shutdown, NULL, NULL},
        {"reboot", "reboot", {"mode=*"}, 1, args_power, NULL, "Domain '%s' is being rebooted",
         NULL},
        {"save", "save", {NULL}, 2, args_domain_file, print_saved, NULL, NULL},
        {"restore", "restore", {"paused"}, 1, args_restore, print_restored, NULL, NULL},
        {"managedsave", "managedsave", {NULL}, 1, args_domain, print_managedsave, NULL, NULL},
        {"managedsave-remove", "managedsave-remove", {NULL}, 1, args_domain,
         print_managedsave_remove, NULL, NULL},
        {"vncdisplay", "graphics", {NULL}, 1, args_domain, print_vncdisplay, NULL, NULL},
        {"domdisplay", "graphics", {"all", "type=vnc", "type=spice"}, 1, args_domain_only,
         print_domdisplay, NULL, NULL},
        {"screenshot", "screenshot", {NULL}, 2, args_domain_only, print_screenshot, NULL, NULL},
        {"qemu-monitor-command", "qmp", {"pretty"}, 2, args_qmp, print_qmp, NULL, NULL},
        {"reset", "reset", {NULL}, 1, args_domain, NULL, "Domain '%s' was reset", NULL},
        {"autostart", "autostart", {"disable"}, 1, args_domain, NULL,
         "Domain '%s' marked as autostarted", "Domain '%s' unmarked as autostarted"},
        /* Beyond virsh: a one-time login link to tetherd's web console (--web-listen). */
        {"web-url", "web-url", {NULL}, 0, NULL, print_web_url, NULL, NULL},

        /* Guest-agent verbs (agent.c): tetherd returns the agent's raw replies. */
        {.error_newline = true, .name = "qemu-agent-command", .execute = "agent-command",
         .options = {"timeout=i", "async", "block", "pretty"}, .npos = 2,
         .args = cli_args_agent_command, .print = cli_print_agent_command,
         .posname = {"domain", "cmd"}, .join_rest = true},
        {.error_newline = true, .name = "set-user-password", .execute = "set-user-password", .options = {"encrypted"},
         .npos = 3, .args = cli_args_set_user_password, .print = cli_print_set_user_password,
         .posname = {"domain", "user", "password"}},
        {.error_newline = true, .name = "domifaddr", .execute = "domifaddr",
         .options = {"interface=*", "full", "source=*"}, .npos = 1, .args = cli_args_domifaddr,
         .print = cli_print_domifaddr, .fail = "Failed to query for interfaces addresses"},
        {.error_newline = true, .name = "domtime", .execute = "domtime", .options = {"now", "pretty", "sync", "time=i"},
         .npos = 1, .args = cli_args_domtime, .print = cli_print_domtime},
        {.error_newline = true, .name = "domfsfreeze", .execute = "domfsfreeze", .options = {"mountpoint=*"}, .npos = 1,
         .args = cli_args_fsfreeze, .print = cli_print_fsfreeze,
         .fail = "Unable to freeze filesystems"},
        {.error_newline = true, .name = "domfsthaw", .execute = "domfsthaw", .options = {"mountpoint=*"}, .npos = 1,
         .args = cli_args_fsfreeze, .print = cli_print_fsthaw,
         .fail = "Unable to thaw filesystems"},
        {.error_newline = true, .name = "domfsinfo", .execute = "domfsinfo", .npos = 1, .args = args_domain_only,
         .print = cli_print_domfsinfo, .fail = "Unable to get filesystem information"},
        {.error_newline = true, .name = "domfstrim", .execute = "domfstrim", .options = {"minimum=#", "mountpoint=*"},
         .npos = 1, .args = cli_args_domfstrim, .print = cli_print_quiet_ok,
         .fail = "Unable to invoke fstrim"},
        {.error_newline = true, .name = "guestinfo", .execute = "guestinfo",
         .options = {"user", "os", "timezone", "hostname", "filesystem", "disk", "interface"},
         .npos = 1, .args = cli_args_guestinfo, .print = cli_print_guestinfo},
        {.error_newline = true, .name = "guestvcpus", .execute = "guestvcpus",
         .options = {"cpulist=*", "enable", "disable"}, .npos = 1, .args = cli_args_guestvcpus,
         .print = cli_print_guestvcpus},
        {.error_newline = true, .name = "setvcpus", .execute = "setvcpus",
         .options = {"guest", "config", "live", "current", "maximum", "hotpluggable"}, .npos = 2,
         .args = cli_args_setvcpus, .print = cli_print_quiet_ok, .posname = {"domain", "count"}},
        {.error_newline = true, .name = "get-user-sshkeys", .execute = "get-user-sshkeys", .npos = 2,
         .args = cli_args_get_sshkeys, .print = cli_print_get_sshkeys,
         .posname = {"domain", "user"}},
        {.error_newline = true, .name = "set-user-sshkeys", .execute = "set-user-sshkeys",
         .options = {"file=*", "reset", "remove"}, .npos = 2, .args = cli_args_set_sshkeys,
         .print = cli_print_quiet_ok, .posname = {"domain", "user"}},
        {.error_newline = true, .name = "dompmsuspend", .execute = "dompmsuspend", .options = {"duration=#"}, .npos = 2,
         .args = cli_args_pmsuspend, .print = cli_print_pmsuspend,
         .fail = "Domain '%s' could not be suspended", .posname = {"domain", "target"}},
        {.error_newline = true, .name = "dompmwakeup", .execute = "dompmwakeup", .npos = 1, .args = args_domain_only,
         .print = cli_print_pmwakeup, .fail = "Domain '%s' could not be woken up"},

        /* The monitor (stats.c): tetherd's cached samples, never a live call to a guest. */
        {.error_newline = true, .name = "domstats", .execute = "domstats",
         .options = {"state", "cpu-total", "balloon", "vcpu", "interface", "block",
                     "list-active", "list-inactive", "list-running", "list-paused",
                     "list-shutoff", "list-other", "raw", "nowait"},
         .many_pos = true, .args = cli_args_domstats, .print = cli_print_domstats},
        {.name = "top", .execute = "domstats", .options = {"interval=#", "sort=*", "once"},
         .args = cli_args_top, .run = cli_run_top},

        /* Snapshots (snapshot.c): the views are computed from one snapshot-list reply. */
        {.error_newline = true, .name = "snapshot-create-as", .execute = "snapshot-create",
         .options = {"name=*", "description=*", "disk-only", "quiesce", "atomic", "no-metadata"},
         .npos = 1, .many_pos = true, .args = cli_args_snapshot_create_as,
         .run = cli_run_snapshot_create},
        {.error_newline = true, .name = "snapshot-create", .execute = "snapshot-create",
         .npos = 1, .many_pos = true, .args = cli_args_snapshot_create,
         .run = cli_run_snapshot_create},
        {.error_newline = true, .name = "snapshot-list", .execute = "snapshot-list",
         .options = {"tree", "parent", "roots", "leaves", "current", "name"}, .npos = 1,
         .args = cli_args_snapshot_domain, .run = cli_run_snapshot_list},
        {.error_newline = true, .name = "snapshot-info", .execute = "snapshot-list",
         .options = {"current", "snapshotname=*"}, .npos = 1, .many_pos = true,
         .args = cli_args_snapshot_domain, .run = cli_run_snapshot_info},
        {.error_newline = true, .name = "snapshot-dumpxml", .execute = "snapshot-dumpxml",
         .options = {"snapshotname=*", "security-info"}, .npos = 1, .many_pos = true,
         .args = cli_args_snapshot_domain, .run = cli_run_snapshot_dumpxml},
        {.error_newline = true, .name = "snapshot-current", .execute = "snapshot-list",
         .options = {"name", "security-info"}, .npos = 1, .args = cli_args_snapshot_domain,
         .run = cli_run_snapshot_current},
        {.error_newline = true, .name = "snapshot-parent", .execute = "snapshot-list",
         .options = {"current", "snapshotname=*"}, .npos = 1, .many_pos = true,
         .args = cli_args_snapshot_domain, .run = cli_run_snapshot_parent},
        {.error_newline = true, .name = "snapshot-revert", .execute = "snapshot-revert",
         .options = {"current", "snapshotname=*", "running", "paused", "force"}, .npos = 1,
         .many_pos = true, .args = cli_args_snapshot_named, .run = cli_run_snapshot_revert},
        {.error_newline = true, .name = "snapshot-delete", .execute = "snapshot-delete",
         .options = {"current", "snapshotname=*", "children", "metadata"}, .npos = 1,
         .many_pos = true, .args = cli_args_snapshot_named, .run = cli_run_snapshot_delete},

        /* The serial console (console.c): the connection becomes the console's stream. */
        {.name = "console", .execute = "console", .options = {"force"}, .npos = 1,
         .args = args_domain, .run = cli_run_console},
        /* virsh's event (event.c): tetherd's event stream; DOMAIN is optional. */
        {.error_newline = true, .name = "event", .execute = "events",
         .options = {"event=*", "all", "loop", "timeout=#", "timestamp", "list"},
         .many_pos = true, .args = cli_args_event, .run = cli_run_event},

        /* Beyond virsh (transfer.c): several agent commands per verb. */
        {.name = "exec", .execute = "agent-command", .options = {"timeout=#", "env=*"}, .npos = 1,
         .args = cli_args_exec, .take_rest = true, .run = cli_run_exec},
        {.name = "cp", .execute = "agent-command", .options = {"progress"}, .npos = 2,
         .args = cli_args_cp, .run = cli_run_cp, .posname = {"source", "destination"}},
};

const struct cli_verb *cli_verb_find(const char *name)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

void cli_verbs_usage(FILE *out)
{
        for (size_t i = 0; i < TT_ARRAY_SIZE(verbs); i++)
                fprintf(out, "    %s\n", verbs[i].name);
}
