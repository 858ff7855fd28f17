/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QMP passthrough (qemu-monitor-command), screenshots and the graphics a domain listens on. */
#include "host/vm-int.h"
#include "common/base64.h"
#include "common/cleanup.h"
#include "common/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A screendump PNG is refused beyond this. */
#define VM_SCREENSHOT_MAX (32u << 20)

struct vm_call {
        vm_done_fn done;    /* the caller */
        void *opaque;       /* its argument */
        struct vm *vm;      /* the domain (screenshots read a file afterwards) */
        char *path;         /* screenshot file */
};

static void passthrough_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm_call *c = opaque;
        _cleanup_json_ json_t *out = NULL;

        if (err == NULL)
                out = json_pack("{s:O}", "return", ret);
        c->done(c->opaque, out, err);
        free(c);
}

static bool vm_has_qmp(struct vm *vm, struct tt_error *err)
{
        if (vm_state_is_active(vm->status.state) && vm->qmp)
                return true;
        tt_error_set(err, VM_ERR_INVALID_OP,
                     "Requested operation is not valid: domain is not running");
        return false;
}

int vm_qmp_passthrough(struct vm *vm, json_t *cmd, vm_done_fn done, void *opaque,
                       struct tt_error *err)
{
        const char *execute = json_string_value(json_object_get(cmd, "execute"));
        json_t *args = json_object_get(cmd, "arguments");
        struct vm_call *c;

        if (!vm_has_qmp(vm, err))
                return -1;
        if (execute == NULL || (args && !json_is_object(args)))
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: expected {\"execute\": "
                                    "NAME[, \"arguments\": {...}]}");
        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        c->done = done;
        c->opaque = opaque;
        if (qmp_command(vm->qmp, execute, json_incref(args), VM_QMP_TIMEOUT_MS,
                        passthrough_done, c) < 0) {
                free(c);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU");
        }
        return 0;
}

static void screendump_done(void *opaque, json_t *ret, const struct tt_error *err)
{
        struct vm_call *c = opaque;
        _cleanup_free_ char *data = NULL, *b64 = NULL;
        _cleanup_json_ json_t *out = NULL;
        struct tt_error rerr = {0};
        size_t len = 0;

        if (err) {
                c->done(c->opaque, NULL, err);
        } else if (tt_read_file(c->path, VM_SCREENSHOT_MAX, &data, &len, &rerr) < 0) {
                rerr.code = VM_ERR_FAILED;
                c->done(c->opaque, NULL, &rerr);
        } else if ((b64 = malloc(tt_base64_encoded_len(len) + 1)) == NULL) {
                tt_error_set(&rerr, ENOMEM, "out of memory");
                c->done(c->opaque, NULL, &rerr);
        } else {
                b64[tt_base64_encode(data, len, b64)] = '\0';
                out = json_pack("{s:s, s:s}", "mime", "image/png", "data", b64);
                c->done(c->opaque, out, NULL);
        }
        tt_error_clear(&rerr);
        unlink(c->path);
        free(c->path);
        free(c);
}

int vm_screenshot(struct vm *vm, vm_done_fn done, void *opaque, struct tt_error *err)
{
        static unsigned seq;
        struct vm_call *c;
        char file[64], fdset_path[40];
        _cleanup_close_ int fd = -1;
        int fdset;

        if (!vm_has_qmp(vm, err))
                return -1;
        if (vm->live && vm->live->n_videos > 0 && vm->live->videos[0].model == DOMAIN_VIDEO_NONE)
                return tt_error_set(err, VM_ERR_INVALID_OP,
                                    "Requested operation is not valid: domain has no video "
                                    "device");
        c = calloc(1, sizeof(*c));
        if (c == NULL)
                return tt_error_set(err, ENOMEM, "out of memory");
        c->done = done;
        c->opaque = opaque;
        c->vm = vm;
        /*
         * QEMU writes the PNG itself (format png, QEMU >= 7.1); we ship it to the client. It
         * runs as its own user and may not create files in tetherd's folders: tetherd creates
         * the file and lends QEMU a descriptor of it (add-fd), which screendump opens as
         * /dev/fdset/N.
         */
        snprintf(file, sizeof(file), "screenshot-%u.png", ++seq);
        c->path = store_run_path(&vm->d->store, vm->def->name, file);
        fdset = 1000 + (int)(seq % 100000);
        snprintf(fdset_path, sizeof(fdset_path), "/dev/fdset/%d", fdset);
        if (c->path)
                fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 ||
            qmp_command_fd(vm->qmp, "add-fd", json_pack("{s:i}", "fdset-id", fdset), fd,
                           VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm) < 0 ||
            qmp_command(vm->qmp, "screendump",
                        json_pack("{s:s, s:s}", "filename", fdset_path, "format", "png"),
                        VM_QMP_TIMEOUT_MS, screendump_done, c) < 0) {
                if (c->path)
                        unlink(c->path);
                free(c->path);
                free(c);
                return tt_error_set(err, VM_ERR_FAILED, "cannot talk to QEMU for screendump");
        }
        qmp_command(vm->qmp, "remove-fd", json_pack("{s:i}", "fdset-id", fdset),
                    VM_QMP_TIMEOUT_MS, vm_reply_ignore, vm);
        return 0;
}

json_t *vm_graphics(struct vm *vm, struct tt_error *err)
{
        json_t *list;

        if (!vm_state_is_active(vm->status.state) || vm->live == NULL) {
                tt_error_set(err, VM_ERR_INVALID_OP,
                             "Requested operation is not valid: domain is not running");
                return NULL;
        }
        list = json_array();
        for (size_t i = 0; list && i < vm->live->n_graphics; i++) {
                const struct domain_graphics *g = &vm->live->graphics[i];

                json_array_append_new(
                        list, json_pack("{s:s, s:s, s:i, s:b}", "type",
                                        g->type == DOMAIN_GRAPHICS_VNC ? "vnc" : "spice",
                                        "listen", g->listen ? g->listen : "127.0.0.1", "port",
                                        g->port, "passwd", g->passwd != NULL));
        }
        return list;
}

