/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store (store.c: the folders under --root, definitions, status files, autostart markers)
 * and QEMU's file ownership (dac.c: files handed to QEMU's user for a run and given back, with
 * the record in dac.json), in a private temporary root. The dac tests change owners, so the
 * suite runs as root (as the host suite does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/fileutil.h"
#include "host/dac.h"
#include "host/store.h"
#include "host/tetherd.h"

static char root[] = "/tmp/tether-store-dac-XXXXXX";

static char *at(const char *rel)
{
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", root, rel) > 0);
        return p;
}

static void mode_is(const char *rel, mode_t want)
{
        char *p = at(rel);
        struct stat st;

        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, want);
        free(p);
}

static void touch(const char *path, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void test_store_paths(void **state)
{
        struct store st;
        struct tt_error err = {0};
        char *p, *want;

        assert_int_equal(store_open(&st, root, &err), 0);
        mode_is("etc/tether/domains", 0755);
        mode_is("etc/tether/autostart", 0755);
        mode_is("var/lib/tether/save", 0700);
        mode_is("var/lib/tether/log", 0700);
        mode_is("run/tether/domains", 0755);
        p = store_def_path(&st, "d1");
        want = at("etc/tether/domains/d1.xml");
        assert_string_equal(p, want);
        free(p);
        free(want);
        p = store_managed_save_path(&st, "d1");
        want = at("var/lib/tether/save/d1.save");
        assert_string_equal(p, want);
        free(p);
        free(want);
        p = store_socket_path(&st);
        want = at("run/tether/tetherd.sock");
        assert_string_equal(p, want);
        free(p);
        free(want);
        p = store_run_path(&st, "d1", NULL);
        want = at("run/tether/domains/d1");
        assert_string_equal(p, want);
        free(p);
        free(want);
        store_close(&st);

        /* A root that is a file: the folders cannot be made, and the error says where. */
        {
                char *file = at("plainfile");
                char *sub = NULL;

                touch(file, 0600);
                assert_int_equal(store_open(&st, file, &err), -1);
                assert_non_null(err.msg);
                assert_true(asprintf(&sub, "%s/etc", file) > 0);
                assert_non_null(strstr(err.msg, sub));
                tt_error_clear(&err);
                store_close(&st);
                free(sub);
                free(file);
        }
}

static void test_store_defs(void **state)
{
        struct store st;
        struct tt_error err = {0};
        char **v, *p;

        assert_int_equal(store_open(&st, root, &err), 0);
        assert_int_equal(store_save_def(&st, "zeta", "<domain/>", &err), 0);
        assert_int_equal(store_save_def(&st, "alpha", "<domain/>", &err), 0);
        mode_is("etc/tether/domains/alpha.xml", 0600);
        /* Not definitions: another suffix, a hidden file, a bare ".xml". */
        p = at("etc/tether/domains/notes.txt");
        touch(p, 0600);
        free(p);
        p = at("etc/tether/domains/.hidden.xml");
        touch(p, 0600);
        free(p);
        p = at("etc/tether/domains/.xml");
        touch(p, 0600);
        free(p);
        v = store_list_defs(&st, &err);
        assert_non_null(v);
        assert_string_equal(v[0], "alpha");
        assert_string_equal(v[1], "zeta");
        assert_null(v[2]);
        store_strv_free(v);
        assert_int_equal(store_delete_def(&st, "zeta", &err), 0);
        assert_int_equal(store_delete_def(&st, "zeta", &err), 0); /* gone already: fine */
        v = store_list_defs(&st, &err);
        assert_string_equal(v[0], "alpha");
        assert_null(v[1]);
        store_strv_free(v);

        /* Autostart markers and managed saves. */
        assert_false(store_get_autostart(&st, "alpha"));
        assert_int_equal(store_set_autostart(&st, "alpha", true, &err), 0);
        assert_true(store_get_autostart(&st, "alpha"));
        assert_int_equal(store_set_autostart(&st, "alpha", false, &err), 0);
        assert_int_equal(store_set_autostart(&st, "alpha", false, &err), 0);
        assert_false(store_get_autostart(&st, "alpha"));
        assert_false(store_has_managed_save(&st, "alpha"));
        p = store_managed_save_path(&st, "alpha");
        touch(p, 0600);
        free(p);
        assert_true(store_has_managed_save(&st, "alpha"));
        store_close(&st);
}

static void test_store_status(void **state)
{
        struct store st;
        struct tt_error err = {0};
        json_t *status = json_pack("{s:i, s:s}", "pid", 1234, "state", "running"), *back;
        char **v, *p, *want;
        FILE *f;

        assert_int_equal(store_open(&st, root, &err), 0);
        v = store_list_running(&st, &err);
        assert_null(v[0]);
        store_strv_free(v);
        assert_int_equal(store_save_status(&st, "r1", status, &err), 0);
        mode_is("run/tether/domains/r1/status.json", 0600);
        back = store_load_status(&st, "r1", &err);
        assert_non_null(back);
        assert_true(json_equal(back, status));
        json_decref(back);
        /* Only folders are running domains. */
        p = at("run/tether/domains/stray-file");
        touch(p, 0600);
        free(p);
        v = store_list_running(&st, &err);
        assert_string_equal(v[0], "r1");
        assert_null(v[1]);
        store_strv_free(v);

        /* A corrupt status file: refused with the path and jansson's reason. */
        p = store_run_path(&st, "r1", "status.json");
        f = fopen(p, "we");
        fputs("{\"pid\": 12", f);
        fclose(f);
        assert_null(store_load_status(&st, "r1", &err));
        assert_true(asprintf(&want, "cannot read status '%s': ", p) > 0);
        assert_non_null(err.msg);
        assert_memory_equal(err.msg, want, strlen(want));
        tt_error_clear(&err);
        free(want);
        free(p);
        assert_null(store_load_status(&st, "never", &err));
        assert_non_null(strstr(err.msg, "cannot read status '"));
        tt_error_clear(&err);

        /* A stopped domain's run folder goes, with the files tetherd put there. */
        p = store_run_path(&st, "r1", "qmp.sock");
        touch(p, 0600);
        free(p);
        store_remove_run(&st, "r1");
        p = at("run/tether/domains/r1");
        assert_int_equal(access(p, F_OK), -1);
        free(p);
        json_decref(status);
        store_close(&st);
}

static void test_dac_can(void **state)
{
        gid_t groups[] = {200, 300};
        struct tetherd d = {.qemu_uid = 100, .qemu_gid = 100, .qemu_groups = groups,
                            .n_qemu_groups = 2};
        struct stat st = {0};

        st.st_uid = 100; /* owner bits */
        st.st_mode = 0600;
        assert_true(dac_qemu_can(&d, &st, 6));
        st.st_mode = 0400;
        assert_true(dac_qemu_can(&d, &st, 4));
        assert_false(dac_qemu_can(&d, &st, 6));
        st.st_mode = 0066; /* the owner's bits count, not the others' */
        assert_false(dac_qemu_can(&d, &st, 4));
        st.st_uid = 0; /* group bits: the primary or a supplementary group */
        st.st_gid = 300;
        st.st_mode = 0060;
        assert_true(dac_qemu_can(&d, &st, 6));
        st.st_gid = 100;
        st.st_mode = 0040;
        assert_true(dac_qemu_can(&d, &st, 4));
        assert_false(dac_qemu_can(&d, &st, 6));
        st.st_gid = 5; /* others */
        st.st_mode = 0664;
        assert_true(dac_qemu_can(&d, &st, 4));
        assert_false(dac_qemu_can(&d, &st, 6));
}

static void owner_is(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(st.st_gid, gid);
        assert_int_equal(st.st_mode & 07777, mode);
}

static void test_dac_grant_restore(void **state)
{
        struct tetherd d = {.qemu_drop = true, .qemu_uid = 65534, .qemu_gid = 65534};
        struct tt_error err = {0};
        char *disk = at("disk.img"), *cdrom = at("cd.iso"), *kernel = at("vmlinuz"),
             *initrd = at("initrd"), *json = NULL, *record, *imgdir = at("images");
        struct domain_disk disks[] = {
                {.device = DOMAIN_DISK_DISK, .source = disk},
                {.device = DOMAIN_DISK_CDROM, .source = cdrom},
                {.device = DOMAIN_DISK_DISK, .source = disk, .readonly = true}, /* twice */
                {.device = DOMAIN_DISK_DISK, .source = (char *)"/nonexistent/disk"},
        };
        struct domain def = {.kernel = kernel, .initrd = initrd, .disks = disks, .n_disks = 4};
        char *dirs[] = {imgdir, NULL};
        size_t len;

        assert_int_equal(geteuid(), 0);
        assert_int_equal(store_open(&d.store, root, &err), 0);
        touch(disk, 0640);
        assert_int_equal(chown(disk, 0, 0), 0);
        touch(cdrom, 0600);
        touch(kernel, 0644); /* QEMU's user can read it already: left alone */
        touch(initrd, 0600);
        record = store_run_path(&d.store, "g1", "dac.json");
        {
                char *dir = store_run_path(&d.store, "g1", NULL);

                assert_int_equal(mkdir(dir, 0755), 0);
                free(dir);
        }
        assert_int_equal(dac_grant(&d, "g1", &def, &err), 0);
        assert_null(err.msg);
        owner_is(disk, 65534, 65534, 0640);  /* read-write: the owner's bits have rw already */
        owner_is(cdrom, 65534, 65534, 0600); /* read-only */
        owner_is(initrd, 65534, 65534, 0600);
        owner_is(kernel, 0, 0, 0644);
        assert_int_equal(access(record, F_OK), 0);
        assert_int_equal(tt_read_file(record, 1 << 20, &json, &len, &err), 0);
        assert_non_null(strstr(json, "\"qemu_uid\":65534"));
        assert_non_null(strstr(json, disk));
        assert_null(strstr(json, kernel));
        free(json);

        /* Given back, and the record goes. */
        dac_restore(&d, "g1");
        owner_is(disk, 0, 0, 0640);
        owner_is(cdrom, 0, 0, 0600);
        owner_is(initrd, 0, 0, 0600);
        assert_int_equal(access(record, F_OK), -1);
        dac_restore(&d, "g1"); /* nothing to do: no record */

        /* A file replaced during the run is left as it is. (The old one is kept under another
           name: its inode number cannot come back for the new file.) */
        assert_int_equal(dac_grant(&d, "g1", &def, &err), 0);
        owner_is(initrd, 65534, 65534, 0600);
        {
                char *old = at("initrd.old");

                assert_int_equal(rename(initrd, old), 0);
                free(old);
        }
        touch(initrd, 0600);
        assert_int_equal(chown(initrd, 65534, 65534), 0);
        dac_restore(&d, "g1");
        owner_is(initrd, 65534, 65534, 0600);
        owner_is(disk, 0, 0, 0640);
        assert_int_equal(chown(initrd, 0, 0), 0);

        /* A request that is not root's gives nothing outside the image folders. */
        d.request_uid = 1000;
        d.image_dirs = dirs;
        assert_int_equal(mkdir(imgdir, 0755), 0);
        assert_int_equal(dac_grant(&d, "g1", &def, &err), 0);
        owner_is(disk, 0, 0, 0640);
        owner_is(initrd, 0, 0, 0600);
        d.request_uid = 0;
        d.image_dirs = NULL;

        /* QEMU runs as root: nothing to give. */
        d.qemu_drop = false;
        assert_int_equal(dac_grant(&d, "g1", &def, &err), 0);
        owner_is(disk, 0, 0, 0640);

        /* An unreadable record is dropped (and logged). */
        {
                FILE *f = fopen(record, "we");

                fputs("not json", f);
                fclose(f);
                dac_restore(&d, "g1");
                assert_int_equal(access(record, F_OK), -1);
        }
        free(record);
        free(disk);
        free(cdrom);
        free(kernel);
        free(initrd);
        free(imgdir);
        store_close(&d.store);
}

static int setup(void **state)
{
        return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_store_paths), cmocka_unit_test(test_store_defs),
                cmocka_unit_test(test_store_status), cmocka_unit_test(test_dac_can),
                cmocka_unit_test(test_dac_grant_restore),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
