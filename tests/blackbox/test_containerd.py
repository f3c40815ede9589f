"""containerd (1.6, io.containerd.runc.v2 shim) driving the runtime under test.

A private containerd runs while this module runs: its root, state, sockets, runc
root and FIFOs all live in one temporary directory, its namespace is
berth-test-<pid>-containerd (so container cgroups are /<namespace>/<id>), and
every test runs `ctr run --runc-binary <wrapper around RUNTIME>`.  The shim
calls the runtime as

    RUNTIME --root R --log B/log.json --log-format json create --bundle B
            --pid-file B/init.pid [--console-socket S] ID
    ... start ID / exec --process F --detach --pid-file P [--console-socket S] ID
    ... kill ID SIG / kill --all ID SIG / ps --format json ID / pause ID /
    ... resume ID / delete ID / delete --force ID

and reaps the container's processes itself (it is their subreaper), so what
is tested here is what containerd needs from a runc-compatible runtime.
Skipped when containerd, ctr or the runc shim is not installed.
"""
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import uuid

import pytest

from conftest import IMAGE_DIR
import clientutil as cu

NS = "berth-test-%d-containerd" % os.getpid()
IMAGE_REF = "berth.test/busybox:latest"
SHIM_STATE_DIR = "/run/containerd"  # where the 1.6 shim puts its sockets

for _tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
    if shutil.which(_tool) is None:
        pytest.skip("%s is not installed" % _tool, allow_module_level=True)


def oci_archive(oci_dir, dest):
    """Tars an OCI image layout directory into an oci-archive."""
    with tarfile.open(dest, "w") as tar:
        for name in sorted(os.listdir(oci_dir)):
            tar.add(os.path.join(oci_dir, name), arcname=name)
    return dest


class Containerd:
    def __init__(self, top, runtime):
        self.top = top
        self.sock = os.path.join(top, "c.sock")
        self.state = os.path.join(top, "state")
        self.runc_root = os.path.join(top, "rr")
        self.fifo_dir = os.path.join(top, "fifo")
        self.log = os.path.join(top, "containerd.log")
        self.argv_log = os.path.join(top, "runtime-argv.log")
        os.makedirs(os.path.join(top, "bin"))
        self.runtime = runtime
        self.wrapper = cu.write_wrapper(
            os.path.join(top, "bin", os.path.basename(runtime)), runtime,
            self.argv_log)
        self.proc = None

    def write_config(self):
        cfg = os.path.join(self.top, "config.toml")
        with open(cfg, "w") as f:
            f.write("""version = 2
root = "{top}/root"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
""".format(top=self.top, state=self.state, sock=self.sock))
        return cfg

    def start(self):
        cfg = self.write_config()
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", cfg], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("containerd exited %d:\n%s"
                                     % (self.proc.returncode,
                                        cu.tail(self.log)))
            if os.path.exists(self.sock) and self.ctr(
                    "version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("containerd did not come up:\n" +
                             cu.tail(self.log))

    def ctr_cmd(self, *args):
        return ["ctr", "-a", self.sock, "-n", NS] + [str(a) for a in args]

    def ctr(self, *args, check=True, timeout=30, input=None):
        p = subprocess.run(self.ctr_cmd(*args), input=input, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=None if input is not None
                           else subprocess.DEVNULL, text=True)
        if check and p.returncode != 0:
            raise AssertionError(self.explain(
                "%s exited %d\nstdout: %s\nstderr: %s" % (
                    " ".join(self.ctr_cmd(*args)), p.returncode, p.stdout,
                    p.stderr)))
        return p

    def explain(self, msg):
        return "%s\n--- runtime argv (last lines):\n%s" % (
            msg, cu.tail(self.argv_log, 15))

    def tasks(self):
        """{id: (pid, status)} from `ctr task ls`."""
        out = {}
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            f = line.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def containers(self):
        return [l.split()[0] for l in
                self.ctr("container", "ls", "-q").stdout.splitlines()
                if l.strip()]

    def remove(self, cid):
        """Kills, deletes and removes container CID, whatever its state."""
        if cid in self.tasks():
            self.ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
            cu.wait_for(lambda: self.tasks().get(cid, (0, "STOPPED"))[1]
                        == "STOPPED", timeout=10)
            self.ctr("task", "delete", cid, check=False)
            if cid in self.tasks():
                self.ctr("task", "delete", "--force", cid, check=False)
        if cid in self.containers():
            self.ctr("container", "rm", cid, check=False)

    def shim_pids(self, cid=None):
        needle = "-address %s" % self.sock
        pids = cu.pids_matching(needle)
        if cid is not None:
            pids = [p for p in pids if p in cu.pids_matching("-id %s " % cid)]
        return pids

    def stop(self):
        if self.proc is not None:
            for cid in self.containers():
                self.remove(cid)
            self.ctr("image", "rm", IMAGE_REF, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Shims that outlived their containers and runtime processes that
        # hang: all started for this containerd, all name its directory.
        cu.kill_pids(cu.pids_matching(self.top))
        # Sockets of shims killed above (each bundle's "address" file names
        # its shim's socket, in /run/containerd/s).
        for d, _, files in os.walk(self.state):
            if "address" in files:
                try:
                    with open(os.path.join(d, "address")) as f:
                        addr = f.read().strip()
                except OSError:
                    continue
                path = addr.split("://", 1)[-1]
                if path.startswith(SHIM_STATE_DIR + "/s/"):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass


@pytest.fixture(scope="module")
def containerd(image):
    runtime = cu.runtime_binary()
    # Short paths: unix socket paths must stay under 108 bytes.
    top = tempfile.mkdtemp(prefix="berth-ctd-", dir="/tmp")
    shim_dirs = [d for d in (SHIM_STATE_DIR, SHIM_STATE_DIR + "/s")
                 if not os.path.exists(d)]
    c = Containerd(top, runtime)
    try:
        c.start()
        archive = oci_archive(os.path.join(IMAGE_DIR, "oci"),
                              os.path.join(top, "image.tar"))
        c.ctr("images", "import", "--base-name", IMAGE_REF.split(":")[0],
              archive, timeout=120)
        assert IMAGE_REF in c.ctr("images", "ls", "-q").stdout
        yield c
    finally:
        try:
            c.stop()
        finally:
            cu.unmount_all_under(top)
            cu.remove_cgroup_tree(NS)
            shutil.rmtree(top, ignore_errors=True)
            for d in reversed(shim_dirs):  # only what this module created
                try:
                    os.rmdir(d)
                except OSError:
                    pass


class Ctr:
    """Per-test helper: unique ids, `ctr run` with the runtime under test,
    and a leak check when the test ends."""

    def __init__(self, cd):
        self.cd = cd
        self.ids = []
        self.pids = []

    def new_id(self):
        cid = "c" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def run_args(self, *opts):
        return ["run", "--runc-binary", self.cd.wrapper,
                "--runc-root", self.cd.runc_root,
                "--fifo-dir", self.cd.fifo_dir] + list(opts)

    def run(self, cid, *cmd, opts=(), check=True, input=None, timeout=30):
        args = self.run_args(*opts) + [IMAGE_REF, cid] + list(cmd)
        return self.cd.ctr(*args, check=check, input=input, timeout=timeout)

    def run_detached(self, cid, *cmd, opts=()):
        self.run(cid, *cmd, opts=("-d",) + tuple(opts))
        pid, status = self.cd.tasks()[cid]
        assert status == "RUNNING", self.cd.explain("task %s is %s"
                                                    % (cid, status))
        self.pids.append(pid)
        return pid

    def wait_status(self, cid, status, timeout=10):
        got = cu.wait_for(lambda: self.cd.tasks().get(cid, (0, None))[1]
                          == status, timeout=timeout)
        assert got, self.cd.explain("task %s never became %s: %s" % (
            cid, status, self.cd.tasks().get(cid)))

    def task_pids(self, cid):
        """PIDs listed by `ctr task ps` (calls `runtime ps --format json`)."""
        out = self.cd.ctr("task", "ps", cid).stdout.splitlines()
        assert out and out[0].split()[0] == "PID", out
        return [int(l.split()[0]) for l in out[1:] if l.strip()]

    def cleanup_and_check(self):
        leaks = []
        # Tests may leave containers running: remove them the normal way
        # (through containerd), then look for what that left behind.
        for cid in self.ids:
            self.cd.remove(cid)
            if cid in self.cd.tasks() or cid in self.cd.containers():
                leaks.append("container %s could not be removed" % cid)
        for cid in self.ids:
            if os.path.exists(os.path.join(self.cd.runc_root, NS, cid)):
                leaks.append("runtime state of %s left in --root" % cid)
            bundle = os.path.join(self.cd.state,
                                  "io.containerd.runtime.v2.task", NS, cid)
            for m in cu.mounts_under(bundle):
                leaks.append("mount left: %s" % m)
            cgs = cu.wait_for(lambda: not cu.cgroup_dirs("%s/%s" % (NS, cid)),
                              timeout=5)
            if not cgs:
                leaks.append("cgroup left: %s" %
                             cu.cgroup_dirs("%s/%s" % (NS, cid)))
                cu.remove_cgroup_tree("%s/%s" % (NS, cid))
        for pid in self.pids:
            if cu.wait_for(lambda: not cu.pid_alive(pid), timeout=5) is False:
                leaks.append("process %d still alive" % pid)
                cu.kill_pids([pid])
        for cid in self.ids:
            if not cu.wait_for(lambda: not self.cd.shim_pids(cid), timeout=10):
                leaks.append("shim of %s still running" % cid)
                cu.kill_pids(self.cd.shim_pids(cid))
        assert not leaks, self.cd.explain("leaked: " + "; ".join(leaks))


@pytest.fixture
def ctr(containerd):
    c = Ctr(containerd)
    yield c
    c.cleanup_and_check()


def test_run_prints_output(ctr):
    cid = ctr.new_id()
    p = ctr.run(cid, "echo", "hello", opts=("--rm",))
    assert p.stdout == "hello\n"
    assert cid not in ctr.cd.containers()


def test_run_exit_code_propagates(ctr):
    p = ctr.run(ctr.new_id(), "sh", "-c", "echo out; echo err >&2; exit 3",
                opts=("--rm",), check=False)
    assert p.returncode == 3, ctr.cd.explain(p.stderr)
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr


def start_foreground(ctr, cid, script):
    """Starts `ctr run --rm IMG CID sh -c SCRIPT` (attached, not detached)
    and returns its Popen once the script has printed "ready"."""
    cmd = ctr.cd.ctr_cmd(*ctr.run_args("--rm") + [IMAGE_REF, cid, "sh", "-c",
                                                  script])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if line != "ready\n":
        out, err = finish(proc, timeout=5)
        raise AssertionError(ctr.cd.explain(
            "no 'ready' from %s: %r %r %r" % (cid, line, out, err)))
    return proc


def finish(proc, data=None, timeout=30):
    """Writes DATA (if any) to PROC's stdin, closes it, waits for PROC."""
    try:
        return proc.communicate(data, timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_stdin_is_passed(ctr):
    # Written once the task runs: ctr forwards the end of its stdin only to
    # a task that already exists (a ctr quirk, not the runtime's).
    proc = start_foreground(ctr, ctr.new_id(), "echo ready; cat; echo done")
    out, err = finish(proc, "line one\nline two\n")
    assert out == "line one\nline two\ndone\n", ctr.cd.explain(err)
    assert proc.returncode == 0, ctr.cd.explain(err)


def test_task_kill_sigkill_exit_status(ctr):
    """SIGKILL from `ctr task kill`: the attached `ctr run` exits 128+9."""
    cid = ctr.new_id()
    proc = start_foreground(ctr, cid, "echo ready; exec sleep 1000")
    ctr.pids.append(ctr.cd.tasks()[cid][0])
    ctr.cd.ctr("task", "kill", "-s", "SIGKILL", cid)
    out, err = finish(proc)
    assert proc.returncode == 128 + 9, ctr.cd.explain(err)


def test_run_env_and_cwd(ctr):
    p = ctr.run(ctr.new_id(), "sh", "-c", 'echo "$FOO:$(pwd)"',
                opts=("--rm", "--env", "FOO=bar", "--cwd", "/tmp"))
    assert p.stdout == "bar:/tmp\n"


def test_run_with_terminal(ctr):
    cid = ctr.new_id()
    cmd = ctr.cd.ctr_cmd(*ctr.run_args("--rm", "-t") + [
        IMAGE_REF, cid, "sh", "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; exit 5"])
    code, out = cu.run_pty(cmd)
    assert re.search(r"/dev/pts/\d+\n", out), ctr.cd.explain(out)
    assert "all-tty" in out, ctr.cd.explain(out)
    assert code == 5, ctr.cd.explain(out)


def test_detached_task_exec_ps_kill_delete(ctr):
    cd = ctr.cd
    cid = ctr.new_id()
    pid = ctr.run_detached(cid, "sleep", "1000")
    assert cu.pid_alive(pid)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"

    # exec: output, stderr and exit code come back through the shim.
    p = cd.ctr("task", "exec", "--fifo-dir", cd.fifo_dir, "--exec-id", "x1",
               cid, "sh", "-c", "echo from-exec; echo e >&2; exit 4",
               check=False)
    assert p.returncode == 4, cd.explain(p.stderr)
    assert p.stdout == "from-exec\n"
    assert "e\n" in p.stderr
    # The exec'd process shares the container's namespaces.
    p = cd.ctr("task", "exec", "--fifo-dir", cd.fifo_dir, "--exec-id", "x2",
               cid, "sh", "-c", "readlink /proc/1/ns/pid; readlink /proc/self/ns/pid; "
               "cat /proc/1/cmdline")
    ns = p.stdout.splitlines()
    assert ns[0] == ns[1], p.stdout
    assert os.readlink("/proc/%d/ns/pid" % pid) == ns[0]
    assert ns[2].startswith("sleep")

    # ps lists the init process (pids as seen from the host).
    assert pid in ctr.task_pids(cid)

    cd.ctr("task", "kill", "-s", "SIGKILL", cid)
    ctr.wait_status(cid, "STOPPED")
    assert cu.wait_for(lambda: not cu.pid_alive(pid))
    p = cd.ctr("task", "delete", cid)
    assert cid not in cd.tasks()
    assert cid in cd.containers()
    cd.ctr("container", "rm", cid)
    assert cid not in cd.containers()


def test_exec_with_terminal(ctr):
    cd = ctr.cd
    cid = ctr.new_id()
    ctr.run_detached(cid, "sleep", "1000")
    code, out = cu.run_pty(cd.ctr_cmd(
        "task", "exec", "-t", "--fifo-dir", cd.fifo_dir, "--exec-id", "tx",
        cid, "sh", "-c", "tty; [ -t 0 ] && echo in-tty; exit 6"))
    assert re.search(r"/dev/pts/\d+", out), cd.explain(out)
    assert "in-tty" in out, cd.explain(out)
    assert code == 6, cd.explain(out)
    # The init process is not disturbed by the exec.
    assert cd.tasks()[cid][1] == "RUNNING"


def test_task_kill_term_reaches_init(ctr):
    """`ctr task kill` sends SIGTERM; the init process's handler runs and its
    exit code comes back to the foreground `ctr run`."""
    cd = ctr.cd
    cid = ctr.new_id()
    proc = start_foreground(ctr, cid, "trap 'echo got-term; exit 42' TERM; "
                            "echo ready; while :; do sleep 0.05; done")
    assert cd.tasks()[cid][1] == "RUNNING"
    cd.ctr("task", "kill", cid)
    out, err = finish(proc)
    assert out == "got-term\n", cd.explain(err)
    assert proc.returncode == 42, cd.explain(err)


def test_task_kill_all(ctr):
    """`ctr task kill --all` (runtime `kill --all`) reaches every process."""
    cd = ctr.cd
    cid = ctr.new_id()
    pid = ctr.run_detached(cid, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
    procs = cu.wait_for(lambda: len(ctr.task_pids(cid)) >= 3 and
                        ctr.task_pids(cid))
    assert procs and pid in procs, procs
    ctr.pids.extend(procs)
    cd.ctr("task", "kill", "--all", "-s", "SIGKILL", cid)
    ctr.wait_status(cid, "STOPPED")
    for p in procs:
        assert cu.wait_for(lambda: not cu.pid_alive(p)), "pid %d alive" % p
    cd.ctr("task", "delete", cid)
    cd.ctr("container", "rm", cid)


def test_task_ls_states_and_pause_resume(ctr):
    cd = ctr.cd
    cid = ctr.new_id()
    pid = ctr.run_detached(cid, "sleep", "1000")
    assert cd.tasks()[cid] == (pid, "RUNNING")
    cd.ctr("task", "pause", cid)
    assert cd.tasks()[cid] == (pid, "PAUSED")
    with open("/proc/%d/status" % pid) as f:
        assert "(stopped)" not in f.read()  # frozen by the freezer, not SIGSTOP
    cd.ctr("task", "resume", cid)
    assert cd.tasks()[cid] == (pid, "RUNNING")
    p = cd.ctr("task", "exec", "--fifo-dir", cd.fifo_dir, "--exec-id", "r",
               cid, "true", check=False)
    assert p.returncode == 0, cd.explain(p.stderr)
    cd.ctr("task", "kill", "-s", "SIGKILL", cid)
    ctr.wait_status(cid, "STOPPED")
    assert cd.tasks()[cid][1] == "STOPPED"
    cd.ctr("task", "delete", cid)
    cd.ctr("container", "rm", cid)


def test_cgroup_is_namespace_and_id(ctr):
    """ctr asks for cgroupsPath /<namespace>/<id>: the runtime puts the
    container there, in every hierarchy, and removes it on delete."""
    cd = ctr.cd
    cid = ctr.new_id()
    pid = ctr.run_detached(cid, "sleep", "1000")
    want = "/%s/%s" % (NS, cid)
    cgs = cu.pid_cgroups(pid)
    wrong = {c: p for c, p in cgs.items() if p != want}
    assert cgs and not wrong, "not in %s: %s" % (want, wrong)
    assert cu.cgroup_dirs(want.lstrip("/"))
    cd.remove(cid)
    assert cu.wait_for(lambda: not cu.cgroup_dirs(want.lstrip("/")),
                       timeout=5), cu.cgroup_dirs(want.lstrip("/"))


def test_create_failure_is_reported(ctr):
    """A command that does not exist: ctr fails, the error names it (it
    travels from the runtime through its --log JSON file to the shim), and
    nothing is left behind."""
    cid = ctr.new_id()
    p = ctr.run(cid, "/no/such/binary", opts=("--rm",), check=False)
    assert p.returncode != 0
    assert "/no/such/binary" in p.stderr, ctr.cd.explain(p.stderr)
    # --rm does not clean up after a failed start: remove what is left.
    ctr.cd.remove(cid)
    assert cid not in ctr.cd.containers()


def test_many_sequential_runs(ctr):
    """A few quick runs in a row: nothing accumulates between them."""
    for i in range(5):
        p = ctr.run(ctr.new_id(), "echo", str(i), opts=("--rm",))
        assert p.stdout == "%d\n" % i
