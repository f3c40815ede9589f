"""Helpers shared by the config-field tests (test_config_*.py, test_security.py).

Only black-box tools: they write config.json, run the runtime and look at
what the container (or the host) sees.
"""
import array
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import CGROUP_ROOT, IMAGE_DIR, RUNTIME

IS_RUNC = os.path.basename(RUNTIME) == "runc"

# linux.namespaces type -> name under /proc/<pid>/ns/
NS_FILES = {
    "pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts",
    "mount": "mnt", "cgroup": "cgroup", "user": "user", "time": "time",
}

# Capability name -> bit number (linux/capability.h).
CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]
CAP_BIT = {name: i for i, name in enumerate(CAPS)}


def skip_for_runc(reason):
    """Marks a test that Debian's runc 1.1.5 cannot satisfy; the test itself
    states what berth-runtime must do."""
    return pytest.mark.skipif(IS_RUNC, reason="runc 1.1.5: " + reason)


def cap_mask(names):
    m = 0
    for n in names:
        m |= 1 << CAP_BIT[n]
    return m


def host_caps(field="CapBnd"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError(field + " missing from /proc/self/status")


def status_fields(text):
    """Parses `cat /proc/self/status` output into a dict."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def run_sh(runtime, bundle, script, *run_args, check=True, **kw):
    """Runs `sh -c SCRIPT` as the container process with `run` (foreground)
    and returns the CompletedProcess."""
    bundle.set_args("sh", "-c", script)
    cid = runtime.new_id()
    return runtime.run("run", *run_args, "--bundle", bundle.path, cid,
                       check=check, **kw)


def run_fails(runtime, bundle, script="true", *run_args, **kw):
    """Runs the bundle expecting the runtime to refuse it; returns the
    CompletedProcess after checking the exit code and that nothing of the
    container is left (`state` must fail)."""
    bundle.set_args("sh", "-c", script)
    cid = runtime.new_id()
    p = runtime.run("run", *run_args, "--bundle", bundle.path, cid,
                    check=False, **kw)
    assert p.returncode != 0, "runtime accepted the config:\n%s\n%s" % (
        p.stdout, p.stderr)
    assert runtime.run("state", cid, check=False).returncode != 0, \
        "a failed run left container %s behind" % cid
    return p


def ns_inode(pid="self", kind="net"):
    return os.stat("/proc/%s/ns/%s" % (pid, NS_FILES.get(kind, kind))).st_ino


def ns_link(pid="self", kind="net"):
    return os.readlink("/proc/%s/ns/%s" % (pid, NS_FILES.get(kind, kind)))


def set_namespace(bundle, kind, path=None):
    """Adds (or replaces) a linux.namespaces entry."""
    nss = [n for n in bundle.config["linux"].setdefault("namespaces", [])
           if n["type"] != kind]
    entry = {"type": kind}
    if path:
        entry["path"] = path
    nss.append(entry)
    bundle.config["linux"]["namespaces"] = nss


def remove_namespace(bundle, kind):
    bundle.config["linux"]["namespaces"] = [
        n for n in bundle.config["linux"].get("namespaces", [])
        if n["type"] != kind]


def drop_mount(bundle, destination):
    bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                               if m["destination"] != destination]


def image_rootfs():
    return os.path.join(IMAGE_DIR, "bundle", "rootfs")


def writable_rootfs(bundle, tmp_path, readonly=False):
    """Gives the bundle a private, writable copy of the image rootfs (for
    tests that need mount points or files the shared image lacks).  Returns
    its path."""
    dst = os.path.join(str(tmp_path), "rootfs")
    subprocess.run(["cp", "-a", image_rootfs(), dst], check=True)
    bundle.config["root"] = {"path": dst, "readonly": readonly}
    bundle.write()
    return dst


def parse_mountinfo(text):
    """Parses mountinfo text into a list of dicts (mount point, options,
    optional fields, fstype, source, super options)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10 or "-" not in f:
            continue
        sep = f.index("-")
        out.append({
            "id": f[0], "parent": f[1], "dev": f[2], "root": f[3],
            "mountpoint": f[4].replace("\\040", " "),
            "options": f[5].split(","), "optional": f[6:sep],
            "fstype": f[sep + 1], "source": f[sep + 2],
            "super": f[sep + 3].split(",") if len(f) > sep + 3 else [],
        })
    return out


def mount_at(text, mountpoint):
    """The top-most mount at MOUNTPOINT in mountinfo TEXT (None if none)."""
    found = [m for m in parse_mountinfo(text) if m["mountpoint"] == mountpoint]
    return found[-1] if found else None


def cgroup_path(bundle, controller):
    """Host path of the container's cgroup in a v1 hierarchy (or
    'unified')."""
    return os.path.join(CGROUP_ROOT, controller,
                        bundle.config["linux"]["cgroupsPath"].lstrip("/"))


def read(path):
    with open(path) as f:
        return f.read()


class Detached:
    """`run -d` a container whose stdio go to files; .pid is the container
    process.  The context manager kills and deletes it on exit."""

    def __init__(self, runtime, bundle, args, run_args=()):
        self.runtime = runtime
        self.bundle = bundle
        bundle.set_args(*args)
        self.cid = runtime.new_id()
        self.dir = tempfile.mkdtemp(prefix="detached-",
                                    dir=os.path.dirname(bundle.path))
        self.out_path = os.path.join(self.dir, "out")
        self.err_path = os.path.join(self.dir, "err")
        self.run_args = list(run_args)
        self.pid = None

    def start(self):
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            p = subprocess.run(
                self.runtime.cmd("run", "-d", *self.run_args, "--bundle",
                                 self.bundle.path, self.cid),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=30)
        if p.returncode != 0:
            raise AssertionError("run -d exited %d: %s" % (
                p.returncode, read(self.err_path)))
        self.pid = self.runtime.state(self.cid)["pid"]
        return self

    def output(self):
        return read(self.out_path)

    def stop(self):
        self.runtime.run("kill", self.cid, "KILL", check=False)
        end = time.time() + 10
        while time.time() < end:
            p = self.runtime.run("state", self.cid, check=False)
            if p.returncode != 0 or json.loads(p.stdout)["status"] == "stopped":
                break
            time.sleep(0.02)
        self.runtime.run("delete", "--force", self.cid, check=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_for(pred, timeout=10, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def recv_fds(conn, maxfds=4, bufsize=65536):
    """recvmsg() on a unix socket: returns (data, [fds])."""
    fds = array.array("i")
    data, anc, _, _ = conn.recvmsg(bufsize, socket.CMSG_SPACE(
        maxfds * fds.itemsize))
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(cdata[:len(cdata) - (len(cdata) % fds.itemsize)])
    return data, list(fds)


class UnixServer:
    """A one-shot unix socket server in a thread: accepts one connection,
    reads one message with its SCM_RIGHTS fds (with json_message=True: reads
    on until the data parses as JSON, for peers that split it), then calls
    handler(data, fds) in the thread.  .data, .fds, .result, .error are set
    afterwards."""

    def __init__(self, path, handler=None, json_message=False):
        self.path = path
        self.handler = handler
        self.json_message = json_message
        self.data = None
        self.fds = []
        self.error = None
        self.result = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _complete(self, data):
        if not self.json_message:
            return True
        try:
            json.loads(data.decode())
            return True
        except ValueError:
            return False

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(30)
                self.data, self.fds = recv_fds(conn)
                while self.data and not self._complete(self.data):
                    more, fds = recv_fds(conn)
                    self.fds += fds
                    if not more:
                        break
                    self.data += more
                if self.handler:
                    self.result = self.handler(self.data, self.fds)
        except Exception as e:  # reported by the test
            self.error = e

    def join(self, timeout=30):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self):
        self.sock.close()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass


@contextlib.contextmanager
def ns_holder(*unshare_flags):
    """A process in fresh namespaces made by unshare(1) (with --fork, so the
    new pid namespace has a live init).  Yields the pid of the process
    inside them: join its namespaces via /proc/<pid>/ns/<kind>."""
    p = subprocess.Popen(["unshare", "--fork", "--kill-child"] +
                         list(unshare_flags) +
                         ["sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        def child():
            try:
                with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                    kids = f.read().split()
            except OSError:
                return None
            if not kids:
                return None
            pid = int(kids[0])
            try:
                if os.readlink("/proc/%d/exe" % pid).endswith("sleep"):
                    return pid
            except OSError:
                pass
            return None
        pid = wait_for(child, what="unshare child")
        yield pid
    finally:
        try:
            os.kill(pid, 9)
        except (OSError, NameError):
            pass
        p.kill()
        p.wait()
