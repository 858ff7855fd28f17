/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command table: name, handler, argument spec and flags, one row per QGA command, in the
 * order of qemu's schema. Dispatch, the freeze gate, -b/-a and guest-info all read this table.
 * Rows flagged CHANGES alter the guest (set-time, shutdown, freeze, ...): they are never sent
 * to an agent running on a build host, and are tested inside a test guest only.
 */
#include "agent/agent.h"

#include <string.h>

#define ARG(n, t)          {.name = (n), .type = (t), .required = true}
#define OPT(n, t)          {.name = (n), .type = (t), .required = false}
#define OPT_LIST(n, e)     {.name = (n), .type = WIRE_T_ARRAY, .elem = (e)}
#define END                {.name = NULL}

static const struct wire_arg args_sync[] = {ARG("id", WIRE_T_INT), END};
static const struct wire_arg args_handle[] = {ARG("handle", WIRE_T_INT), END};
static const struct wire_arg args_file_open[] = {ARG("path", WIRE_T_STRING),
                                                 OPT("mode", WIRE_T_STRING), END};
static const struct wire_arg args_file_read[] = {ARG("handle", WIRE_T_INT),
                                                 OPT("count", WIRE_T_INT), END};
static const struct wire_arg args_file_write[] = {ARG("handle", WIRE_T_INT),
                                                  ARG("buf-b64", WIRE_T_STRING),
                                                  OPT("count", WIRE_T_INT), END};
static const char *const whence_names[] = {"set", "cur", "end", NULL};
static const struct wire_arg args_file_seek[] = {
        ARG("handle", WIRE_T_INT),
        ARG("offset", WIRE_T_INT),
        {.name = "whence", .type = WIRE_T_ALT_INT_ENUM, .required = true,
         .enum_values = whence_names, .type_name = "GuestFileWhence"},
        END,
};
static const char *const capture_names[] = {"none", "stdout", "stderr", "separated", "merged",
                                            NULL};
static const struct wire_arg args_exec[] = {
        ARG("path", WIRE_T_STRING),
        OPT_LIST("arg", WIRE_T_STRING),
        OPT_LIST("env", WIRE_T_STRING),
        OPT("input-data", WIRE_T_STRING),
        {.name = "capture-output", .type = WIRE_T_ALT_BOOL_ENUM, .required = false,
         .enum_values = capture_names, .type_name = "GuestExecCaptureOutput"},
        END,
};
static const struct wire_arg args_exec_status[] = {ARG("pid", WIRE_T_INT), END};
static const struct wire_arg args_username[] = {ARG("username", WIRE_T_STRING), END};
static const struct wire_arg args_set_time[] = {OPT("time", WIRE_T_INT), END};
static const struct wire_arg args_shutdown[] = {OPT("mode", WIRE_T_STRING), END};
static const struct wire_arg args_freeze_list[] = {OPT_LIST("mountpoints", WIRE_T_STRING), END};
static const struct wire_arg args_fstrim[] = {OPT("minimum", WIRE_T_INT), END};
static const struct wire_arg vcpu_members[] = {ARG("logical-id", WIRE_T_INT),
                                               ARG("online", WIRE_T_BOOL),
                                               OPT("can-offline", WIRE_T_BOOL), END};
static const struct wire_arg args_set_vcpus[] = {
        {.name = "vcpus", .type = WIRE_T_ARRAY, .required = true, .elem = WIRE_T_OBJECT,
         .members = vcpu_members},
        END,
};
static const struct wire_arg memblk_members[] = {ARG("phys-index", WIRE_T_UINT64),
                                                 ARG("online", WIRE_T_BOOL),
                                                 OPT("can-offline", WIRE_T_BOOL), END};
static const struct wire_arg args_set_memory_blocks[] = {
        {.name = "mem-blks", .type = WIRE_T_ARRAY, .required = true, .elem = WIRE_T_OBJECT,
         .members = memblk_members},
        END,
};
static const struct wire_arg args_set_user_password[] = {ARG("username", WIRE_T_STRING),
                                                         ARG("password", WIRE_T_STRING),
                                                         ARG("crypted", WIRE_T_BOOL), END};
static const struct wire_arg args_ssh_add[] = {
        ARG("username", WIRE_T_STRING),
        {.name = "keys", .type = WIRE_T_ARRAY, .required = true, .elem = WIRE_T_STRING},
        OPT("reset", WIRE_T_BOOL),
        END,
};
static const struct wire_arg args_ssh_remove[] = {
        ARG("username", WIRE_T_STRING),
        {.name = "keys", .type = WIRE_T_ARRAY, .required = true, .elem = WIRE_T_STRING},
        END,
};

#define ROW(n, fn, a, f) {.name = (n), .handler = (fn), .args = (a), .flags = (f)}
#define FROZEN_OK        AGENT_ALLOWED_WHILE_FROZEN
#define CHANGES          AGENT_CHANGES_GUEST
#define CHANGES_NO_REPLY (AGENT_CHANGES_GUEST | AGENT_NO_SUCCESS_RESPONSE)

const struct agent_command agent_commands[] = {
        ROW("guest-sync-delimited", agent_cmd_sync_delimited, args_sync, FROZEN_OK),
        ROW("guest-sync", agent_cmd_sync, args_sync, FROZEN_OK),
        ROW("guest-ping", agent_cmd_ping, NULL, FROZEN_OK),
        ROW("guest-get-time", agent_cmd_get_time, NULL, 0),
        ROW("guest-set-time", agent_cmd_set_time, args_set_time, CHANGES),
        ROW("guest-info", agent_cmd_info, NULL, FROZEN_OK),
        ROW("guest-shutdown", agent_cmd_shutdown, args_shutdown, CHANGES_NO_REPLY),
        ROW("guest-file-open", agent_cmd_file_open, args_file_open, 0),
        ROW("guest-file-close", agent_cmd_file_close, args_handle, 0),
        ROW("guest-file-read", agent_cmd_file_read, args_file_read, 0),
        ROW("guest-file-write", agent_cmd_file_write, args_file_write, 0),
        ROW("guest-file-seek", agent_cmd_file_seek, args_file_seek, 0),
        ROW("guest-file-flush", agent_cmd_file_flush, args_handle, 0),
        ROW("guest-fsfreeze-status", agent_cmd_fsfreeze_status, NULL, FROZEN_OK),
        ROW("guest-fsfreeze-freeze", agent_cmd_fsfreeze_freeze, NULL, CHANGES),
        ROW("guest-fsfreeze-freeze-list", agent_cmd_fsfreeze_freeze_list, args_freeze_list,
            CHANGES),
        ROW("guest-fsfreeze-thaw", agent_cmd_fsfreeze_thaw, NULL, CHANGES | FROZEN_OK),
        ROW("guest-fstrim", agent_cmd_fstrim, args_fstrim, CHANGES),
        ROW("guest-suspend-disk", agent_cmd_suspend_disk, NULL, CHANGES_NO_REPLY),
        ROW("guest-suspend-ram", agent_cmd_suspend_ram, NULL, CHANGES_NO_REPLY),
        ROW("guest-suspend-hybrid", agent_cmd_suspend_hybrid, NULL, CHANGES_NO_REPLY),
        ROW("guest-network-get-interfaces", agent_cmd_network_get_interfaces, NULL, 0),
        ROW("guest-get-vcpus", agent_cmd_get_vcpus, NULL, 0),
        ROW("guest-set-vcpus", agent_cmd_set_vcpus, args_set_vcpus, CHANGES),
        ROW("guest-get-disks", agent_cmd_get_disks, NULL, 0),
        ROW("guest-get-fsinfo", agent_cmd_get_fsinfo, NULL, 0),
        ROW("guest-set-user-password", agent_cmd_set_user_password, args_set_user_password,
            CHANGES),
        ROW("guest-get-memory-blocks", agent_cmd_get_memory_blocks, NULL, 0),
        ROW("guest-set-memory-blocks", agent_cmd_set_memory_blocks, args_set_memory_blocks,
            CHANGES),
        ROW("guest-get-memory-block-info", agent_cmd_get_memory_block_info, NULL, 0),
        ROW("guest-exec-status", agent_cmd_exec_status, args_exec_status, 0),
        ROW("guest-exec", agent_cmd_exec, args_exec, 0),
        ROW("guest-get-host-name", agent_cmd_get_host_name, NULL, 0),
        ROW("guest-get-users", agent_cmd_get_users, NULL, 0),
        ROW("guest-get-timezone", agent_cmd_get_timezone, NULL, 0),
        ROW("guest-get-osinfo", agent_cmd_get_osinfo, NULL, 0),
        ROW("guest-ssh-get-authorized-keys", agent_cmd_ssh_get_authorized_keys, args_username, 0),
        ROW("guest-ssh-add-authorized-keys", agent_cmd_ssh_add_authorized_keys, args_ssh_add,
            CHANGES),
        ROW("guest-ssh-remove-authorized-keys", agent_cmd_ssh_remove_authorized_keys,
            args_ssh_remove, CHANGES),
        ROW("guest-get-diskstats", agent_cmd_get_diskstats, NULL, 0),
        ROW("guest-get-cpustats", agent_cmd_get_cpustats, NULL, 0),
        ROW("guest-get-load", agent_cmd_get_load, NULL, 0),
        ROW("guest-network-get-route", agent_cmd_network_get_route, NULL, 0),
        {.name = NULL},
};

size_t agent_command_count(void)
{
        size_t n = 0;

        while (agent_commands[n].name)
                n++;
        return n;
}

const struct agent_command *agent_command_find(const char *name)
{
        const struct agent_command *c;

        for (c = agent_commands; c->name; c++)
                if (strcmp(c->name, name) == 0)
                        return c;
        return NULL;
}
