"""config.json `mounts`, `root`, linux.rootfsPropagation, maskedPaths,
readonlyPaths, linux.devices and the default /dev; --no-pivot."""
import os
import stat
import subprocess

import pytest

from config_helpers import (Detached, mount_at, parse_mountinfo,
                            read, run_fails, run_sh, skip_for_runc,
                            wait_for, writable_rootfs)

MOUNTINFO = "cat /proc/self/mountinfo"


def _add_mount(bundle, dest, typ, source, options=None):
    m = {"destination": dest, "type": typ, "source": source}
    if options is not None:
        m["options"] = options
    bundle.config["mounts"].append(m)
    return m


def _src_dir(tmp_path, name="src", files=None):
    d = tmp_path / name
    d.mkdir()
    for k, v in (files or {"hello": "hello from the host\n"}).items():
        (d / k).write_text(v)
    return d


class HostMounts:
    """Mounts the test makes on the host (under tmp_path), undone in reverse
    order however the test ends."""

    def __init__(self):
        self.points = []

    def mount(self, *args):
        subprocess.run(["mount"] + list(args), check=True)
        self.points.append(args[-1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.points):
            subprocess.run(["umount", "-l", p], check=False)


# --- bind mounts -------------------------------------------------------------

@pytest.mark.parametrize("typ,opts", [
    ("bind", ["bind"]),
    ("bind", ["rbind"]),
    ("none", ["rbind"]),
    (None, ["bind"]),
])
def test_bind_mount_dir(bundle, runtime, tmp_path, typ, opts):
    src = _src_dir(tmp_path)
    m = {"destination": "/tmp", "source": str(src), "options": opts}
    if typ:
        m["type"] = typ
    bundle.config["mounts"].append(m)
    p = run_sh(runtime, bundle, "cat /tmp/hello; echo new > /tmp/fromct")
    assert p.stdout == "hello from the host\n"
    assert (src / "fromct").read_text() == "new\n"


def test_bind_mount_ro(bundle, runtime, tmp_path):
    src = _src_dir(tmp_path)
    _add_mount(bundle, "/tmp", "bind", str(src), ["rbind", "ro"])
    p = run_sh(runtime, bundle,
               "cat /tmp/hello; touch /tmp/x 2>&1; " + MOUNTINFO)
    assert "hello from the host" in p.stdout
    assert "Read-only file system" in p.stdout
    m = mount_at(p.stdout, "/tmp")
    assert m and "ro" in m["options"]
    assert not (src / "x").exists()
    # The host's view of the source stays writable.
    (src / "y").write_text("y")


def test_bind_mount_file(bundle, runtime, tmp_path):
    writable_rootfs(bundle, tmp_path)
    f = tmp_path / "hostfile"
    f.write_text("single file\n")
    _add_mount(bundle, "/etc/berth/file.conf", "bind", str(f), ["bind"])
    p = run_sh(runtime, bundle,
               "cat /etc/berth/file.conf; stat -c %F /etc/berth/file.conf")
    assert p.stdout.splitlines() == ["single file", "regular file"]


def _with_submount(tmp_path, hm):
    src = _src_dir(tmp_path)
    (src / "sub").mkdir()
    hm.mount("-t", "tmpfs", "-o", "size=1m", "berthsub", str(src / "sub"))
    (src / "sub" / "inner").write_text("inner\n")
    return src


def test_bind_is_not_recursive(bundle, runtime, tmp_path):
    with HostMounts() as hm:
        src = _with_submount(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["bind"])
        p = run_sh(runtime, bundle, "ls /tmp/sub; echo END")
        assert p.stdout.split() == ["END"]


def test_rbind_is_recursive(bundle, runtime, tmp_path):
    with HostMounts() as hm:
        src = _with_submount(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["rbind"])
        p = run_sh(runtime, bundle, "cat /tmp/sub/inner")
        assert p.stdout == "inner\n"


def test_rro_makes_submounts_readonly(bundle, runtime, tmp_path):
    with HostMounts() as hm:
        src = _with_submount(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["rbind", "rro"])
        p = run_sh(runtime, bundle,
                   "touch /tmp/a 2>&1; touch /tmp/sub/b 2>&1; " + MOUNTINFO)
        assert p.stdout.count("Read-only file system") == 2
        for mp in ("/tmp", "/tmp/sub"):
            m = mount_at(p.stdout, mp)
            assert m and "ro" in m["options"], mp


def test_ro_alone_leaves_submounts_writable(bundle, runtime, tmp_path):
    with HostMounts() as hm:
        src = _with_submount(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["rbind", "ro"])
        p = run_sh(runtime, bundle,
                   "touch /tmp/a 2>&1; touch /tmp/sub/b && echo SUBRW")
        assert "Read-only file system" in p.stdout
        assert "SUBRW" in p.stdout


@pytest.mark.parametrize("ropt,flag", [("rnosuid", "nosuid"),
                                       ("rnodev", "nodev"),
                                       ("rnoexec", "noexec")])
def test_recursive_flag_options(bundle, runtime, tmp_path, ropt, flag):
    with HostMounts() as hm:
        src = _with_submount(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["rbind", ropt])
        p = run_sh(runtime, bundle, MOUNTINFO)
        for mp in ("/tmp", "/tmp/sub"):
            m = mount_at(p.stdout, mp)
            assert m and flag in m["options"], (mp, m)


@skip_for_runc("has no idmapped mounts (mounts[].uidMappings)")
def test_bind_mount_idmapped(bundle, runtime, tmp_path):
    """A bind mount with uid/gid mappings shows host-root-owned files as
    owned by the mapped ids."""
    src = _src_dir(tmp_path)
    os.chown(str(src / "hello"), 0, 0)
    bundle.config["mounts"].append({
        "destination": "/tmp", "type": "bind", "source": str(src),
        "options": ["bind", "idmap"],
        # Same format as linux.uidMappings (written to the mount's user
        # namespace as "containerID hostID size"): source uid 0 shows as
        # 1000.
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1001, "size": 1}]})
    p = run_sh(runtime, bundle, "stat -c '%u %g' /tmp/hello; " + MOUNTINFO)
    assert p.stdout.splitlines()[0] == "1000 1001"
    assert "idmapped" in mount_at(p.stdout, "/tmp")["options"]
    assert os.stat(str(src / "hello")).st_uid == 0


def test_bind_missing_source_is_an_error(bundle, runtime, tmp_path):
    missing = str(tmp_path / "berth-no-such-source")
    _add_mount(bundle, "/tmp", "bind", missing, ["bind"])
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "berth-no-such-source" in p.stderr


def test_mounts_applied_in_order(bundle, runtime, tmp_path):
    """A later mount lands inside an earlier one (mount points created on
    the way, inside the container's tmpfs)."""
    src = _src_dir(tmp_path)
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["size=1m"])
    _add_mount(bundle, "/tmp/a/b", "bind", str(src), ["bind"])
    p = run_sh(runtime, bundle, "cat /tmp/a/b/hello; " + MOUNTINFO)
    assert "hello from the host" in p.stdout
    mi = parse_mountinfo(p.stdout)
    idx = {m["mountpoint"]: i for i, m in enumerate(mi)}
    assert idx["/tmp"] < idx["/tmp/a/b"]


# --- filesystems -------------------------------------------------------------

def test_tmpfs_size(bundle, runtime):
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["size=1m"])
    p = run_sh(runtime, bundle, "df -k /tmp | tail -n1; " + MOUNTINFO)
    assert p.stdout.splitlines()[0].split()[1] == "1024"
    m = mount_at(p.stdout, "/tmp")
    assert m["fstype"] == "tmpfs"
    assert "size=1024k" in m["super"]


@skip_for_runc("chmods a tmpfs mount point back to the mode of the "
               "directory it covers, overriding mode=")
def test_tmpfs_mode(bundle, runtime):
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["size=1m", "mode=1733"])
    p = run_sh(runtime, bundle, "stat -c %a /tmp; " + MOUNTINFO)
    assert p.stdout.splitlines()[0] == "1733"
    assert "mode=1733" in mount_at(p.stdout, "/tmp")["super"]


def test_tmpfs_size_is_enforced(bundle, runtime):
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["size=256k"])
    p = run_sh(runtime, bundle,
               "head -c 1048576 /dev/zero > /tmp/big; echo rc=$?;"
               " wc -c < /tmp/big", check=False)
    assert p.stderr
    assert "rc=0" not in p.stdout
    assert int(p.stdout.split()[-1]) <= 256 * 1024


@pytest.mark.parametrize("opts,want,unwanted", [
    (["ro"], ["ro"], []),
    (["nosuid"], ["nosuid"], []),
    (["nodev"], ["nodev"], []),
    (["noexec"], ["noexec"], []),
    (["ro", "nosuid", "nodev", "noexec"],
     ["ro", "nosuid", "nodev", "noexec"], []),
    (["noatime"], ["noatime"], ["relatime"]),
    (["strictatime"], [], ["relatime", "noatime"]),
    (["relatime"], ["relatime"], ["noatime"]),
    (["nodiratime"], ["nodiratime"], []),
    (["rw", "suid", "dev", "exec"], ["rw"], ["nosuid", "nodev", "noexec"]),
])
def test_mount_flag_options(bundle, runtime, opts, want, unwanted):
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", opts)
    p = run_sh(runtime, bundle, MOUNTINFO)
    m = mount_at(p.stdout, "/tmp")
    for w in want:
        assert w in m["options"], (w, m["options"])
    for u in unwanted:
        assert u not in m["options"], (u, m["options"])


def test_noexec_is_enforced(bundle, runtime):
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["noexec"])
    p = run_sh(runtime, bundle,
               "cp /bin/busybox /tmp/true && /tmp/true 2>&1; echo rc=$?")
    assert "Permission denied" in p.stdout
    assert "rc=126" in p.stdout


def test_exec_is_allowed_without_noexec(bundle, runtime):
    _add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["exec"])
    p = run_sh(runtime, bundle,
               "cp /bin/busybox /tmp/echo && /tmp/echo RAN")
    assert p.stdout.strip() == "RAN"


def test_proc_mount(bundle, runtime):
    p = run_sh(runtime, bundle, "echo $$; ls -d /proc/[0-9]* | wc -l; "
               + MOUNTINFO)
    lines = p.stdout.splitlines()
    assert lines[0] == "1"                   # own pid namespace
    assert int(lines[1]) < 10                # ... and a proc that shows it
    m = mount_at(p.stdout, "/proc")
    assert m["fstype"] == "proc"


def test_sysfs_mount_readonly(bundle, runtime):
    p = run_sh(runtime, bundle,
               "test -d /sys/kernel && echo HAVE; " + MOUNTINFO)
    assert "HAVE" in p.stdout
    m = mount_at(p.stdout, "/sys")
    assert m["fstype"] == "sysfs"
    assert "ro" in m["options"]
    assert {"nosuid", "nodev", "noexec"} <= set(m["options"])


def test_devpts_mount(bundle, runtime):
    p = run_sh(runtime, bundle, "readlink /dev/ptmx; " + MOUNTINFO)
    assert p.stdout.splitlines()[0] == "pts/ptmx"
    m = mount_at(p.stdout, "/dev/pts")
    assert m["fstype"] == "devpts"
    assert {"mode=620", "ptmxmode=666", "gid=5"} <= set(m["super"])
    assert {"nosuid", "noexec"} <= set(m["options"])


def test_devpts_is_a_new_instance(bundle, runtime):
    """newinstance: the container's /dev/pts is not the host's."""
    p = run_sh(runtime, bundle, "stat -c %d /dev/pts")
    assert int(p.stdout) != os.stat("/dev/pts").st_dev


def test_mqueue_mount(bundle, runtime):
    p = run_sh(runtime, bundle, MOUNTINFO)
    m = mount_at(p.stdout, "/dev/mqueue")
    assert m["fstype"] == "mqueue"
    assert {"nosuid", "nodev", "noexec"} <= set(m["options"])


def test_shm_mount(bundle, runtime):
    p = run_sh(runtime, bundle, "stat -c %a /dev/shm; " + MOUNTINFO)
    assert p.stdout.splitlines()[0] == "1777"
    m = mount_at(p.stdout, "/dev/shm")
    assert m["fstype"] == "tmpfs"
    assert "size=65536k" in m["super"]


def test_cgroup_mount_readonly(bundle, runtime):
    p = run_sh(runtime, bundle,
               "ls /sys/fs/cgroup; echo 5 > /sys/fs/cgroup/pids/pids.max"
               " 2>/dev/null && echo WROTE; cat /sys/fs/cgroup/pids/pids.max;"
               " " + MOUNTINFO)
    names = p.stdout.split()
    for ctrl in ("cpu", "cpuacct", "memory", "pids", "devices"):
        assert ctrl in names
    assert "WROTE" not in p.stdout
    cg = [m for m in parse_mountinfo(p.stdout)
          if m["mountpoint"].startswith("/sys/fs/cgroup/")]
    assert cg
    for m in cg:
        assert "ro" in m["options"], m


def test_cgroup_mount_shows_own_cgroup(bundle, runtime):
    """With a cgroup namespace the container's cgroup is the root of what it
    sees: cgroup.procs there holds the container's pid 1."""
    p = run_sh(runtime, bundle, "cat /sys/fs/cgroup/memory/cgroup.procs;"
               " cat /proc/self/cgroup")
    assert "1" in p.stdout.split()
    for line in p.stdout.splitlines():
        if line.count(":") >= 2 and ":memory:" in line:
            assert line.endswith(":/")


def test_overlay_mount(bundle, runtime, tmp_path):
    lower = _src_dir(tmp_path, "lower", {"a": "lower a\n", "gone": "x"})
    upper = tmp_path / "upper"
    work = tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    _add_mount(bundle, "/tmp", "overlay", "overlay", [
        "lowerdir=%s" % lower, "upperdir=%s" % upper, "workdir=%s" % work])
    p = run_sh(runtime, bundle,
               "cat /tmp/a; echo new > /tmp/b; rm /tmp/gone; ls /tmp; "
               + MOUNTINFO)
    assert p.stdout.splitlines()[0] == "lower a"
    assert p.stdout.splitlines()[1:3] == ["a", "b"]
    assert mount_at(p.stdout, "/tmp")["fstype"] == "overlay"
    assert (upper / "b").read_text() == "new\n"
    assert stat.S_ISCHR(os.lstat(str(upper / "gone")).st_mode)  # whiteout
    assert (lower / "gone").exists()
    assert not (lower / "b").exists()


def test_unknown_filesystem_type_is_an_error(bundle, runtime):
    _add_mount(bundle, "/tmp", "berthfs", "none", [])
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "berthfs" in p.stderr or "/tmp" in p.stderr


# --- propagation -------------------------------------------------------------

def _shared_src(tmp_path, hm):
    src = _src_dir(tmp_path)
    (src / "sub").mkdir()
    hm.mount("--bind", str(src), str(src))
    hm.mount("--make-shared", str(src))
    return src


@pytest.mark.parametrize("prop,tag", [("rshared", "shared:"),
                                      ("shared", "shared:"),
                                      ("rslave", "master:"),
                                      ("slave", "master:"),
                                      ("rprivate", None),
                                      ("private", None)])
def test_bind_propagation_flags(bundle, runtime, tmp_path, prop, tag):
    with HostMounts() as hm:
        src = _shared_src(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["rbind", prop])
        p = run_sh(runtime, bundle, MOUNTINFO)
        m = mount_at(p.stdout, "/tmp")
        tags = " ".join(m["optional"])
        if tag:
            assert tag in tags, m
        else:
            assert "shared:" not in tags and "master:" not in tags, m


def _propagation_seen(bundle, runtime, tmp_path, prop):
    """Starts a container with the host's shared src at /tmp (PROP), mounts
    a tmpfs at src/sub on the host, and reports whether the container saw
    it."""
    with HostMounts() as hm:
        src = _shared_src(tmp_path, hm)
        _add_mount(bundle, "/tmp", "bind", str(src), ["rbind", prop])
        d = Detached(runtime, bundle, [
            "sh", "-c",
            "echo READY; for i in $(seq 100); do"
            " test -e /tmp/sub/marker && { echo FOUND; exit 0; };"
            " sleep 0.05; done; echo NOTFOUND"])
        with d:
            wait_for(lambda: "READY" in d.output(), what="container start")
            hm.mount("-t", "tmpfs", "-o", "size=1m", "berthprop",
                     str(src / "sub"))
            (src / "sub" / "marker").write_text("m")
            wait_for(lambda: "FOUND" in d.output(), timeout=15,
                     what="container verdict")
            return d.output()


def test_rslave_sees_host_mounts(bundle, runtime, tmp_path):
    out = _propagation_seen(bundle, runtime, tmp_path, "rslave")
    assert "NOTFOUND" not in out and "FOUND" in out


def test_rprivate_does_not_see_host_mounts(bundle, runtime, tmp_path):
    out = _propagation_seen(bundle, runtime, tmp_path, "rprivate")
    assert "NOTFOUND" in out


def test_rootfs_propagation_private(bundle, runtime):
    bundle.config["linux"]["rootfsPropagation"] = "private"
    p = run_sh(runtime, bundle, MOUNTINFO)
    m = mount_at(p.stdout, "/")
    tags = " ".join(m["optional"])
    assert "shared:" not in tags and "master:" not in tags


@skip_for_runc("leaves the container's / private whatever "
               "rootfsPropagation says")
def test_rootfs_propagation_shared(bundle, runtime):
    bundle.config["linux"]["rootfsPropagation"] = "shared"
    p = run_sh(runtime, bundle, MOUNTINFO)
    assert "shared:" in " ".join(mount_at(p.stdout, "/")["optional"])


@skip_for_runc("fails with EINVAL on rootfsPropagation unbindable")
def test_rootfs_propagation_unbindable(bundle, runtime):
    bundle.config["linux"]["rootfsPropagation"] = "unbindable"
    p = run_sh(runtime, bundle, MOUNTINFO)
    assert "unbindable" in mount_at(p.stdout, "/")["optional"]


def test_rootfs_propagation_invalid_is_an_error(bundle, runtime):
    bundle.config["linux"]["rootfsPropagation"] = "berthbogus"
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "berthbogus" in p.stderr or "rootfsPropagation" in p.stderr


# --- root --------------------------------------------------------------------

def test_root_readonly(bundle, runtime):
    assert bundle.config["root"]["readonly"] is True
    p = run_sh(runtime, bundle, "touch /berth-x 2>&1; " + MOUNTINFO)
    assert "Read-only file system" in p.stdout
    assert "ro" in mount_at(p.stdout, "/")["options"]


def test_root_writable(bundle, runtime, tmp_path):
    rootfs = writable_rootfs(bundle, tmp_path, readonly=False)
    p = run_sh(runtime, bundle, "echo data > /berth-x; " + MOUNTINFO)
    assert "rw" in mount_at(p.stdout, "/")["options"]
    assert read(os.path.join(rootfs, "berth-x")) == "data\n"


def test_root_relative_path(bundle, runtime, tmp_path):
    """root.path relative to the bundle directory."""
    rootfs = writable_rootfs(bundle, tmp_path)
    os.rename(rootfs, os.path.join(bundle.path, "myroot"))
    bundle.config["root"] = {"path": "myroot", "readonly": True}
    p = run_sh(runtime, bundle, "head -n1 /etc/passwd")
    assert p.stdout.startswith("root:")


def test_root_missing_is_an_error(bundle, runtime, tmp_path):
    bundle.config["root"] = {"path": str(tmp_path / "berth-no-rootfs")}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert "berth-no-rootfs" in p.stderr


def test_no_pivot(bundle, runtime):
    p = run_sh(runtime, bundle,
               "head -n1 /etc/passwd; ls /; echo $$", "--no-pivot")
    lines = p.stdout.split()
    assert lines[0].startswith("root:")
    assert "bin" in lines and "etc" in lines
    assert lines[-1] == "1"


def test_no_pivot_host_root_unreachable(bundle, runtime):
    """With --no-pivot the host's / must still be out of reach: / is the
    rootfs, and .. from / stays there."""
    p = run_sh(runtime, bundle,
               "ls /../../..; test -e /work && echo HOSTWORK;"
               " cat /proc/self/mountinfo | grep -c ' /work' || true",
               "--no-pivot")
    assert "HOSTWORK" not in p.stdout
    assert "busybox" not in p.stdout   # /bin/busybox is not at the top


# --- maskedPaths / readonlyPaths ---------------------------------------------

def test_masked_paths_default(bundle, runtime):
    """Every maskedPaths entry that exists: files become /dev/null (1:3),
    directories an empty read-only tmpfs."""
    files = [p for p in bundle.config["linux"]["maskedPaths"]
             if os.path.isfile(p)]
    dirs = [p for p in bundle.config["linux"]["maskedPaths"]
            if os.path.isdir(p)]
    assert files and dirs, "host has none of the masked paths"
    script = ["stat -c '%%n %%F %%t:%%T %%s' %s" % " ".join(files)]
    for d in dirs:
        script.append("echo %s $(ls -A %s | wc -l)" % (d, d))
        script.append("touch %s/x 2>&1 | grep -q Read-only && echo %s RO"
                      % (d, d))
    p = run_sh(runtime, bundle, "; ".join(script))
    out = p.stdout.splitlines()
    for f in files:
        assert "%s character special file 1:3 0" % f in out
    for d in dirs:
        assert "%s 0" % d in out
        assert "%s RO" % d in out


def test_masked_paths_custom(bundle, runtime):
    bundle.config["linux"]["maskedPaths"] = [
        "/etc/group", "/usr/sbin", "/berth/does/not/exist"]
    p = run_sh(runtime, bundle,
               "wc -c < /etc/group; ls -A /usr/sbin | wc -l;"
               " head -n1 /etc/passwd")
    assert p.stdout.split()[:2] == ["0", "0"]
    assert "root:" in p.stdout


def test_readonly_paths_default(bundle, runtime):
    p = run_sh(runtime, bundle,
               "echo 1 > /proc/sys/net/ipv4/ip_forward 2>&1; " + MOUNTINFO)
    for mp in bundle.config["linux"]["readonlyPaths"]:
        if not os.path.exists(mp):
            continue
        m = mount_at(p.stdout, mp)
        assert m and "ro" in m["options"], mp
    assert "Read-only file system" in p.stderr


def test_readonly_paths_custom(bundle, runtime):
    bundle.config["linux"]["readonlyPaths"] = ["/dev/shm",
                                               "/berth/does/not/exist"]
    p = run_sh(runtime, bundle, "touch /dev/shm/x 2>&1; " + MOUNTINFO)
    assert "Read-only file system" in p.stdout
    assert "ro" in mount_at(p.stdout, "/dev/shm")["options"]


# --- devices -----------------------------------------------------------------

def test_linux_devices_char(bundle, runtime):
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1000, "gid": 1001}]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    p = run_sh(runtime, bundle,
               "stat -c '%F|%t:%T|%a|%u|%g' /dev/mynull;"
               " echo x > /dev/mynull && echo WROTE")
    assert p.stdout.splitlines() == [
        "character special file|1:3|640|1000|1001", "WROTE"]


def test_linux_devices_nested_path_and_defaults(bundle, runtime):
    """A device in a new directory; mode/uid/gid left out."""
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/berth/sub/zero", "type": "c", "major": 1, "minor": 5}]
    p = run_sh(runtime, bundle,
               "stat -c '%F|%t:%T|%u' /dev/berth/sub/zero;"
               " head -c 3 /dev/berth/sub/zero | wc -c")
    lines = p.stdout.splitlines()
    assert lines[0] == "character special file|1:5|0"
    assert lines[1].strip() == "3"


def test_linux_devices_fifo(bundle, runtime):
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/myfifo", "type": "p", "fileMode": 0o600}]
    p = run_sh(runtime, bundle, "stat -c '%F|%a' /dev/myfifo")
    assert p.stdout.strip() == "fifo|600"


def test_linux_devices_block(bundle, runtime):
    dev = None
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("ram", "zram")):
            dev = tuple(int(x) for x in
                        read("/sys/block/%s/dev" % name).split(":"))
            break
    if dev is None:
        pytest.skip("no block device on this host")
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/myblk", "type": "b", "major": dev[0],
        "minor": dev[1]}]
    p = run_sh(runtime, bundle, "stat -c '%F|%t:%T' /dev/myblk")
    assert p.stdout.strip() == "block special file|%x:%x" % dev


DEFAULT_DEVICES = {
    "/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
    "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0),
}


def test_default_devices(bundle, runtime):
    names = " ".join(sorted(DEFAULT_DEVICES))
    p = run_sh(runtime, bundle,
               "for d in %s; do stat -c '%%n %%F %%t:%%T %%a' $d; done" % names)
    seen = {}
    for line in p.stdout.splitlines():
        n, rest = line.split(" ", 1)
        seen[n] = rest
    for n, (ma, mi) in DEFAULT_DEVICES.items():
        assert seen[n] == "character special file %x:%x 666" % (ma, mi), n


def test_default_dev_symlinks(bundle, runtime):
    links = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
             "/dev/stdout": "/proc/self/fd/1",
             "/dev/stderr": "/proc/self/fd/2", "/dev/ptmx": "pts/ptmx"}
    p = run_sh(runtime, bundle, "for l in %s; do echo $l $(readlink $l);"
               " done" % " ".join(sorted(links)))
    got = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    assert got == links


def test_default_dev_has_nothing_of_the_hosts(bundle, runtime):
    p = run_sh(runtime, bundle, "ls /dev")
    names = set(p.stdout.split())
    assert not names & {"vda", "sda", "kmsg", "mem", "kvm", "loop0"}
    assert {"null", "zero", "pts", "shm", "mqueue"} <= names


def test_dev_fd_works(bundle, runtime):
    p = run_sh(runtime, bundle, "echo via-fd > /dev/stdout; ls /dev/fd/")
    assert p.stdout.splitlines()[0] == "via-fd"
