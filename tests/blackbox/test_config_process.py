"""config.json `process`: args, env, cwd, user, umask, terminal, rlimits,
capabilities, noNewPrivileges, oomScoreAdj, personality, scheduler,
ioPriority; plus hostname/domainname."""
import os
import select
import socket

import pytest

from config_helpers import (CAPS, Detached, UnixServer, cap_mask, host_caps,
                            read, run_fails, run_sh, skip_for_runc,
                            status_fields)


# --- args, env, cwd ----------------------------------------------------------

def test_args_exit_code_propagates(bundle, runtime):
    p = run_sh(runtime, bundle, "echo out; echo err >&2; exit 7", check=False)
    assert p.returncode == 7
    assert p.stdout == "out\n"
    assert "err" in p.stderr


def test_args_resolved_through_path(bundle, runtime):
    bundle.set_args("echo", "a b", "c")
    cid = runtime.new_id()
    p = runtime.run("run", "--bundle", bundle.path, cid)
    assert p.stdout == "a b c\n"


def test_args_missing_executable_is_an_error(bundle, runtime):
    bundle.set_args("berth-no-such-binary")
    cid = runtime.new_id()
    p = runtime.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode != 0
    assert "berth-no-such-binary" in p.stderr


def test_env(bundle, runtime):
    bundle.process["env"] = [
        "PATH=/bin:/usr/bin", "FOO=bar", "WITH_EQ=a=b=c", "EMPTY=",
    ]
    p = run_sh(runtime, bundle,
               'echo "$FOO|$WITH_EQ|${EMPTY-unset}|$PATH"; env | sort')
    first, rest = p.stdout.split("\n", 1)
    assert first == "bar|a=b=c||/bin:/usr/bin"
    env = rest.split()
    assert "FOO=bar" in env
    # The runtime adds nothing but what the shell itself sets (PWD, SHLVL)
    # and, at most, HOME.
    extra = {e.split("=", 1)[0] for e in env} - {
        "FOO", "WITH_EQ", "EMPTY", "PATH", "PWD", "SHLVL", "HOME"}
    assert not extra, "unexpected environment: %s" % extra


def test_cwd(bundle, runtime):
    bundle.process["cwd"] = "/usr/bin"
    p = run_sh(runtime, bundle, "pwd; readlink /proc/self/cwd")
    assert p.stdout.split() == ["/usr/bin", "/usr/bin"]


# --- user --------------------------------------------------------------------

def test_user_uid_gid(bundle, runtime):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    p = run_sh(runtime, bundle,
               "id -u; id -g; grep -E '^(Uid|Gid):' /proc/self/status")
    lines = p.stdout.splitlines()
    assert lines[0:2] == ["1000", "1000"]
    assert lines[2].split()[1:] == ["1000"] * 4   # real, eff, saved, fs
    assert lines[3].split()[1:] == ["1000"] * 4


def test_user_additional_gids(bundle, runtime):
    bundle.process["user"] = {"uid": 1000, "gid": 1000,
                              "additionalGids": [1001, 5]}
    p = run_sh(runtime, bundle, "grep '^Groups:' /proc/self/status")
    groups = set(p.stdout.split()[1:])
    assert {"1001", "5"} <= groups
    assert "0" not in groups


def test_user_without_additional_gids_has_no_root_group(bundle, runtime):
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    p = run_sh(runtime, bundle, "grep '^Groups:' /proc/self/status")
    assert "0" not in p.stdout.split()[1:]


@pytest.mark.parametrize("umask,want", [(0o077, "0077"), (0o002, "0002")])
def test_user_umask(bundle, runtime, umask, want):
    bundle.process["user"]["umask"] = umask
    p = run_sh(runtime, bundle, "umask")
    assert p.stdout.strip() == want


def test_user_default_umask_is_0022(bundle, runtime):
    bundle.process["user"].pop("umask", None)
    p = run_sh(runtime, bundle, "umask")
    assert p.stdout.strip() == "0022"


# --- terminal ----------------------------------------------------------------

def test_terminal_false_gives_no_tty(bundle, runtime):
    bundle.process["terminal"] = False
    p = run_sh(runtime, bundle,
               "if test -t 0 || test -t 1 || test -t 2; then echo tty;"
               " else echo notty; fi")
    assert p.stdout.strip() == "notty"


def _read_pty(fd, until=None, timeout=10):
    import time
    out = b""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:      # EIO: the other side is gone
            break
        if not chunk:
            break
        out += chunk
        if until and until in out:
            break
    return out.decode(errors="replace")


def test_terminal_console_socket(bundle, runtime, tmp_path):
    """terminal: true + --console-socket: the pty master arrives over the
    socket (SCM_RIGHTS); the process's stdio are that pty's slave."""
    bundle.process["terminal"] = True
    sock_path = str(tmp_path / "console.sock")
    srv = UnixServer(sock_path)
    try:
        d = Detached(runtime, bundle, [
            "sh", "-c",
            "test -t 0 && test -t 1 && test -t 2 && echo ISATTY;"
            " tty; stty size; echo DONE; sleep 30"],
            run_args=["--console-socket", sock_path])
        with d:
            assert srv.join(), "no connection on the console socket"
            assert srv.error is None, srv.error
            assert len(srv.fds) == 1, "expected one fd, got %r" % srv.fds
            out = _read_pty(srv.fds[0], until=b"DONE")
        assert "ISATTY" in out
        assert "/dev/pts/0" in out or "/dev/console" in out
    finally:
        srv.close()


def test_terminal_console_size(bundle, runtime, tmp_path):
    bundle.process["terminal"] = True
    bundle.process["consoleSize"] = {"height": 33, "width": 101}
    sock_path = str(tmp_path / "console.sock")
    srv = UnixServer(sock_path)
    try:
        d = Detached(runtime, bundle, [
            "sh", "-c", "stty size; echo DONE; sleep 30"],
            run_args=["--console-socket", sock_path])
        with d:
            assert srv.join() and srv.error is None, srv.error
            out = _read_pty(srv.fds[0], until=b"DONE")
        assert "33 101" in out
    finally:
        srv.close()


# --- rlimits -----------------------------------------------------------------

def _limits(text):
    """'Max open files  100  200  files' -> {'Max open files': ('100','200')}"""
    out = {}
    for line in text.splitlines()[1:]:
        parts = line[:26].strip(), line[26:].split()
        if len(parts[1]) >= 2:
            out[parts[0]] = (parts[1][0], parts[1][1])
    return out


def test_rlimit_nofile_lowered(bundle, runtime):
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    p = run_sh(runtime, bundle, "ulimit -n; ulimit -Hn")
    assert p.stdout.split() == ["100", "200"]


def test_rlimits_several(bundle, runtime):
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192},
    ]
    p = run_sh(runtime, bundle, "cat /proc/self/limits")
    lim = _limits(p.stdout)
    assert lim["Max open files"] == ("512", "512")
    assert lim["Max core file size"] == ("0", "0")
    assert lim["Max processes"] == ("300", "400")
    assert lim["Max msgqueue size"] == ("4096", "8192")


def test_rlimit_unknown_type_is_an_error(bundle, runtime):
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_BERTHBOGUS", "soft": 1, "hard": 1}]
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "RLIMIT_BERTHBOGUS" in p.stderr


# --- capabilities ------------------------------------------------------------

def test_capabilities_root(bundle, runtime):
    """For uid 0 the permitted/effective sets after exec are bounding |
    inheritable (no file caps); bounding and inheritable are exact."""
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"]
    bundle.process["capabilities"] = {
        "bounding": bnd, "permitted": bnd, "effective": bnd,
        "inheritable": ["CAP_KILL"],
    }
    p = run_sh(runtime, bundle, "cat /proc/self/status")
    st = status_fields(p.stdout)
    assert int(st["CapBnd"], 16) == cap_mask(bnd)
    assert int(st["CapInh"], 16) == cap_mask(["CAP_KILL"])
    assert int(st["CapPrm"], 16) == cap_mask(bnd)
    assert int(st["CapEff"], 16) == cap_mask(bnd)
    assert int(st["CapAmb"], 16) == 0


def test_capabilities_all_five_sets_non_root(bundle, runtime):
    """As uid 1000 only ambient caps survive exec into permitted/effective,
    which shows the runtime set bounding, inheritable, permitted, effective
    and ambient."""
    bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": bnd,
        "permitted": ["CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_KILL", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"],
        "ambient": ["CAP_NET_BIND_SERVICE"],
    }
    p = run_sh(runtime, bundle, "cat /proc/self/status")
    st = status_fields(p.stdout)
    assert int(st["CapBnd"], 16) == cap_mask(bnd)
    assert int(st["CapInh"], 16) == cap_mask(["CAP_NET_RAW",
                                              "CAP_NET_BIND_SERVICE"])
    assert int(st["CapAmb"], 16) == cap_mask(["CAP_NET_BIND_SERVICE"])
    assert int(st["CapPrm"], 16) == cap_mask(["CAP_NET_BIND_SERVICE"])
    assert int(st["CapEff"], 16) == cap_mask(["CAP_NET_BIND_SERVICE"])


def test_capabilities_empty_means_none(bundle, runtime):
    bundle.process["capabilities"] = {}
    p = run_sh(runtime, bundle, "cat /proc/self/status")
    st = status_fields(p.stdout)
    for k in ("CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"):
        assert int(st[k], 16) == 0, k


@pytest.mark.parametrize("caps,want", [
    (["CAP_KILL"], "NOCHOWN"),
    (["CAP_KILL", "CAP_CHOWN"], "CHOWNED"),
])
def test_capabilities_really_apply(bundle, runtime, caps, want):
    """Root without CAP_CHOWN can't give a file away; with it, it can."""
    bundle.process["capabilities"] = {
        "bounding": caps, "permitted": caps, "effective": caps}
    p = run_sh(runtime, bundle,
               "touch /dev/shm/f && chown 1000 /dev/shm/f 2>/dev/null"
               " && echo CHOWNED || echo NOCHOWN")
    assert p.stdout.strip() == want


@skip_for_runc("fails with 'unable to apply caps: operation not permitted'"
               " when a listed cap is missing from the host's bounding set")
def test_capabilities_all_including_ones_the_host_lacks(bundle, runtime):
    """A config listing every capability (CAP_SYS_RESOURCE included, which
    this host's bounding set lacks) still starts; the container gets what
    the host has."""
    allcaps = list(CAPS)
    bundle.process["capabilities"] = {k: list(allcaps) for k in (
        "bounding", "permitted", "effective", "inheritable", "ambient")}
    p = run_sh(runtime, bundle, "cat /proc/self/status")
    st = status_fields(p.stdout)
    hostbnd = host_caps("CapBnd")
    assert int(st["CapBnd"], 16) == hostbnd & cap_mask(allcaps)
    assert int(st["CapEff"], 16) == hostbnd & cap_mask(allcaps)


def test_capabilities_unknown_name_is_an_error_or_ignored(bundle, runtime):
    """An unknown name must not silently grant anything: the runtime either
    refuses with a message naming it, or ignores it."""
    bundle.process["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_BERTH_BOGUS"],
        "effective": ["CAP_KILL", "CAP_BERTH_BOGUS"],
        "permitted": ["CAP_KILL", "CAP_BERTH_BOGUS"]}
    p = run_sh(runtime, bundle, "grep CapBnd /proc/self/status", check=False)
    if p.returncode != 0:
        assert "CAP_BERTH_BOGUS" in p.stderr
    else:
        assert int(p.stdout.split()[1], 16) == cap_mask(["CAP_KILL"])


# --- noNewPrivileges ---------------------------------------------------------

@pytest.mark.parametrize("nnp,want", [(True, "1"), (False, "0")])
def test_no_new_privileges(bundle, runtime, nnp, want):
    if status_fields(read("/proc/self/status"))["NoNewPrivs"] != "0":
        pytest.skip("the test runner itself has no_new_privs set")
    bundle.process["noNewPrivileges"] = nnp
    p = run_sh(runtime, bundle, "grep NoNewPrivs /proc/self/status")
    assert p.stdout.split()[1] == want


# --- oomScoreAdj -------------------------------------------------------------

@pytest.mark.parametrize("adj", [500, 1000])
def test_oom_score_adj(bundle, runtime, adj):
    bundle.process["oomScoreAdj"] = adj
    p = run_sh(runtime, bundle, "cat /proc/self/oom_score_adj")
    assert p.stdout.strip() == str(adj)


def test_oom_score_adj_lowering(bundle, runtime):
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE: with it the value is
    applied, without it (this host) the runtime fails and says why."""
    cur = int(read("/proc/self/oom_score_adj"))
    want = max(cur - 100, -1000)
    bundle.process["oomScoreAdj"] = want
    has_sys_resource = host_caps("CapEff") & cap_mask(["CAP_SYS_RESOURCE"])
    if has_sys_resource:
        p = run_sh(runtime, bundle, "cat /proc/self/oom_score_adj")
        assert p.stdout.strip() == str(want)
    else:
        bundle.write()
        p = run_fails(runtime, bundle)
        assert "oom" in p.stderr.lower()


def test_oom_score_adj_unset_inherits(bundle, runtime):
    bundle.process.pop("oomScoreAdj", None)
    p = run_sh(runtime, bundle, "cat /proc/self/oom_score_adj")
    assert p.stdout.strip() == read("/proc/self/oom_score_adj").strip()


# --- hostname / domainname ---------------------------------------------------

def test_hostname(bundle, runtime):
    bundle.config["hostname"] = "berth-host-x"
    p = run_sh(runtime, bundle, "hostname; cat /proc/sys/kernel/hostname")
    assert p.stdout.split() == ["berth-host-x", "berth-host-x"]
    assert socket.gethostname() != "berth-host-x"


@skip_for_runc("ignores the domainname field")
def test_domainname(bundle, runtime):
    host_domain = read("/proc/sys/kernel/domainname").strip()
    bundle.config["domainname"] = "berth.example"
    p = run_sh(runtime, bundle, "cat /proc/sys/kernel/domainname")
    assert p.stdout.strip() == "berth.example"
    assert read("/proc/sys/kernel/domainname").strip() == host_domain


def test_hostname_without_uts_namespace_is_an_error(bundle, runtime):
    bundle.config["linux"]["namespaces"] = [
        n for n in bundle.config["linux"]["namespaces"] if n["type"] != "uts"]
    bundle.config["hostname"] = "berth-nouts"
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "hostname" in p.stderr.lower() or "uts" in p.stderr.lower()
    assert socket.gethostname() != "berth-nouts"


# --- personality, scheduler, ioPriority --------------------------------------

@skip_for_runc("has no process/linux personality support (added in 1.2)")
def test_personality_linux32(bundle, runtime):
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    p = run_sh(runtime, bundle, "uname -m")
    assert p.stdout.strip() in ("i686", "i386")


@skip_for_runc("has no personality support (added in 1.2)")
def test_personality_linux(bundle, runtime):
    bundle.config["linux"]["personality"] = {"domain": "LINUX"}
    p = run_sh(runtime, bundle, "uname -m")
    assert p.stdout.strip() == os.uname().machine


def _sched_policy(stat_line):
    # /proc/self/stat: field 41 (1-based) is the policy; the comm field may
    # contain spaces, so split after the last ')'.
    rest = stat_line.rsplit(")", 1)[1].split()
    return int(rest[41 - 3])


@skip_for_runc("has no process.scheduler support (added in 1.2)")
def test_scheduler_batch(bundle, runtime):
    bundle.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    p = run_sh(runtime, bundle, "cat /proc/self/stat")
    assert _sched_policy(p.stdout) == 3        # SCHED_BATCH
    rest = p.stdout.rsplit(")", 1)[1].split()
    assert int(rest[19 - 3]) == 5               # nice


@skip_for_runc("has no process.scheduler support (added in 1.2)")
def test_scheduler_idle(bundle, runtime):
    bundle.process["scheduler"] = {"policy": "SCHED_IDLE"}
    p = run_sh(runtime, bundle, "cat /proc/self/stat")
    assert _sched_policy(p.stdout) == 5        # SCHED_IDLE


@skip_for_runc("has no process.scheduler support (added in 1.2)")
def test_scheduler_unknown_policy_is_an_error(bundle, runtime):
    bundle.process["scheduler"] = {"policy": "SCHED_BERTHBOGUS"}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "SCHED_BERTHBOGUS" in p.stderr or "scheduler" in p.stderr


@skip_for_runc("has no process.ioPriority support (added in 1.2)")
def test_io_priority(bundle, runtime):
    bundle.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE",
                                    "priority": 6}
    p = run_sh(runtime, bundle, "ionice -p $$")
    assert p.stdout.strip() == "best-effort: prio 6"


@skip_for_runc("has no process.ioPriority support (added in 1.2)")
def test_io_priority_idle(bundle, runtime):
    bundle.process["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE",
                                    "priority": 0}
    p = run_sh(runtime, bundle, "ionice -p $$")
    assert p.stdout.strip().startswith("idle")


# --- apparmorProfile, annotations --------------------------------------------

def _apparmor_enabled():
    try:
        return read("/sys/module/apparmor/parameters/enabled").strip() == "Y"
    except OSError:
        return False


@pytest.mark.skipif(_apparmor_enabled(), reason="this host has AppArmor")
def test_apparmor_profile_without_apparmor_is_an_error(bundle, runtime):
    bundle.process["apparmorProfile"] = "berth-profile"
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "apparmor" in p.stderr.lower()


def test_annotations_in_state(bundle, runtime):
    bundle.config["annotations"] = {"org.berth.test": "v1",
                                    "org.berth.other": ""}
    with Detached(runtime, bundle, ["sleep", "30"]) as d:
        st = runtime.state(d.cid)
        assert st["annotations"] == bundle.config["annotations"]


def test_rlimit_unlimited_as_uint64_max(bundle, runtime):
    """Go writes RLIM_INFINITY as 18446744073709551615, past what most JSON
    libraries take as an integer; it must mean unlimited."""
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_CORE", "soft": 18446744073709551615,
         "hard": 18446744073709551615}]
    p = run_sh(runtime, bundle, "ulimit -c; ulimit -Hc")
    assert p.stdout.split() == ["unlimited", "unlimited"]
