"""Helpers shared by the real-client tests (test_containerd.py, test_podman.py).

Those tests drive the runtime under test through containerd's runc shim and
through podman/conmon, exactly as a user would.  The clients call the runtime
through a tiny wrapper script that appends its argv to a log before exec'ing
the runtime, so a failing test can show what the client asked for (the
wrapper execs, so the runtime sees the same argv, stdio and parent as
without it).  BERTH_CLIENT_ARGV_LOG=FILE appends every logged line to FILE
too, which is a cheap way to see what the clients pass.
"""
import errno
import os
import pty
import select
import shutil
import signal
import subprocess
import time

from conftest import RUNTIME, cgroup_hierarchies


def runtime_binary():
    """The runtime under test as an absolute path; fails (not skips) when it
    is missing: on CI it is built before the tests run."""
    rt = RUNTIME
    if os.sep not in rt:
        rt = shutil.which(rt) or rt
    rt = os.path.abspath(rt)
    if not os.access(rt, os.X_OK):
        raise AssertionError(
            "runtime %s not found: build it or set BERTH_RUNTIME" % rt)
    return rt


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def write_wrapper(path, runtime, log, extra_args=()):
    """Writes an executable sh script at PATH that logs its argv to LOG (and
    BERTH_CLIENT_ARGV_LOG) and execs RUNTIME EXTRA_ARGS "$@"."""
    extra = " ".join(shell_quote(a) for a in extra_args)
    logs = [log]
    if os.environ.get("BERTH_CLIENT_ARGV_LOG"):
        logs.append(os.path.abspath(os.environ["BERTH_CLIENT_ARGV_LOG"]))
    script = ["#!/bin/sh",
              "# Written by tests/blackbox/clientutil.py: log argv, exec the"
              " runtime.",
              "line=\"$(date +%T.%N) ppid=$PPID\"",
              "for a in \"$@\"; do line=\"$line '$a'\"; done"]
    for lg in logs:
        script.append("printf '%%s\\n' \"$line\" >>%s" % shell_quote(lg))
    script.append("exec %s %s \"$@\"" % (shell_quote(runtime), extra))
    with open(path, "w") as f:
        f.write("\n".join(script) + "\n")
    os.chmod(path, 0o755)
    return path


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)" % path


def run_pty(argv, env=None, timeout=60):
    """Runs ARGV with a new pty as its controlling terminal and stdio (the
    way a person at a terminal runs it); returns (exit code, output without
    carriage returns)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            if env is None:
                os.execvp(argv[0], argv)
            else:
                os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if not r:
                # All writers may be gone while the child lingers.
                wpid, status = os.waitpid(pid, os.WNOHANG)
                if wpid == pid:
                    code = os.waitstatus_to_exitcode(status)
                    pid = None
                    break
                continue
            try:
                data = os.read(fd, 65536)
            except OSError as e:
                if e.errno == errno.EIO:  # the slave side is closed
                    break
                raise
            if not data:
                break
            out += data
    finally:
        os.close(fd)
    if pid is not None:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
    # Carriage returns dropped: the container's pty and the client's raw
    # mode give "\r\r\n" line ends.
    text = out.decode(errors="replace").replace("\r", "")
    if timed_out:
        raise AssertionError("%s timed out after %ss; output: %r"
                             % (" ".join(argv), timeout, text))
    return code, text


def pids_matching(needle):
    """PIDs whose command line contains NEEDLE (bytes or str)."""
    if isinstance(needle, str):
        needle = needle.encode()
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ")
        except OSError:
            continue
        if needle in cmd:
            out.append(int(d))
    return out


def kill_pids(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def pid_cgroups(pid):
    """{controllers: path} from /proc/PID/cgroup."""
    out = {}
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, ctrl, path = line.rstrip("\n").split(":", 2)
            out[ctrl] = path
    return out


def mounts_under(path):
    path = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        mps = [l.split()[4] for l in f]
    return [m for m in mps if m.startswith(path) or m == path.rstrip("/")]


def unmount_all_under(path):
    """Unmounts everything mounted at or under PATH, deepest first."""
    for _ in range(3):
        mps = sorted(set(mounts_under(path)), key=len, reverse=True)
        if not mps:
            return
        for m in mps:
            if subprocess.run(["umount", m], stderr=subprocess.DEVNULL).returncode:
                subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


def cgroup_dirs(name):
    """The directories /NAME in every cgroup hierarchy that exist."""
    return [os.path.join(h, name.strip("/")) for h in cgroup_hierarchies()
            if os.path.isdir(os.path.join(h, name.strip("/")))]


def cgroup_tree_pids(name):
    """PIDs in cgroup /NAME or below it, in any hierarchy."""
    pids = set()
    for top in cgroup_dirs(name):
        for d, _, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        pids.update(int(l) for l in f if l.strip())
                except OSError:
                    pass
    return sorted(pids)


def remove_cgroup_tree(name):
    """Kills what is left in cgroup /NAME (a cgroup only the tests use),
    removes it and everything below it in every hierarchy; returns the
    directories that stayed."""
    for _ in range(3):
        pids = cgroup_tree_pids(name)
        if not pids:
            break
        kill_pids(pids)
        wait_for(lambda: not [p for p in pids if pid_alive(p)], timeout=5)
    left = []
    for top in cgroup_dirs(name):
        subs = sorted((os.path.join(d, n) for d, ds, _ in os.walk(top)
                       for n in ds), key=len, reverse=True)
        for d in subs + [top]:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            if os.path.isdir(d):
                left.append(d)
    return left


def wait_for(pred, timeout=10, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            return v
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
