"""Helpers for the command-line black-box tests (test_cli_*.py).

The runtime fixture's Runtime.run() captures stdout/stderr through pipes.  A
detached container (create, run -d, exec -d) inherits the runtime's stdio, so
the pipes would stay open for the container's whole life and run() would
block: detached() sends the runtime's (and so the container's) stdio to files
instead.
"""
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from conftest import CGROUP_ROOT, pid_alive

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Detached:
    """Result of detached(): returncode, and the files holding stdout/stderr
    of the runtime and of whatever inherited them (the container)."""

    def __init__(self, returncode, out_path, err_path):
        self.returncode = returncode
        self.out_path = out_path
        self.err_path = err_path

    @property
    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    @property
    def stderr(self):
        with open(self.err_path) as f:
            return f.read()


def detached(runtime, workdir, *args, check=True, wrap=(), preexec_fn=None,
             timeout=30):
    """Runs `runtime args...` with stdin from /dev/null and stdout/stderr
    appended to fresh files in workdir.  wrap is an argv prefix (see
    with_fd3)."""
    fd, out_path = tempfile.mkstemp(prefix="out-", dir=workdir)
    os.close(fd)
    fd, err_path = tempfile.mkstemp(prefix="err-", dir=workdir)
    os.close(fd)
    with open(out_path, "w") as out, open(err_path, "w") as err:
        p = subprocess.run(list(wrap) + runtime.cmd(*args),
                           stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout, preexec_fn=preexec_fn)
    d = Detached(p.returncode, out_path, err_path)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstderr: %s" % (
            " ".join(runtime.cmd(*args)), p.returncode, d.stderr))
    return d


def workdir(bundle):
    """A scratch directory next to the bundle (the test's tmp_path)."""
    return os.path.dirname(bundle.path)


def create(runtime, bundle, *flags, cid=None, **kw):
    """`create [flags] --bundle B ID` detached; returns (cid, Detached)."""
    cid = cid or runtime.new_id()
    d = detached(runtime, workdir(bundle), "create", *flags,
                 "--bundle", bundle.path, cid, **kw)
    return cid, d


def run_detached(runtime, bundle, *flags, cid=None, **kw):
    """`run -d [flags] --bundle B ID`; returns (cid, Detached)."""
    cid = cid or runtime.new_id()
    d = detached(runtime, workdir(bundle), "run", "-d", *flags,
                 "--bundle", bundle.path, cid, **kw)
    return cid, d


def sleeper(runtime, bundle, *args):
    """A running container whose init is `sleep 100` (or args); returns
    (cid, init pid)."""
    bundle.set_args(*(args or ("sleep", "100")))
    cid, _ = run_detached(runtime, bundle)
    runtime.wait_status(cid, "running")
    return cid, runtime.state(cid)["pid"]


def with_fd3(path, mode="w"):
    """An argv prefix that runs the command with fd 3 open on path (for
    --preserve-fds): mode "w" truncates/creates, "r" reads."""
    redir = '3>"$0"' if mode == "w" else '3<"$0"'
    return ["/bin/sh", "-c", 'exec "$@" ' + redir, path]


def wait_for(predicate, timeout=10, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def wait_dead(pid, timeout=10):
    wait_for(lambda: not pid_alive(pid), timeout, "pid %d to die" % pid)


def read_pid_file(path):
    with open(path) as f:
        return int(f.read().strip())


def cgroup_file(bundle, controller, name):
    """Path of a cgroup v1 control file of the bundle's container:
    /sys/fs/cgroup/<controller>/<cgroupsPath>/<name>."""
    cg = bundle.config["linux"]["cgroupsPath"].lstrip("/")
    return os.path.join(CGROUP_ROOT, controller, cg, name)


def read_cgroup(bundle, controller, name):
    with open(cgroup_file(bundle, controller, name)) as f:
        return f.read().strip()


def json_lines(text):
    """Parses every non-empty line of text as JSON."""
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def proc_status(output, field):
    """The value of `field:` in a /proc/PID/status dump."""
    for line in output.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("%s not in %r" % (field, output))


class ConsoleSocket:
    """A --console-socket server: a unix socket whose accept thread receives
    the pty master through SCM_RIGHTS.  Use as a context manager."""

    def __init__(self):
        # sun_path is limited to 108 bytes: pytest's tmp_path can be longer.
        self.dir = tempfile.mkdtemp(prefix="bcs-", dir="/tmp")
        self.path = os.path.join(self.dir, "console.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.master = None
        self.error = None
        self._got = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
            if not fds:
                raise RuntimeError("no fd received on the console socket")
            self.master = fds[0]
            for extra in fds[1:]:
                os.close(extra)
        except Exception as e:  # reported by wait_master()
            self.error = e
        finally:
            self._got.set()

    def wait_master(self, timeout=15):
        assert self._got.wait(timeout), "no pty master received"
        assert self.master is not None, "console socket: %r" % self.error
        return self.master

    def write(self, text):
        os.write(self.wait_master(), text.encode())

    def read_until(self, pattern, timeout=15):
        """Reads the pty until the regex pattern (multiline) matches what was
        read; returns everything read.  Fails on timeout or EOF."""
        master = self.wait_master()
        buf = ""
        end = time.time() + timeout
        while not re.search(pattern, buf, re.M):
            left = end - time.time()
            assert left > 0, "%r never appeared in %r" % (pattern, buf)
            r, _, _ = select.select([master], [], [], left)
            if not r:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the slave side is gone
                data = b""
            assert data, "EOF before %r in %r" % (pattern, buf)
            buf += data.decode(errors="replace")
        return buf

    def close(self):
        self.sock.close()
        if self.master is not None:
            os.close(self.master)
            self.master = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
