"""Black-box checks for known container-runtime escapes.

CVE-2019-5736   the runtime binary, as a container process can reach it via
                /proc/<pid>/exe, must not be the writable host binary.
CVE-2024-21626  no runtime fd leaks into the container; the cwd is inside
                the container even when config says /proc/self/fd/N.
CVE-2021-30465  mount destinations are resolved inside the rootfs: a
                symlink in the rootfs can't redirect a mount to the host.
(The /proc-is-really-procfs checks of CVE-2019-16884/2019-19921 need
white-box tests and are not here.)
"""
import errno
import fcntl
import os
import subprocess

import pytest

from config_helpers import (Detached, mount_at, parse_mountinfo,
                            read, run_sh, skip_for_runc, writable_rootfs)
from conftest import RUNTIME

F_GET_SEALS = 1034
F_SEAL_WRITE = 0x0008
F_SEAL_FUTURE_WRITE = 0x0010


# --- CVE-2019-5736 -----------------------------------------------------------

def _create(runtime, bundle, cid, tmp_path):
    with open(str(tmp_path / "create.log"), "w") as log:
        p = subprocess.run(runtime.cmd("create", "--bundle", bundle.path,
                                       cid),
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           timeout=30)
    assert p.returncode == 0, read(str(tmp_path / "create.log"))
    return runtime.state(cid)["pid"]


def _is_memfd(fd):
    return os.readlink("/proc/self/fd/%d" % fd).startswith("/memfd:")


def _seals(path_fd):
    fd = os.open("/proc/self/fd/%d" % path_fd, os.O_RDONLY)
    try:
        return fcntl.fcntl(fd, F_GET_SEALS)
    finally:
        os.close(fd)


@skip_for_runc("Debian's 1.1.5+deb12u1 runs its init from a read-only bind "
               "mount of /usr/sbin/runc, not from a memfd")
def test_cve_2019_5736_init_exe_is_sealed_memfd(bundle, runtime, tmp_path):
    """The process the runtime leaves in the container (here: the init of
    a created container) executes a sealed memfd copy of the runtime."""
    bundle.set_args("true")
    cid = runtime.new_id()
    pid = _create(runtime, bundle, cid, tmp_path)
    try:
        target = os.readlink("/proc/%d/exe" % pid)
        assert target.startswith("/memfd:"), target
        fd = os.open("/proc/%d/exe" % pid, os.O_PATH)
        try:
            assert _is_memfd(fd)
            assert _seals(fd) & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
            assert os.fstat(fd).st_ino != os.stat(RUNTIME).st_ino
        finally:
            os.close(fd)
    finally:
        runtime.run("delete", "--force", cid, check=False)


def test_cve_2019_5736_exe_cannot_be_written(bundle, runtime, tmp_path):
    """Hold /proc/<init>/exe (O_PATH, as the exploit does), let the process
    go, then reopen it for writing: that must fail, or -- for a memfd copy
    -- writes must be refused by its seals.  (Nothing is written unless
    the file is a memfd, so a vulnerable runtime's binary is left intact.)
    """
    bundle.set_args("true")
    cid = runtime.new_id()
    pid = _create(runtime, bundle, cid, tmp_path)
    fd = os.open("/proc/%d/exe" % pid, os.O_PATH)
    try:
        runtime.run("delete", "--force", cid)
        memfd = _is_memfd(fd)
        try:
            wfd = os.open("/proc/self/fd/%d" % fd, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            assert e.errno in (errno.EROFS, errno.ETXTBSY, errno.EPERM,
                               errno.EACCES), e
            return
        try:
            assert memfd, ("the runtime binary seen by the container "
                           "(%s) can be opened for writing"
                           % os.readlink("/proc/self/fd/%d" % fd))
            with pytest.raises(OSError) as ei:
                os.write(wfd, b"x")
            assert ei.value.errno == errno.EPERM
        finally:
            os.close(wfd)
    finally:
        os.close(fd)


def test_cve_2019_5736_host_binary_unchanged(bundle, runtime, tmp_path):
    """A container that tries to write through /proc/self/exe-like paths
    of processes it can see leaves the runtime binary as it was."""
    before = os.stat(RUNTIME)
    with open(RUNTIME, "rb") as f:
        head = f.read(4096)
    # Every process the container can see, incl. whatever the runtime has
    # in there, is tried for writing.
    p = run_sh(runtime, bundle,
               "for e in /proc/[0-9]*/exe; do"
               " (echo x >> $e) 2>/dev/null && echo WROTE $e; done; true")
    assert "WROTE" not in p.stdout
    after = os.stat(RUNTIME)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size,
                                                  before.st_mtime_ns)
    with open(RUNTIME, "rb") as f:
        assert f.read(4096) == head


# --- CVE-2024-21626 ----------------------------------------------------------

def _run_with_fds(runtime, bundle, cid, extra_fd_file, *run_args):
    """Runs the runtime with fds 3 and 7 open on EXTRA_FD_FILE (a host
    file) in addition to stdio."""
    shell = 'exec 3<"$0" 7<"$0"; exec "$@"'
    return subprocess.run(
        ["sh", "-c", shell, str(extra_fd_file)] +
        runtime.cmd("run", *run_args, "--bundle", bundle.path, cid),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def test_cve_2024_21626_no_fd_leak(bundle, runtime, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("secret")
    bundle.set_args("sh", "-c", "ls /proc/1/fd; echo --;"
                    " ls -l /proc/1/fd")
    cid = runtime.new_id()
    p = _run_with_fds(runtime, bundle, cid, secret)
    assert p.returncode == 0, p.stderr
    fds = p.stdout.split("--")[0].split()
    assert sorted(fds) == ["0", "1", "2"], p.stdout
    assert "host-secret" not in p.stdout


def test_cve_2024_21626_preserve_fds(bundle, runtime, tmp_path):
    """--preserve-fds 1 passes fd 3 (and only it) on."""
    secret = tmp_path / "passed-file"
    secret.write_text("passed")
    bundle.set_args("sh", "-c", "ls /proc/1/fd; cat <&3")
    cid = runtime.new_id()
    p = _run_with_fds(runtime, bundle, cid, secret, "--preserve-fds", "1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert sorted(lines[:-1]) == ["0", "1", "2", "3"], p.stdout
    assert lines[-1] == "passed"


def test_cve_2024_21626_container_process_fds(bundle, runtime):
    """After `start`, the container process holds no fd the runtime had
    open (no directory fds on the host, no sockets to the runtime)."""
    with Detached(runtime, bundle, ["sleep", "30"]) as d:
        fds = sorted(int(x) for x in os.listdir("/proc/%d/fd" % d.pid))
        assert fds == [0, 1, 2], [
            (x, os.readlink("/proc/%d/fd/%d" % (d.pid, x))) for x in fds]


@pytest.mark.parametrize("cwd,want", [("/", "/"), ("/usr/bin", "/usr/bin"),
                                      ("/tmp", "/tmp")])
def test_cve_2024_21626_cwd_inside(bundle, runtime, cwd, want):
    bundle.process["cwd"] = cwd
    p = run_sh(runtime, bundle, "pwd -P; readlink /proc/self/cwd")
    assert p.stdout.split() == [want, want]


@pytest.mark.parametrize("n", range(3, 11))
def test_cve_2024_21626_cwd_via_leaked_fd(bundle, runtime, n):
    """cwd /proc/self/fd/N must not land outside the container: the
    runtime refuses it, or the process is somewhere under its own root."""
    bundle.process["cwd"] = "/proc/self/fd/%d" % n
    p = run_sh(runtime, bundle,
               "pwd -P && ls ../../../../../../.. && echo OK", check=False)
    if p.returncode != 0:
        assert "OK" not in p.stdout
        return
    lines = p.stdout.split()
    assert lines[0].startswith("/") and "unreachable" not in lines[0]
    # Climbing .. ends at the container's /: the image's top level.
    assert "busybox" not in lines
    assert "linuxrc" in lines


def test_cve_2024_21626_host_cwd_not_inherited(bundle, runtime, tmp_path):
    """The runtime's own cwd (a host dir) is not the container's."""
    bundle.process["cwd"] = "/"
    bundle.set_args("sh", "-c", "ls -a /proc/self/cwd/")
    cid = runtime.new_id()
    (tmp_path / "host-cwd-marker").write_text("x")
    p = subprocess.run(runtime.cmd("run", "--bundle", bundle.path, cid),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert "host-cwd-marker" not in p.stdout
    assert "linuxrc" in p.stdout.split()


# --- CVE-2021-30465 (symlinked mount destinations) ---------------------------

def _host_dir(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "host-file").write_text("host\n")
    return d


def _check_untouched(d):
    assert sorted(os.listdir(str(d))) == ["host-file"]
    assert not os.path.ismount(str(d))


@pytest.mark.parametrize("typ", ["tmpfs", "bind"])
def test_cve_2021_30465_absolute_symlink_destination(bundle, runtime,
                                                     tmp_path, typ):
    rootfs = writable_rootfs(bundle, tmp_path)
    hostdir = _host_dir(tmp_path, "hostdir")
    os.symlink(str(hostdir), os.path.join(rootfs, "mnt"))
    src = tmp_path / "src"
    src.mkdir()
    if typ == "tmpfs":
        m = {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m"]}
    else:
        m = {"destination": "/mnt", "type": "bind", "source": str(src),
             "options": ["bind"]}
    bundle.config["mounts"].append(m)
    p = run_sh(runtime, bundle,
               "echo ct > /mnt/from-container; ls /mnt; "
               "cat /proc/self/mountinfo", check=False)
    _check_untouched(hostdir)
    if p.returncode != 0:
        return              # refusing the config is fine too
    assert "host-file" not in p.stdout.split()
    # The mount is inside the container, at the symlink resolved in root.
    inside = str(hostdir)     # the symlink's target, resolved in the root
    mi = mount_at(p.stdout, inside) or mount_at(p.stdout, "/mnt")
    assert mi is not None, "mount not visible in the container"
    if typ == "bind":
        assert (src / "from-container").read_text() == "ct\n"
    # The rootfs copy got the directories, the host path nothing.
    assert os.path.isdir(os.path.join(rootfs, inside.lstrip("/")))


def test_cve_2021_30465_dotdot_symlink_destination(bundle, runtime, tmp_path):
    rootfs = writable_rootfs(bundle, tmp_path)
    hostdir = _host_dir(tmp_path, "hostdir2")
    os.symlink("../" * 20 + str(hostdir).lstrip("/"),
               os.path.join(rootfs, "mnt"))
    bundle.config["mounts"].append({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]})
    p = run_sh(runtime, bundle,
               "echo ct > /mnt/from-container; ls /mnt;"
               " cat /proc/self/mountinfo", check=False)
    _check_untouched(hostdir)
    if p.returncode != 0:
        return
    assert "host-file" not in p.stdout.split()
    assert mount_at(p.stdout, str(hostdir)) or mount_at(p.stdout, "/mnt")


def test_cve_2021_30465_symlink_in_middle_component(bundle, runtime,
                                                    tmp_path):
    rootfs = writable_rootfs(bundle, tmp_path)
    hostdir = _host_dir(tmp_path, "hostdir3")
    (hostdir / "sub").mkdir()
    os.symlink(str(hostdir), os.path.join(rootfs, "link"))
    bundle.config["mounts"].append({
        "destination": "/link/sub", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]})
    p = run_sh(runtime, bundle,
               "echo ct > /link/sub/from-container; cat /proc/self/mountinfo",
               check=False)
    assert sorted(os.listdir(str(hostdir))) == ["host-file", "sub"]
    assert os.listdir(str(hostdir / "sub")) == []
    assert not os.path.ismount(str(hostdir / "sub"))
    if p.returncode == 0:
        assert any(m["fstype"] == "tmpfs" and
                   m["mountpoint"] in (str(hostdir / "sub"), "/link/sub")
                   for m in parse_mountinfo(p.stdout))


def test_cve_2021_30465_no_host_mount_while_running(bundle, runtime,
                                                    tmp_path):
    """While the container runs, the host path the symlink names has no
    mount on it (checked from the host's mount namespace)."""
    rootfs = writable_rootfs(bundle, tmp_path)
    hostdir = _host_dir(tmp_path, "hostdir4")
    os.symlink(str(hostdir), os.path.join(rootfs, "mnt"))
    bundle.config["mounts"].append({
        "destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]})
    d = Detached(runtime, bundle, ["sleep", "30"])
    try:
        d.start()
    except AssertionError:
        _check_untouched(hostdir)
        return
    try:
        _check_untouched(hostdir)
        with open("/proc/self/mountinfo") as f:
            assert str(hostdir) not in f.read()
    finally:
        d.stop()
