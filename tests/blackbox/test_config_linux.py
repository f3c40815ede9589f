"""config.json `linux`: namespaces (created and joined), user/gid mappings,
time offsets, sysctl, cgroup resources (v1 hierarchies of this hybrid host),
seccomp, and fields the kernel here cannot do."""
import errno
import fcntl
import json
import os
import select
import struct
import subprocess

import pytest

from config_helpers import (IS_RUNC, NS_FILES, Detached, UnixServer,
                            cgroup_path, ns_holder, ns_link, read,
                            remove_namespace, run_fails, run_sh,
                            set_namespace, skip_for_runc, status_fields)

ALL_NS = ["user", "pid", "network", "ipc", "uts", "mount", "cgroup", "time"]
MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _time_ns_supported():
    return os.path.exists("/proc/self/ns/time")


def _add_ns(bundle, kind):
    set_namespace(bundle, kind)
    if kind == "user":
        bundle.config["linux"]["uidMappings"] = MAPPING
        bundle.config["linux"]["gidMappings"] = MAPPING


def _ns_script(kinds):
    return "; ".join("readlink /proc/self/ns/%s" % NS_FILES[k] for k in kinds)


# --- namespaces --------------------------------------------------------------

@pytest.mark.parametrize("kind", ALL_NS)
def test_namespace_created(bundle, runtime, kind):
    if kind == "time":
        if not _time_ns_supported():
            pytest.skip("kernel without time namespaces")
        if IS_RUNC:
            pytest.skip("runc 1.1.5: no time namespace support")
    _add_ns(bundle, kind)
    p = run_sh(runtime, bundle, _ns_script([kind]))
    inside = p.stdout.strip()
    assert inside.startswith(NS_FILES[kind] + ":[")
    assert inside != ns_link("self", kind)


@pytest.mark.parametrize("kind", ["pid", "network", "ipc", "uts", "cgroup"])
def test_namespace_not_listed_is_the_hosts(bundle, runtime, kind):
    remove_namespace(bundle, kind)
    if kind == "uts":
        bundle.config.pop("hostname", None)
    p = run_sh(runtime, bundle, _ns_script([kind]))
    assert p.stdout.strip() == ns_link("self", kind)


def test_all_namespaces_at_once(bundle, runtime):
    if not _time_ns_supported():
        pytest.skip("kernel without time namespaces")
    if IS_RUNC:
        pytest.skip("runc 1.1.5: no time namespace support")
    for k in ALL_NS:
        _add_ns(bundle, k)
    p = run_sh(runtime, bundle, _ns_script(ALL_NS))
    inside = p.stdout.split()
    assert len(inside) == len(ALL_NS)
    for k, link in zip(ALL_NS, inside):
        assert link != ns_link("self", k), k


@pytest.mark.parametrize("kind", ["network", "ipc", "uts", "cgroup", "pid",
                                  "mount", "time"])
def test_namespace_joined_by_path(bundle, runtime, kind):
    if kind == "time":
        if not _time_ns_supported():
            pytest.skip("kernel without time namespaces")
        if IS_RUNC:
            pytest.skip("runc 1.1.5: no time namespace support")
    flag = {"network": "--net", "ipc": "--ipc", "uts": "--uts",
            "cgroup": "--cgroup", "pid": "--pid", "mount": "--mount",
            "time": "--time"}[kind]
    with ns_holder(flag) as pid:
        want = ns_link(pid, kind)
        assert want != ns_link("self", kind)
        set_namespace(bundle, kind, "/proc/%d/ns/%s" % (pid, NS_FILES[kind]))
        p = run_sh(runtime, bundle, _ns_script([kind]))
        assert p.stdout.strip() == want


def test_namespace_joined_network_sees_its_interfaces(bundle, runtime,
                                                      tmp_path):
    """Joining a netns by a bind-mounted nsfs file (as `ip netns` makes):
    the container sees the interface created in it."""
    nsfile = tmp_path / "netns"
    nsfile.touch()
    subprocess.run(["unshare", "--net=%s" % nsfile, "true"], check=True)
    try:
        subprocess.run(["nsenter", "--net=%s" % nsfile, "ip", "addr", "add",
                        "10.123.45.6/32", "dev", "lo"], check=True)
        set_namespace(bundle, "network", str(nsfile))
        p = run_sh(runtime, bundle, "ip -o addr show dev lo")
        assert "10.123.45.6/32" in p.stdout
        assert os.stat(str(nsfile)).st_ino != os.stat(
            "/proc/self/ns/net").st_ino
    finally:
        subprocess.run(["umount", str(nsfile)], check=False)


def test_namespace_path_that_is_not_a_namespace_is_an_error(bundle, runtime,
                                                            tmp_path):
    bogus = tmp_path / "not-a-netns"
    bogus.write_text("x")
    set_namespace(bundle, "network", str(bogus))
    bundle.write()
    run_fails(runtime, bundle)


@skip_for_runc("says only 'failed to setns into net namespace'")
def test_namespace_path_error_names_the_path(bundle, runtime, tmp_path):
    bogus = tmp_path / "not-a-netns"
    bogus.write_text("x")
    set_namespace(bundle, "network", str(bogus))
    bundle.write()
    p = run_fails(runtime, bundle)
    assert str(bogus) in p.stderr


def test_namespace_path_of_wrong_type_is_an_error(bundle, runtime):
    set_namespace(bundle, "network", "/proc/self/ns/ipc")
    bundle.write()
    run_fails(runtime, bundle)


# --- user namespace ----------------------------------------------------------

def test_user_namespace_mappings(bundle, runtime):
    _add_ns(bundle, "user")
    p = run_sh(runtime, bundle,
               "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g;"
               " stat -c %u /bin/busybox")
    lines = [l.split() for l in p.stdout.splitlines()]
    assert lines[0] == ["0", "100000", "65536"]
    assert lines[1] == ["0", "100000", "65536"]
    assert lines[2] == ["0"] and lines[3] == ["0"]
    # The image is owned by host root, which is unmapped in here.
    assert lines[4] == ["65534"]


def test_user_namespace_host_sees_mapped_ids(bundle, runtime):
    _add_ns(bundle, "user")
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    with Detached(runtime, bundle, ["sleep", "30"]) as d:
        st = status_fields(read("/proc/%d/status" % d.pid))
        assert st["Uid"].split()[0] == "101000"
        assert st["Gid"].split()[0] == "101000"


def test_user_namespace_several_mappings(bundle, runtime):
    _add_ns(bundle, "user")
    maps = [{"containerID": 0, "hostID": 200000, "size": 1000},
            {"containerID": 1000, "hostID": 300000, "size": 2}]
    bundle.config["linux"]["uidMappings"] = maps
    bundle.config["linux"]["gidMappings"] = maps
    p = run_sh(runtime, bundle, "cat /proc/self/uid_map")
    rows = sorted(tuple(l.split()) for l in p.stdout.splitlines())
    assert rows == [("0", "200000", "1000"), ("1000", "300000", "2")]


def test_user_namespace_joined_by_path(bundle, runtime):
    with ns_holder("--user", "--map-root-user", "--net", "--ipc", "--uts",
                   "--mount", "--cgroup", "--pid") as pid:
        want = read("/proc/%d/uid_map" % pid).split()
        for kind in ("user", "network", "ipc", "uts", "mount", "cgroup",
                     "pid"):
            set_namespace(bundle, kind,
                          "/proc/%d/ns/%s" % (pid, NS_FILES[kind]))
        # The joined namespace's own mapping (unshare --map-root-user maps
        # 0 to our uid 0); runc insists on mappings even when joining.
        same = [{"containerID": 0, "hostID": 0, "size": 1}]
        bundle.config["linux"]["uidMappings"] = same
        bundle.config["linux"]["gidMappings"] = same
        for m in bundle.config["mounts"]:       # gid 5 is unmapped here
            if m["type"] == "devpts":
                m["options"] = [o for o in m["options"] if o != "gid=5"]
        p = run_sh(runtime, bundle,
                   "readlink /proc/self/ns/user; cat /proc/self/uid_map")
        lines = p.stdout.split("\n", 1)
        assert lines[0] == ns_link(pid, "user")
        assert lines[1].split() == want


# --- time namespace offsets --------------------------------------------------

@pytest.mark.skipif(not _time_ns_supported(),
                    reason="kernel without time namespaces")
@skip_for_runc("no time namespace / linux.timeOffsets support")
def test_time_offsets(bundle, runtime):
    day = 86400
    _add_ns(bundle, "time")
    bundle.config["linux"]["timeOffsets"] = {
        "monotonic": {"secs": 1000 * day, "nanosecs": 0},
        "boottime": {"secs": 2000 * day, "nanosecs": 5},
    }
    p = run_sh(runtime, bundle,
               "cat /proc/self/timens_offsets; cat /proc/uptime")
    lines = p.stdout.splitlines()
    offs = {l.split()[0]: l.split()[1:] for l in lines[:2]}
    assert offs["monotonic"] == [str(1000 * day), "0"]
    assert offs["boottime"] == [str(2000 * day), "5"]
    up_inside = float(lines[2].split()[0])
    up_host = float(read("/proc/uptime").split()[0])
    assert abs(up_inside - (up_host + 2000 * day)) < 60


@skip_for_runc("no linux.timeOffsets support")
def test_time_offsets_without_time_namespace_is_an_error(bundle, runtime):
    remove_namespace(bundle, "time")
    bundle.config["linux"]["timeOffsets"] = {
        "boottime": {"secs": 100, "nanosecs": 0}}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "timeOffsets" in p.stderr or "time namespace" in p.stderr


# --- sysctl ------------------------------------------------------------------

def test_sysctl_net_in_new_netns(bundle, runtime):
    host = read("/proc/sys/net/ipv4/ip_forward")
    want = "0" if host.strip() == "1" else "1"
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": want}
    p = run_sh(runtime, bundle, "cat /proc/sys/net/ipv4/ip_forward")
    assert p.stdout.strip() == want
    assert read("/proc/sys/net/ipv4/ip_forward") == host


def test_sysctl_ipc_in_new_ipcns(bundle, runtime):
    host = read("/proc/sys/kernel/shmmax")
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "123456789",
                                        "kernel.msgmax": "4096"}
    p = run_sh(runtime, bundle,
               "cat /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax")
    assert p.stdout.split() == ["123456789", "4096"]
    assert read("/proc/sys/kernel/shmmax") == host


def test_sysctl_slash_form(bundle, runtime):
    bundle.config["linux"]["sysctl"] = {"net/ipv4/ip_forward": "1"}
    p = run_sh(runtime, bundle, "cat /proc/sys/net/ipv4/ip_forward",
               check=False)
    if p.returncode == 0:
        assert p.stdout.strip() == "1"
    else:
        assert "ip_forward" in p.stderr


def test_sysctl_net_in_host_netns_is_refused(bundle, runtime):
    host = read("/proc/sys/net/ipv4/ip_forward")
    remove_namespace(bundle, "network")
    bundle.config["linux"]["sysctl"] = {
        "net.ipv4.ip_forward": "0" if host.strip() == "1" else "1"}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "net.ipv4.ip_forward" in p.stderr
    assert read("/proc/sys/net/ipv4/ip_forward") == host


def test_sysctl_unknown_key_is_an_error(bundle, runtime):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.berth_bogus": "1"}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "berth_bogus" in p.stderr


# --- cgroups -----------------------------------------------------------------

def _block_device():
    """major:minor of some block device on this host (for blkio throttle)."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("loop", "ram", "zram")):
            continue
        return tuple(int(x) for x in read("/sys/block/%s/dev" % name)
                     .strip().split(":"))
    return None


CGROUP_CASES = [
    ("memory-limit", {"memory": {"limit": 64 << 20}},
     "memory", "memory.limit_in_bytes", str(64 << 20)),
    ("memory-reservation", {"memory": {"reservation": 32 << 20}},
     "memory", "memory.soft_limit_in_bytes", str(32 << 20)),
    ("memory-swap", {"memory": {"limit": 64 << 20, "swap": 128 << 20}},
     "memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
    ("memory-swappiness", {"memory": {"swappiness": 10}},
     "memory", "memory.swappiness", "10"),
    ("memory-oom-killer", {"memory": {"disableOOMKiller": True}},
     "memory", "memory.oom_control", "oom_kill_disable 1"),
    ("cpu-shares", {"cpu": {"shares": 512}}, "cpu", "cpu.shares", "512"),
    ("cpu-quota", {"cpu": {"quota": 50000, "period": 100000}},
     "cpu", "cpu.cfs_quota_us", "50000"),
    ("cpu-period", {"cpu": {"quota": 50000, "period": 200000}},
     "cpu", "cpu.cfs_period_us", "200000"),
    ("cpuset-cpus", {"cpu": {"cpus": "0", "mems": "0"}},
     "cpuset", "cpuset.cpus", "0"),
    ("cpuset-mems", {"cpu": {"cpus": "0", "mems": "0"}},
     "cpuset", "cpuset.mems", "0"),
    ("pids", {"pids": {"limit": 42}}, "pids", "pids.max", "42"),
]


@pytest.mark.parametrize("res,ctrl,fname,want",
                         [c[1:] for c in CGROUP_CASES],
                         ids=[c[0] for c in CGROUP_CASES])
def test_cgroup_resources_seen_inside(bundle, runtime, res, ctrl, fname,
                                      want):
    """With a cgroup namespace and the /sys/fs/cgroup mount, the container
    reads its own limits."""
    bundle.config["linux"]["resources"].update(res)
    p = run_sh(runtime, bundle, "cat /sys/fs/cgroup/%s/%s" % (ctrl, fname))
    if "\n" in p.stdout.strip():
        assert want in p.stdout.splitlines()
    else:
        assert p.stdout.strip() == want


def test_cgroup_resources_on_host(bundle, runtime):
    """While the container runs, its cgroup sits at cgroupsPath in every v1
    hierarchy and holds the configured values."""
    bundle.config["linux"]["resources"].update({
        "memory": {"limit": 96 << 20},
        "cpu": {"shares": 256, "quota": 20000, "period": 100000},
        "pids": {"limit": 64},
    })
    cgpath = bundle.config["linux"]["cgroupsPath"]
    with Detached(runtime, bundle, ["sleep", "30"]) as d:
        assert read(os.path.join(cgroup_path(bundle, "memory"),
                                 "memory.limit_in_bytes")).strip() == \
            str(96 << 20)
        assert read(os.path.join(cgroup_path(bundle, "cpu"),
                                 "cpu.shares")).strip() == "256"
        assert read(os.path.join(cgroup_path(bundle, "cpu"),
                                 "cpu.cfs_quota_us")).strip() == "20000"
        assert read(os.path.join(cgroup_path(bundle, "pids"),
                                 "pids.max")).strip() == "64"
        for ctrl in ("memory", "cpu", "pids", "devices", "freezer"):
            procs = read(os.path.join(cgroup_path(bundle, ctrl),
                                      "cgroup.procs")).split()
            assert str(d.pid) in procs, ctrl
        lines = read("/proc/%d/cgroup" % d.pid).splitlines()
        for l in lines:
            _, ctrls, path = l.split(":", 2)
            if ctrls in ("memory", "pids", "cpu", "devices"):
                assert path == cgpath, l


def test_cgroup_pids_limit_enforced(bundle, runtime):
    """With pids.limit 4 the shell can't start 8 background processes."""
    bundle.config["linux"]["resources"]["pids"] = {"limit": 4}
    p = run_sh(runtime, bundle,
               "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo STARTED",
               check=False)
    assert "STARTED" not in p.stdout
    assert "fork" in p.stderr


def test_cgroup_memory_limit_enforced(bundle, runtime):
    """A process that touches more than memory.limit is OOM-killed."""
    bundle.config["linux"]["resources"]["memory"] = {
        "limit": 16 << 20, "swap": 16 << 20}
    p = run_sh(runtime, bundle,
               "x=$(head -c 48000000 /dev/zero | tr '\\0' a); echo alive",
               check=False)
    assert "alive" not in p.stdout
    assert p.returncode != 0


def _blkio_weight_file():
    for f in ("blkio.weight", "blkio.bfq.weight"):
        if os.path.exists(os.path.join("/sys/fs/cgroup/blkio", f)):
            return f
    return None


def test_cgroup_blkio_weight(bundle, runtime):
    f = _blkio_weight_file()
    if f is None:
        pytest.skip("this kernel's blkio controller has no weight file "
                    "(no CFQ/BFQ): blockIO.weight cannot be checked")
    bundle.config["linux"]["resources"]["blockIO"] = {"weight": 300}
    p = run_sh(runtime, bundle, "cat /sys/fs/cgroup/blkio/" + f)
    assert p.stdout.split()[-1] == "300"


def test_cgroup_blkio_throttle(bundle, runtime):
    dev = _block_device()
    if dev is None:
        pytest.skip("no block device on this host")
    bundle.config["linux"]["resources"]["blockIO"] = {
        "throttleReadBpsDevice": [
            {"major": dev[0], "minor": dev[1], "rate": 1048576}],
        "throttleWriteIOPSDevice": [
            {"major": dev[0], "minor": dev[1], "rate": 77}],
    }
    p = run_sh(runtime, bundle,
               "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device;"
               " cat /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device")
    assert "%d:%d 1048576" % dev in p.stdout.splitlines()
    assert "%d:%d 77" % dev in p.stdout.splitlines()


def _unified_has(fname):
    return os.path.exists(os.path.join("/sys/fs/cgroup/unified", fname))


@skip_for_runc("refuses every linux.resources.unified key on cgroup v1 "
               "('cannot use unified on cgroup v1'), without naming it")
def test_cgroup_unified_key_missing_on_hybrid_is_an_error(bundle, runtime):
    """The cgroup2 tree of this hybrid host has no memory controller: a
    unified memory.max can't be applied and the error names the key."""
    assert not _unified_has("memory.max")
    bundle.config["linux"]["resources"]["unified"] = {"memory.max": "1000000"}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "memory.max" in p.stderr


@skip_for_runc("refuses every linux.resources.unified key on cgroup v1")
def test_cgroup_unified_key_present_on_hybrid(bundle, runtime):
    """A key whose file exists in the (controller-less) cgroup2 tree is
    written to the container's cgroup there."""
    if not _unified_has("cgroup.max.depth"):
        pytest.skip("no cgroup2 tree at /sys/fs/cgroup/unified")
    bundle.config["linux"]["resources"]["unified"] = {"cgroup.max.depth": "3"}
    with Detached(runtime, bundle, ["sleep", "30"]):
        assert read(os.path.join(cgroup_path(bundle, "unified"),
                                 "cgroup.max.depth")).strip() == "3"


def test_cgroup_unified_refused_on_v1(bundle, runtime):
    """Any runtime: an unappliable unified key makes create fail."""
    bundle.config["linux"]["resources"]["unified"] = {"memory.max": "1000000"}
    bundle.write()
    run_fails(runtime, bundle)


def _devnode(bundle, path, major, minor):
    bundle.config["linux"].setdefault("devices", []).append(
        {"path": path, "type": "c", "major": major, "minor": minor,
         "fileMode": 0o666, "uid": 0, "gid": 0})


# c 1:200 has no driver: opening it gives ENXIO when the devices cgroup lets
# it through and EPERM when the cgroup denies it.


def test_devices_cgroup_denies(bundle, runtime, tmp_path):
    _devnode(bundle, "/dev/berthdev", 1, 200)
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"}]
    p = run_sh(runtime, bundle,
               "cat /sys/fs/cgroup/devices/devices.list; "
               "true >/dev/berthdev && echo OPENED", check=False)
    assert "OPENED" not in p.stdout
    assert "Operation not permitted" in p.stderr
    assert "c 1:200" not in p.stdout


def test_devices_cgroup_allows(bundle, runtime):
    _devnode(bundle, "/dev/berthdev", 1, 200)
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 200,
         "access": "rw"}]
    p = run_sh(runtime, bundle, "true >/dev/berthdev && echo OPENED",
               check=False)
    assert "Operation not permitted" not in p.stderr
    assert "No such device" in p.stderr


def test_devices_cgroup_later_deny_wins(bundle, runtime):
    _devnode(bundle, "/dev/berthdev", 1, 200)
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 200,
         "access": "rw"},
        {"allow": False, "type": "c", "major": 1, "minor": 200,
         "access": "w"}]
    p = run_sh(runtime, bundle,
               "true >/dev/berthdev; true </dev/berthdev", check=False)
    lines = p.stderr.splitlines()
    assert "Operation not permitted" in lines[0]
    assert "No such device" in lines[1]


def test_devices_cgroup_default_devices_usable(bundle, runtime):
    p = run_sh(runtime, bundle,
               "echo x >/dev/null && head -c 4 /dev/zero | wc -c &&"
               " head -c 4 /dev/urandom | wc -c && head -c 4 /dev/random |"
               " wc -c && (echo x >/dev/full) 2>&1 | grep -c 'No space'")
    assert p.stdout.split() == ["4", "4", "4", "1"]


# --- seccomp -----------------------------------------------------------------

ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def _seccomp(bundle, syscalls, default="SCMP_ACT_ALLOW", **extra):
    prof = {"defaultAction": default, "architectures": ARCHES,
            "syscalls": syscalls}
    prof.update(extra)
    bundle.config["linux"]["seccomp"] = prof


def test_seccomp_errno(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}])
    p = run_sh(runtime, bundle,
               "grep -E '^Seccomp:' /proc/self/status;"
               " mkdir /dev/shm/x 2>&1; touch /dev/shm/y && echo TOUCHED",
               check=False)
    assert "Seccomp:\t2" in p.stdout
    assert "Permission denied" in p.stdout
    assert "TOUCHED" in p.stdout


@skip_for_runc("has no compiled-filter cache")
def test_seccomp_cached_filter_still_applies(bundle, runtime):
    """The second container with the same profile gets its filter from the
    cache under the state root: same behaviour, and a different profile is
    not served the first one's program."""
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES}])
    for _ in range(2):
        p = run_sh(runtime, bundle, "mkdir /dev/shm/x 2>&1", check=False)
        assert "Permission denied" in p.stdout
    cache = os.path.join(runtime.root, ".seccomp-cache")
    assert os.listdir(cache)
    assert oct(os.stat(cache).st_mode & 0o777) == "0o700"
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV}])
    p = run_sh(runtime, bundle, "mkdir /dev/shm/x 2>&1", check=False)
    assert "Invalid cross-device link" in p.stdout, p.stdout


def test_seccomp_errno_default_is_eperm(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_ERRNO"}])
    p = run_sh(runtime, bundle, "mkdir /dev/shm/x 2>&1", check=False)
    assert "Operation not permitted" in p.stdout


def test_seccomp_arg_condition(bundle, runtime):
    """kill(pid, SIGCONT) is refused, kill(pid, 0) still works."""
    _seccomp(bundle, [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                       "errnoRet": errno.EXDEV,
                       "args": [{"index": 1, "value": 18,
                                 "op": "SCMP_CMP_EQ"}]}])
    p = run_sh(runtime, bundle,
               "kill -0 $$ && echo ZERO-OK; kill -CONT $$ 2>&1 || echo CONT-FAIL",
               check=False)
    assert "ZERO-OK" in p.stdout
    assert "CONT-FAIL" in p.stdout


def test_seccomp_kill_process(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_KILL_PROCESS"}])
    p = run_sh(runtime, bundle,
               "echo before; mkdir /dev/shm/x; echo rc=$?; ls -d /dev/shm/x",
               check=False)
    assert "before" in p.stdout
    # busybox may run mkdir in the shell process itself (then the container
    # process dies of SIGSYS: 128 + 31) or in a child.
    if "rc=" in p.stdout:
        assert "rc=159" in p.stdout
        assert "/dev/shm/x" not in p.stdout
    else:
        assert p.returncode == 159


def test_seccomp_default_errno_with_allow_list(bundle, runtime):
    """defaultAction ERRNO; everything the shell needs is allowed except
    mkdir, so mkdir gets the default errno."""
    allowed = sorted(set("""
        read write open openat close stat fstat lstat newfstatat statx poll
        lseek mmap mprotect munmap brk rt_sigaction rt_sigprocmask
        rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe pipe2
        select sched_yield mremap madvise dup dup2 dup3 pause nanosleep
        clock_nanosleep getitimer alarm setitimer getpid getppid getuid
        geteuid getgid getegid gettid sendfile socket connect clone clone3
        fork vfork execve execveat exit exit_group wait4 waitid kill uname
        fcntl flock fsync getcwd chdir fchdir rename readlink readlinkat
        getdents getdents64 umask gettimeofday getrlimit prlimit64 getrusage
        sysinfo times arch_prctl set_tid_address set_robust_list futex
        rseq getrandom time clock_gettime faccessat faccessat2 getpgrp
        setpgid getpgid getsid setsid sigaltstack prctl tgkill tkill
        capget capset setgroups setuid setgid setresuid setresgid getresuid
        getresgid getgroups close_range fchown fchownat chown fchmod
        fchmodat chmod unlink unlinkat epoll_create1 epoll_ctl epoll_wait
        epoll_pwait ppoll pselect6 sched_getaffinity fstatfs statfs
        openat2 mincore membarrier getpriority setpriority sched_getparam
    """.split()))
    _seccomp(bundle, [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
             default="SCMP_ACT_ERRNO", defaultErrnoRet=errno.ENOTTY)
    p = run_sh(runtime, bundle, "echo hi; mkdir /dev/shm/x 2>&1",
               check=False)
    assert "hi" in p.stdout
    assert "Not a tty" in p.stdout or "Inappropriate ioctl" in p.stdout


@skip_for_runc("'seccomp flags are not yet supported by runc'")
def test_seccomp_flags_log(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_ERRNO"}],
             flags=["SECCOMP_FILTER_FLAG_LOG"])
    p = run_sh(runtime, bundle,
               "grep -E '^Seccomp(_filters)?:' /proc/self/status;"
               " mkdir /dev/shm/x 2>&1", check=False)
    st = status_fields(p.stdout)
    assert st.get("Seccomp") == "2"
    assert "Operation not permitted" in p.stdout


def test_seccomp_architecture_only_native(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                       "action": "SCMP_ACT_ERRNO"}])
    bundle.config["linux"]["seccomp"]["architectures"] = ["SCMP_ARCH_X86_64"]
    p = run_sh(runtime, bundle, "mkdir /dev/shm/x 2>&1", check=False)
    assert "Operation not permitted" in p.stdout


def test_seccomp_unknown_action_is_an_error(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir"], "action": "SCMP_ACT_BERTHBOGUS"}])
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "SCMP_ACT_BERTHBOGUS" in p.stderr


def test_seccomp_unknown_architecture_is_an_error(bundle, runtime):
    _seccomp(bundle, [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    bundle.config["linux"]["seccomp"]["architectures"] = [
        "SCMP_ARCH_BERTHBOGUS"]
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "SCMP_ARCH_BERTHBOGUS" in p.stderr


def test_seccomp_unknown_operator_is_an_error(bundle, runtime):
    _seccomp(bundle, [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                       "args": [{"index": 1, "value": 1,
                                 "op": "SCMP_CMP_BERTHBOGUS"}]}])
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "SCMP_CMP_BERTHBOGUS" in p.stderr


# struct seccomp_notif is 80 bytes, struct seccomp_notif_resp 24 bytes.
SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101
NR_MKDIR, NR_MKDIRAT = 83, 258          # x86_64


def _answer_notifications(data, fds):
    """Listener side: answer the first mkdir with EPROTO."""
    fd = fds[0]
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if not poller.poll(20000):
        return "no notification"
    buf = bytearray(80)
    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
    nid, pid, _flags, nr = struct.unpack_from("=QIIi", buf, 0)
    resp = struct.pack("=QqiI", nid, 0, -errno.EPROTO, 0)
    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(resp))
    return nr


@pytest.mark.skipif(os.uname().machine != "x86_64",
                    reason="syscall numbers below are x86_64's")
def test_seccomp_notify_listener(bundle, runtime, tmp_path):
    sock = str(tmp_path / "seccomp.sock")
    srv = UnixServer(sock, handler=_answer_notifications, json_message=True)
    try:
        _seccomp(bundle, [{"names": ["mkdir", "mkdirat"],
                           "action": "SCMP_ACT_NOTIFY"}],
                 listenerPath=sock, listenerMetadata="berth-meta")
        p = run_sh(runtime, bundle, "mkdir /dev/shm/x 2>&1; echo done",
                   timeout=40, check=False)
        assert srv.join(), "listener never finished"
        assert srv.error is None, srv.error
        assert srv.result in (NR_MKDIR, NR_MKDIRAT), srv.result
        msg = json.loads(srv.data.decode())
        assert msg["fds"] == ["seccompFd"]
        assert msg["metadata"] == "berth-meta"
        assert msg["pid"] > 0
        assert msg["state"]["id"] == runtime.ids[-1]
        assert msg["state"]["bundle"] == bundle.path
        assert "ociVersion" in msg
        assert len(srv.fds) == 1
        assert "Protocol error" in p.stdout
        assert "done" in p.stdout
    finally:
        srv.close()


def test_seccomp_notify_without_listener_is_an_error(bundle, runtime,
                                                     tmp_path):
    _seccomp(bundle, [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
             listenerPath=str(tmp_path / "nobody-listens.sock"))
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "nobody-listens.sock" in p.stderr


# --- what this kernel/host can't do ------------------------------------------

UNSUPPORTED = [
    ("intelRdt", lambda c: c["linux"].__setitem__(
        "intelRdt", {"closID": "berth", "l3CacheSchema": "L3:0=f"}),
     ["intelRdt"]),
    ("hugepageLimits", lambda c: c["linux"]["resources"].__setitem__(
        "hugepageLimits", [{"pageSize": "2MB", "limit": 2 << 20}]),
     ["hugepageLimits", "hugetlb"]),
    ("network", lambda c: c["linux"]["resources"].__setitem__(
        "network", {"classID": 1048577}),
     ["network", "classID", "net_cls"]),
    ("rdma", lambda c: c["linux"]["resources"].__setitem__(
        "rdma", {"mlx5_0": {"hcaHandles": 3}}),
     ["rdma"]),
]


@pytest.mark.parametrize("setter,words", [u[1:] for u in UNSUPPORTED],
                         ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_field_is_a_clear_error(bundle, runtime, setter, words,
                                            request):
    name = request.node.callspec.id
    if name == "intelRdt" and os.path.isdir("/sys/fs/resctrl/info"):
        pytest.skip("this host has resctrl")
    if name == "hugepageLimits" and os.path.isdir("/sys/fs/cgroup/hugetlb"):
        pytest.skip("this host has hugetlb mounted")
    if name == "rdma" and os.path.isdir("/sys/fs/cgroup/rdma"):
        pytest.skip("this host has the rdma controller mounted")
    if name == "network" and (os.path.isdir("/sys/fs/cgroup/net_cls") or
                              os.path.isdir("/sys/fs/cgroup/net_cls,net_prio")):
        pytest.skip("this host has net_cls mounted")
    if IS_RUNC and name in ("hugepageLimits", "network"):
        pytest.skip("runc 1.1.5 silently ignores %s when the controller is "
                    "not mounted" % name)
    setter(bundle.config)
    bundle.write()
    p = run_fails(runtime, bundle)
    assert any(w in p.stderr for w in words), p.stderr
