#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
The tether CLI against a real tetherd (its own --root in a temp folder) and real QEMUs:
`list` with every flag over a fixed set of domains compared with golden files (tests/host/cli/,
checked once against virsh list on the same domains in libvirt 9.0), the per-domain verbs,
exit codes and error lines, --json, connection URIs, and refused definitions.

    python3 test_cli.py TETHERD TETHER [--update]

--update rewrites the golden files from the current output (review the diff before committing).

The list goldens were checked by hand against `virsh -c qemu:///system list` (libvirt 9.0) on
the same six domains defined in libvirt (managed save made with `virsh managedsave`), with the
ids mapped (virsh's 6, 7, 8 are our 1, 2, 3): every file equals virsh's output byte for byte,
including `-q` (header left out of the column widths, no trailing blank line), `--title` (the
trailing spaces of an empty last cell), the empty table of `--state-other`, and the UTF-8
padding of test_utf8_table(). list_all_id_uuid_name.out is virsh's order (uuid, id, name).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "cli")
TIMEOUT = 30

passed = 0
failed = 0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, ("\n" + detail) if detail else ""), flush=True)
    return cond


def domain_xml(name, uuid, title=None, extra=""):
    t = "<title>%s</title>" % title if title else ""
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>%s"
            "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<devices><memballoon model='none'/>%s</devices></domain>\n" % (name, uuid, t, extra))


# The fixed set, the same one that was defined in libvirt to compare with virsh:
# name, uuid, title, what happens to it (in this order, so that the ids are 1, 2, 3).
DOMAINS = [
    ("clitest-alpha", "11111111-1111-4111-8111-111111111111", "Alpha web server", "running autostart"),
    ("clitest-Beta", "22222222-2222-4222-8222-222222222222", None, "paused"),
    ("clitest-trans", "33333333-3333-4333-8333-333333333333", None, "transient"),
    ("clitest-delta", "44444444-4444-4444-8444-444444444444", None, "autostart"),
    ("clitest-Echo", "55555555-5555-4555-8555-555555555555", None, ""),
    ("clitest-gamma", "66666666-6666-4666-8666-666666666666", None, "managedsave"),
]

# `list` variants: golden file name -> arguments.
LIST_CASES = [
    ("list", []),
    ("list_all", ["--all"]),
    ("list_inactive", ["--inactive"]),
    ("list_state-running", ["--state-running"]),
    ("list_state-paused", ["--state-paused"]),
    ("list_state-shutoff", ["--state-shutoff"]),
    ("list_state-other", ["--state-other"]),
    ("list_state-running_state-paused", ["--state-running", "--state-paused"]),
    ("list_all_state-running", ["--all", "--state-running"]),
    ("list_all_with-snapshot", ["--all", "--with-snapshot"]),
    ("list_all_without-snapshot", ["--all", "--without-snapshot"]),
    ("list_all_with-managed-save", ["--all", "--with-managed-save"]),
    ("list_all_without-managed-save", ["--all", "--without-managed-save"]),
    ("list_state-shutoff_with-managed-save", ["--state-shutoff", "--with-managed-save"]),
    ("list_all_autostart", ["--all", "--autostart"]),
    ("list_all_no-autostart", ["--all", "--no-autostart"]),
    ("list_inactive_autostart", ["--inactive", "--autostart"]),
    ("list_all_persistent", ["--all", "--persistent"]),
    ("list_all_transient", ["--all", "--transient"]),
    ("list_all_persistent_transient", ["--all", "--persistent", "--transient"]),
    ("list_transient_inactive", ["--transient", "--inactive"]),
    ("list_all_uuid", ["--all", "--uuid"]),
    ("list_all_name", ["--all", "--name"]),
    ("list_all_id", ["--all", "--id"]),
    ("list_id", ["--id"]),
    ("list_all_uuid_name", ["--all", "--uuid", "--name"]),
    ("list_all_id_name", ["--all", "--id", "--name"]),
    ("list_all_id_uuid_name", ["--all", "--id", "--uuid", "--name"]),
    ("list_all_name_title", ["--all", "--name", "--title"]),
    ("list_all_title", ["--all", "--title"]),
    ("list_all_managed-save", ["--all", "--managed-save"]),
    ("list_all_title_managed-save", ["--all", "--title", "--managed-save"]),
    ("list_all_table", ["--all", "--table"]),
    ("list_all_quiet", ["--all", "--quiet"]),
    ("list_all_q_title", ["--all", "-q", "--title"]),
    ("list_state-other_quiet", ["--state-other", "--quiet"]),
    ("list_all_json", ["--all", "--json"]),
]

# The keys of one domain in `list --json` / `dominfo --json`, in order (a stable contract).
DOMAIN_KEYS = ["id", "name", "uuid", "state", "reason", "title", "persistent", "autostart",
               "managed_save", "vcpus", "max_memory_kib", "used_memory_kib", "os_type"]


class Env:
    def __init__(self, tetherd, tether):
        self.tetherd = tetherd
        self.tether = tether
        self.tmp = tempfile.mkdtemp(prefix="clitest-cli-", dir="/tmp")
        self.root = os.path.join(self.tmp, "root")
        self.sock = os.path.join(self.root, "run/tether/tetherd.sock")
        self.proc = None
        self.env = dict(os.environ)
        self.env.pop("TETHER_DEFAULT_URI", None)

    def start_daemon(self):
        log = open(os.path.join(self.tmp, "tetherd.log"), "ab")
        self.proc = subprocess.Popen([self.tetherd, "--root", self.root], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(self.sock):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.sock)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("tetherd did not come up")

    def run(self, *args, root=True, env=None, stdin=None):
        argv = [self.tether] + (["--root", self.root] if root else []) + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                           env=env or self.env, input=stdin)
        return p.returncode, p.stdout, p.stderr

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def qemu_pids(self):
        """QEMU pids from the status files of running domains (ours only)."""
        pids = []
        d = os.path.join(self.root, "run/tether/domains")
        for name in os.listdir(d) if os.path.isdir(d) else []:
            try:
                with open(os.path.join(d, name, "status.json")) as f:
                    pids.append(int(json.load(f)["pid"]))
            except (OSError, ValueError, KeyError):
                pass
        return pids

    def cleanup(self):
        # Stop our QEMUs by pid (recorded by tetherd), then tetherd, then the folder.
        for pid in self.qemu_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        # Under -Db_sanitize=address,undefined the daemon reports into its log.
        try:
            log = open(os.path.join(self.tmp, "tetherd.log"), errors="replace").read()
        except OSError:
            log = ""
        check(not any(m in log for m in SANITIZER_MARKS), "no sanitizer report from tetherd",
              log[-3000:])
        shutil.rmtree(self.tmp, ignore_errors=True)


def golden_check(name, got, update):
    path = os.path.join(GOLDEN, name + ".out")
    if update:
        with open(path, "w") as f:
            f.write(got)
    try:
        with open(path) as f:
            want = f.read()
    except OSError:
        want = None
    if want is None:
        return check(False, "golden %s: missing %s (run with --update)" % (name, path))
    if got != want:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            "expected/" + name, "got/" + name))
        return check(False, "golden %s differs" % name, diff)
    return check(True, name)


def expect(e, args, rc, out=None, err=None, what=None, **kw):
    """Run tether and compare exit code, stdout and stderr exactly (None = don't care)."""
    got = e.run(*args, **kw)
    what = what or "tether " + " ".join(args)
    check(not any(m in got[2] for m in SANITIZER_MARKS), "%s: no sanitizer report" % what,
          got[2])
    ok = check(got[0] == rc, "%s: exit code %d, want %d" % (what, got[0], rc),
               "stdout: %r\nstderr: %r" % (got[1], got[2]))
    if out is not None:
        ok &= check(got[1] == out, "%s: stdout" % what, "got:  %r\nwant: %r" % (got[1], out))
    if err is not None:
        ok &= check(got[2] == err, "%s: stderr" % what, "got:  %r\nwant: %r" % (got[2], err))
    return got


def setup_domains(e):
    for name, uuid, title, how in DOMAINS:
        path = e.write(name + ".xml", domain_xml(name, uuid, title))
        if "transient" in how:
            expect(e, ["create", path], 0, "Domain '%s' created from %s\n\n" % (name, path))
            continue
        expect(e, ["define", path], 0, "Domain '%s' defined from %s\n\n" % (name, path))
        if "running" in how or "paused" in how:
            expect(e, ["start", name], 0, "Domain '%s' started\n\n" % name)
        if "paused" in how:
            expect(e, ["suspend", name], 0, "Domain '%s' suspended\n\n" % name)
        if "autostart" in how:
            expect(e, ["autostart", name], 0, "Domain '%s' marked as autostarted\n\n" % name)
        if "managedsave" in how:
            # A fake managed-save image: only its presence matters to list and dominfo.
            save = os.path.join(e.root, "var/lib/tether/save", name + ".save")
            os.makedirs(os.path.dirname(save), exist_ok=True)
            with open(save, "w") as f:
                f.write("fake managed-save image\n")


def test_list(e, update):
    for name, args in LIST_CASES:
        rc, out, err = e.run("list", *args)
        check(rc == 0 and err == "", "list %s: rc %d, stderr %r" % (" ".join(args), rc, err))
        golden_check(name, out, update)
    rc, out, _ = e.run("--json", "list", "--all")
    doms = json.loads(out)
    check([d["name"] for d in doms] == ["clitest-alpha", "clitest-Beta", "clitest-trans",
                                         "clitest-delta", "clitest-Echo", "clitest-gamma"],
          "list --json: virsh's order (active by id, then inactive by name, case-insensitively)")
    check(all(list(d.keys()) == DOMAIN_KEYS + ["has_snapshot"] for d in doms),
          "list --json: stable keys",
          repr([list(d.keys()) for d in doms]))
    # Options that virsh refuses together.
    expect(e, ["list", "--table", "--name"], 1, "",
           "error: Options --table and --name are mutually exclusive\n")
    expect(e, ["list", "--bogus"], 1, "", "error: command 'list' doesn't support option --bogus\n")
    expect(e, ["list", "extra"], 1, "", "error: unexpected data 'extra'\n")


def test_domain_verbs(e, update):
    for verb, dom in [("dominfo", "clitest-alpha"), ("dominfo", "clitest-gamma"),
                      ("dominfo", "clitest-trans"), ("domstate", "clitest-Beta"),
                      ("domid", "clitest-Beta"), ("domid", "clitest-Echo"),
                      ("domuuid", "clitest-Echo"), ("domname", "2"),
                      ("domname", "66666666-6666-4666-8666-666666666666"),
                      ("dumpxml", "clitest-alpha")]:
        rc, out, err = e.run(verb, dom)
        check(rc == 0 and err == "", "%s %s: rc %d, stderr %r" % (verb, dom, rc, err))
        golden_check("%s_%s" % (verb, dom), out, update)
    # domstate --reason over the states of the set.
    for dom, want in [("clitest-alpha", "running (booted)"), ("clitest-Beta", "paused (user)"),
                      ("clitest-trans", "running (booted)"), ("clitest-Echo", "shut off (unknown)"),
                      ("1", "running (booted)"),
                      ("33333333-3333-4333-8333-333333333333", "running (booted)")]:
        expect(e, ["domstate", "--reason", dom], 0, want + "\n\n", "")
    expect(e, ["domstate", "clitest-Beta"], 0, "paused\n\n", "")
    expect(e, ["domid", "clitest-alpha"], 0, "1\n\n", "")
    expect(e, ["domid", "clitest-gamma"], 0, "-\n\n", "")
    expect(e, ["domuuid", "clitest-alpha"], 0, "11111111-1111-4111-8111-111111111111\n\n", "")
    expect(e, ["domname", "3"], 0, "clitest-trans\n\n", "")
    expect(e, ["domname", "--domain", "3"], 0, "clitest-trans\n\n", "")
    # virsh -q drops the blank line that ends every command's output, and confirmations.
    expect(e, ["-q", "domstate", "clitest-Beta"], 0, "paused\n", "")
    expect(e, ["-q", "list", "--all", "--name"], 0,
           "clitest-alpha\nclitest-Beta\nclitest-trans\nclitest-delta\nclitest-Echo\n"
           "clitest-gamma\n", "")
    expect(e, ["-q", "suspend", "clitest-Beta"], 0, "", "")
    expect(e, ["-q", "autostart", "clitest-alpha"], 0, "", "")

    # --json on every verb that prints data: valid JSON with stable keys.
    for verb, dom, keys in [("dominfo", "clitest-alpha", DOMAIN_KEYS),
                            ("domstate", "clitest-Beta", ["state", "reason"]),
                            ("domid", "clitest-Beta", ["id"]), ("domuuid", "clitest-Beta", ["uuid"]),
                            ("domname", "2", ["name"]), ("dumpxml", "clitest-Beta", ["xml"])]:
        for argv in ([verb, "--json", dom], ["--json", verb, dom]):
            rc, out, err = e.run(*argv)
            try:
                j = json.loads(out)
            except ValueError:
                j = None
            check(rc == 0 and isinstance(j, dict) and list(j.keys()) == keys,
                  "tether %s: JSON object with keys %s" % (" ".join(argv), keys),
                  "rc %d stdout %r stderr %r" % (rc, out, err))
    rc, out, _ = e.run("domstate", "--json", "--reason", "clitest-Beta")
    check(json.loads(out) == {"state": "paused", "reason": "user"}, "domstate --json values", out)
    rc, out, _ = e.run("domid", "--json", "clitest-Echo")
    check(json.loads(out) == {"id": -1}, "domid --json of an inactive domain", out)
    rc, out, _ = e.run("dominfo", "--json", "clitest-gamma")
    j = json.loads(out)
    check(j["managed_save"] is True and j["state"] == "shut off" and j["id"] == -1 and
          j["max_memory_kib"] == 32768 and j["persistent"] is True, "dominfo --json values", out)
    rc, out, _ = e.run("dumpxml", "--json", "clitest-alpha")
    rc2, out2, _ = e.run("dumpxml", "clitest-alpha")
    check(json.loads(out)["xml"] == out2, "dumpxml --json carries the same XML")
    rc, out, err = e.run("define", "--json", e.write("j.xml", domain_xml(
        "clitest-json", "77777777-7777-4777-8777-777777777777")))
    check(rc == 0 and json.loads(out) == {"name": "clitest-json",
                                          "uuid": "77777777-7777-4777-8777-777777777777"},
          "define --json", "rc %d stdout %r stderr %r" % (rc, out, err))
    expect(e, ["undefine", "clitest-json"], 0, "Domain 'clitest-json' has been undefined\n\n", "")

    # dumpxml -> undefine -> define gives the same dumpxml; define of the same again too.
    rc, xml1, _ = e.run("dumpxml", "clitest-Echo")
    path = e.write("echo-dump.xml", xml1)
    expect(e, ["undefine", "clitest-Echo"], 0, "Domain 'clitest-Echo' has been undefined\n\n", "")
    expect(e, ["dominfo", "clitest-Echo"], 1, "", "error: failed to get domain 'clitest-Echo'\n")
    expect(e, ["define", path], 0, "Domain 'clitest-Echo' defined from %s\n\n" % path, "")
    expect(e, ["dumpxml", "clitest-Echo"], 0, xml1, "", what="dumpxml after define of dumpxml")
    expect(e, ["define", path], 0, "Domain 'clitest-Echo' defined from %s\n\n" % path, "",
           what="redefine with the same name and uuid")
    expect(e, ["dumpxml", "clitest-Echo"], 0, xml1, "", what="dumpxml after redefine")
    # A running domain: dumpxml's live definition defines to the same XML.
    rc, xml2, _ = e.run("dumpxml", "clitest-alpha")
    path = e.write("alpha-dump.xml", xml2)
    expect(e, ["define", path], 0, "Domain 'clitest-alpha' defined from %s\n\n" % path, "")
    expect(e, ["dumpxml", "--inactive", "clitest-alpha"], 0, xml2, "")


def test_utf8_table(e):
    """Columns are padded by display width in a UTF-8 locale, as vshTable does."""
    path = e.write("n.xml", domain_xml("clitest-\u00f1ame", "99999999-0000-4000-8000-000000000001",
                                       "Caf\u00e9 \u65e5\u672c"))
    env = dict(e.env, LC_ALL="C.UTF-8")
    expect(e, ["define", path], 0, None, "", env=env)
    expect(e, ["list", "--inactive", "--title"], 0,
           " Id   Name            State      Title\n"
           "--------------------------------------------\n"
           " -    clitest-delta   shut off   \n"
           " -    clitest-Echo    shut off   \n"
           " -    clitest-gamma   shut off   \n"
           " -    clitest-\u00f1ame    shut off   Caf\u00e9 \u65e5\u672c\n\n", "", env=env,
           what="list --title with UTF-8 name and title")
    expect(e, ["undefine", "clitest-\u00f1ame"], 0, None, "", env=env)


def test_errors(e):
    expect(e, ["dominfo", "nosuch"], 1, "", "error: failed to get domain 'nosuch'\n")
    for verb in ["domstate", "domid", "domuuid", "domname", "dumpxml", "start", "destroy",
                 "suspend", "resume", "undefine", "shutdown", "reboot", "reset", "autostart"]:
        expect(e, [verb, "nosuch"], 1, "", "error: failed to get domain 'nosuch'\n")
    expect(e, ["--json", "dominfo", "nosuch"], 1, "", "error: failed to get domain 'nosuch'\n")
    expect(e, ["nosuchverb"], 1, "", "error: unknown command: 'nosuchverb'\n")
    expect(e, ["domstate"], 1, "", "error: command 'domstate' requires <domain> option\n")
    expect(e, ["define"], 1, "", "error: command 'define' requires <file> option\n")
    expect(e, ["domstate", "--bogus", "x"], 1, "",
           "error: command 'domstate' doesn't support option --bogus\n")
    expect(e, ["domstate", "a", "b"], 1, "", "error: unexpected data 'b'\n")
    expect(e, ["--bogus", "list"], 1, "", "error: unsupported option '--bogus'. See --help.\n")
    # Options with a value: `--mode agent` and `--mode=agent` (virsh takes both).
    for args in (["--mode", "agent"], ["--mode=acpi"]):
        expect(e, ["shutdown"] + args + ["nosuch"], 1, "", "error: failed to get domain 'nosuch'\n")
    # virsh 9.0's text (shutdown's has a comma that reboot's lacks), before any connection.
    expect(e, ["shutdown", "--mode", "bogus", "x"], 1, "",
           "error: Unknown mode bogus value, expecting 'acpi', 'agent', 'initctl', 'signal', "
           "or 'paravirt'\n")
    expect(e, ["reboot", "--mode=agent,bogus", "x"], 1, "",
           "error: Unknown mode bogus value, expecting 'acpi', 'agent', 'initctl', 'signal' "
           "or 'paravirt'\n")
    expect(e, ["shutdown", "x", "--mode"], 1, "", "error: expected syntax: --mode <string>\n")
    rc, out, err = e.run()
    check(rc == 1 and out == "" and err.startswith("Usage: tether"), "no verb: usage on stderr")
    expect(e, ["define", "/nonexistent/x.xml"], 1, "", None)
    rc, out, err = e.run("define", "/nonexistent/x.xml")
    check(err.startswith("error: ") and "/nonexistent/x.xml" in err and err.count("\n") == 1,
          "define of a missing file names it", err)
    # State errors, with libvirt's wording.
    expect(e, ["suspend", "clitest-gamma"], 1, "",
           "error: Requested operation is not valid: domain is not running\n")
    expect(e, ["destroy", "clitest-gamma"], 1, "",
           "error: Requested operation is not valid: domain is not running\n")
    rc, out, err = e.run("start", "clitest-alpha")
    check(rc == 1 and out == "" and err.startswith("error: ") and "already" in err,
          "start of a running domain is refused", err)
    expect(e, ["undefine", "clitest-trans"], 1, "",
           "error: Failed to undefine domain 'clitest-trans'\n"
           "error: Requested operation is not valid: cannot undefine transient domain\n")
    expect(e, ["undefine", "clitest-gamma"], 1, "",
           "error: Failed to undefine domain 'clitest-gamma'\n"
           "error: Requested operation is not valid: Refusing to undefine while domain managed "
           "save image exists\n")


def test_connect(e):
    sock_uri = "tether:///system?socket=" + e.sock
    rc, want, _ = e.run("list", "--all")
    expect(e, ["-c", sock_uri, "list", "--all"], 0, want, "", root=False)
    expect(e, ["--connect", sock_uri, "list", "--all"], 0, want, "", root=False)
    env = dict(e.env, TETHER_DEFAULT_URI=sock_uri)
    expect(e, ["list", "--all"], 0, want, "", root=False, env=env,
           what="TETHER_DEFAULT_URI=" + sock_uri)
    # -c wins over the environment.
    env_bad = dict(e.env, TETHER_DEFAULT_URI="tether:///system?socket=/nonexistent/sock")
    expect(e, ["-c", sock_uri, "list", "--all"], 0, want, "", root=False, env=env_bad)
    expect(e, ["list"], 1, "",
           "error: failed to connect to the daemon at '/nonexistent/sock': No such file or "
           "directory (is tetherd running?)\n", root=False, env=env_bad)
    expect(e, ["-c", "bogus://x/system", "list"], 1, "",
           "error: unsupported URI scheme 'bogus' in 'bogus://x/system'\n", root=False)
    expect(e, ["-c", "tether:///session", "list"], 1, "",
           "error: invalid URI 'tether:///session': the path must be /system\n", root=False)
    expect(e, ["-c", "nonsense", "list"], 1, "", "error: invalid URI 'nonsense'\n", root=False)
    expect(e, ["-c", "tether://host/system", "list"], 1, "",
           "error: invalid URI 'tether://host/system': use tether+ssh:// for a remote host\n",
           root=False)
    expect(e, ["-c", "tether+ssh:///system", "list"], 1, "",
           "error: invalid URI 'tether+ssh:///system': ssh needs a host\n", root=False)
    expect(e, ["-c", "tether:///system?sock=x", "list"], 1, "",
           "error: unknown URI parameter 'sock' in 'tether:///system?sock=x'\n", root=False)
    expect(e, ["-c", "tether+ssh://h/system?keyfile=%zz", "list"], 1, "",
           "error: invalid value for URI parameter 'keyfile' in "
           "'tether+ssh://h/system?keyfile=%zz'\n", root=False)
    # %XX escapes in a parameter are undone (libvirt's URIs are escaped the same way).
    esc = "tether:///system?socket=" + e.sock.replace("/", "%2f")
    expect(e, ["-c", esc, "list", "--all"], 0, want, "", root=False)
    expect(e, ["-c"], 1, "", "error: option '-c' requires an argument\n", root=False)
    # --root picks ROOT/run/tether/tetherd.sock.
    expect(e, ["--root", e.tmp + "/nothing", "list"], 1, "",
           "error: failed to connect to the daemon at '%s/nothing/run/tether/tetherd.sock': No "
           "such file or directory (is tetherd running?)\n" % e.tmp, root=False)


def test_ssh_ipv6(e):
    """tether+ssh:// with an IPv6 literal host (issue 10, defect 10). The ssh program is a fake
    (libvirt's ?command= parameter) that logs its argv and runs the remote command here, so the
    test sees both what ssh is given and that the session works end to end."""
    fake = os.path.join(e.tmp, "fake-ssh")
    log = os.path.join(e.tmp, "fake-ssh.log")
    with open(fake, "w") as f:
        f.write('#!/bin/sh\nprintf "%%s\\n" "$@" > "%s"\n'
                'for last; do :; done\nexec sh -c "$last"\n' % log)
    os.chmod(fake, 0o755)
    env = dict(e.env, PATH=os.path.dirname(e.tether) + ":" + e.env.get("PATH", ""))
    rc, want, _ = e.run("list", "--all")
    query = "/system?command=%s&socket=%s" % (fake, e.sock)
    remote = "tether proxy '--socket' '%s'" % e.sock
    for uri, argv in [
            ("tether+ssh://[::1]:2222" + query,
             ["-T", "-e", "none", "-o", "BatchMode=yes", "-p", "2222", "--", "::1", remote]),
            ("tether+ssh://user@[::1]" + query,
             ["-T", "-e", "none", "-o", "BatchMode=yes", "-l", "user", "--", "::1", remote]),
            ("tether+ssh://u@[fe80::1%25eth0]:22" + query,
             ["-T", "-e", "none", "-o", "BatchMode=yes", "-p", "22", "-l", "u", "--",
              "fe80::1%eth0", remote]),
            ("tether+ssh://host.example:2200" + query,
             ["-T", "-e", "none", "-o", "BatchMode=yes", "-p", "2200", "--", "host.example",
              remote])]:
        if os.path.exists(log):
            os.unlink(log)
        expect(e, ["-c", uri, "list", "--all"], 0, want, "", root=False, env=env)
        try:
            with open(log) as f:
                got = f.read().splitlines()
        except OSError:
            got = None
        check(got == argv, "%s: ssh argv" % uri, "got:  %r\nwant: %r" % (got, argv))
    for uri, why in [("tether+ssh://[::1/system", "bad IPv6 host"),
                     ("tether+ssh://[]:22/system", "bad IPv6 host"),
                     ("tether+ssh://[::1]x/system", "bad IPv6 host"),
                     ("tether+ssh://[::1]:22x/system", "bad port")]:
        expect(e, ["-c", uri, "list"], 1, "", "error: invalid URI '%s': %s\n" % (uri, why),
               root=False)


def test_define_encodings(e):
    """define FILE of a non-UTF-8 file (issue 10, defect 10): read in its declared encoding (or
    a UTF-16 BOM) and sent as UTF-8; invalid bytes without a declaration are an error naming
    the file, line and bytes. Before, both said "Parameter 'xml' is missing"."""
    defs = os.path.join(e.root, "etc/tether/domains")
    before = sorted(os.listdir(defs))
    uuid = "abababab-abab-4bab-8bab-abababababab"
    text = domain_xml("clitest-enc", uuid, "caf\u00e9 \u00fcber").replace("><", ">\n<")
    for what, data in [
            ("ISO-8859-1 declared",
             ("<?xml version='1.0' encoding='ISO-8859-1'?>\n" + text).encode("latin-1")),
            ("UTF-16 with a BOM", ("<?xml version='1.0' encoding='UTF-16'?>\n" + text)
             .encode("utf-16")),
            ("UTF-8 declared", ("<?xml version='1.0' encoding='UTF-8'?>\n" + text)
             .encode("utf-8"))]:
        path = os.path.join(e.tmp, "enc.xml")
        with open(path, "wb") as f:
            f.write(data)
        expect(e, ["define", path], 0, "Domain 'clitest-enc' defined from %s\n\n" % path, "",
               what="define (%s)" % what)
        rc, out, _ = e.run("dumpxml", "clitest-enc")
        check("<title>caf\u00e9 \u00fcber</title>" in out,
              "define (%s): the title arrives as UTF-8" % what, out)
        expect(e, ["undefine", "clitest-enc"], 0,
               "Domain 'clitest-enc' has been undefined\n\n", "")
    bad = os.path.join(e.tmp, "latin1-undeclared.xml")
    with open(bad, "wb") as f:
        f.write(text.encode("latin-1"))
    for verb in ("define", "create"):
        expect(e, [verb, bad], 1, "",
               "error: %s: not valid UTF-8 at line 4 (bytes 0xE9 0x20 0xFC 0x62), and no other "
               "encoding is declared\n" % bad, what="%s of undeclared ISO-8859-1" % verb)
    bad2 = os.path.join(e.tmp, "latin1-broken.xml")
    with open(bad2, "wb") as f:
        f.write(b"<?xml version='1.0' encoding='ISO-8859-1'?>\n<domain>\xe9\n<name>x</name\n")
    expect(e, ["define", bad2], 1, "", None, what="define of malformed ISO-8859-1")
    check(sorted(os.listdir(defs)) == before, "refused encodings: nothing left behind",
          repr(sorted(os.listdir(defs))))


def test_define_errors(e):
    defs = os.path.join(e.root, "etc/tether/domains")
    before = sorted(os.listdir(defs))
    cases = [
        ("not well-formed", "<domain type='qemu'>\n  <name>x</name>\n  <memory>1024</memory\n"
         "</domain>\n", "error: not well-formed XML at line 4: expected '>'\n"),
        ("unclosed", "<domain type='qemu'>\n  <name>x</name>\n",
         "error: not well-formed XML at line 3: Premature end of data in tag domain line 1\n"),
        ("empty file", "", None),
        ("unsupported element",
         domain_xml("clitest-unsup", "88888888-8888-4888-8888-888888888888",
                    extra="\n<sound model='ich9'/>\n").replace("><", ">\n<"),
         "error: unsupported element 'sound' at /domain/devices/sound (line 11)\n"),
        ("unsupported element in os",
         "<domain type='qemu'>\n<name>clitest-u2</name>\n<memory unit='MiB'>32</memory>\n"
         "<os>\n<type arch='x86_64' machine='pc'>hvm</type>\n<loader>/x</loader>\n</os>\n"
         "</domain>\n", "error: unsupported element 'loader' at /domain/os/loader (line 6)\n"),
        ("duplicate name",
         domain_xml("clitest-alpha", "99999999-9999-4999-8999-999999999999"),
         "error: operation failed: domain 'clitest-alpha' already exists with uuid "
         "11111111-1111-4111-8111-111111111111\n"),
        ("duplicate name of a transient domain",
         domain_xml("clitest-trans", "99999999-9999-4999-8999-999999999999"),
         "error: operation failed: domain 'clitest-trans' already exists with uuid "
         "33333333-3333-4333-8333-333333333333\n"),
        # libvirt 9.0 (virDomainObjListAddLocked) says "is already defined" for a uuid clash.
        ("duplicate uuid",
         domain_xml("clitest-other", "11111111-1111-4111-8111-111111111111"),
         "error: operation failed: domain 'clitest-alpha' is already defined with uuid "
         "11111111-1111-4111-8111-111111111111\n"),
    ]
    for what, xml, want in cases:
        path = e.write("bad.xml", xml)
        rc, out, err = e.run("define", path)
        check(rc == 1 and out == "", "define (%s): exit code 1, no stdout" % what,
              "rc %d stdout %r" % (rc, out))
        if want is not None:
            check(err == want, "define (%s): error line" % what, "got:  %r\nwant: %r" % (err, want))
        else:
            check(err.startswith("error: ") and err.count("\n") == 1,
                  "define (%s): one error line" % what, repr(err))
        # create refuses the same, and starts nothing.
        rc, out, err2 = e.run("create", path)
        check(rc == 1 and out == "" and err2 == err, "create (%s): same error as define" % what,
              "rc %d stdout %r stderr %r" % (rc, out, err2))
        check(sorted(os.listdir(defs)) == before, "define (%s): nothing left behind" % what,
              repr(sorted(os.listdir(defs))))
    rc, out, _ = e.run("list", "--all", "--name")
    check(out.split() == ["clitest-alpha", "clitest-Beta", "clitest-trans", "clitest-delta",
                          "clitest-Echo", "clitest-gamma"], "refused definitions are not listed",
          out)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    update = "--update" in sys.argv
    if len(args) != 2:
        print(__doc__)
        return 2
    e = Env(os.path.abspath(args[0]), os.path.abspath(args[1]))
    try:
        e.start_daemon()
        setup_domains(e)
        test_list(e, update)
        test_domain_verbs(e, update)
        test_utf8_table(e)
        test_errors(e)
        test_connect(e)
        test_ssh_ipv6(e)
        test_define_encodings(e)
        test_define_errors(e)
        check(e.proc.poll() is None, "tetherd is still running")
    finally:
        if failed:
            try:
                print("--- tetherd log (tail) ---")
                print(open(os.path.join(e.tmp, "tetherd.log")).read()[-3000:])
            except OSError:
                pass
        e.cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
