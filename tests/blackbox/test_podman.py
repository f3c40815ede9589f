"""podman (4.3, with conmon) driving the runtime under test.

Podman runs with everything private to one temporary directory: --root,
--runroot, --tmpdir, the CNI config dir, a containers.conf (CONTAINERS_CONF),
storage.conf and registries.conf, and a signature policy for the pull of
the test image (oci:IMAGE_DIR/oci:latest).  Containers run with
--network none, --cgroup-manager cgroupfs and --cgroup-parent
/berth-test-<pid>-podman.

podman is given `--runtime <dir>/<basename of RUNTIME>`: a wrapper that logs
argv and execs `RUNTIME --root <dir>/rr "$@"`.  The wrapper supplies --root
because podman does not hand its --runtime-flag options to the cleanup
process that conmon starts when a container exits (that one would use the
runtime's default root).  The basename is listed in runtime_supports_json,
as runc and crun are by default, so podman passes `--log-format=json --log
FILE` and reads errors from that file.  What podman and conmon call:

    RUNTIME --log-format=json --log L create --bundle B --pid-file P
            [--console-socket S] ID                       (conmon)
    RUNTIME --log-format=json --log L exec --pid-file P --process F
            --detach [--console-socket S] ID              (conmon)
    RUNTIME start ID / kill ID SIG / pause ID / resume ID / state ID /
            delete --force ID                             (podman)

conmon is the subreaper of the container's processes and reports their exit
codes.  Skipped when podman or conmon is not installed.
"""
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import IMAGE_DIR
import clientutil as cu

CGROUP_PARENT = "berth-test-%d-podman" % os.getpid()
# containers/image keeps a blob cache here when root pulls; no option moves
# it, so the fixture removes what it created.
BLOB_CACHE = "/var/lib/containers/cache/blob-info-cache-v1.boltdb"

for _tool in ("podman", "conmon"):
    if shutil.which(_tool) is None:
        pytest.skip("%s is not installed" % _tool, allow_module_level=True)


def limit(res, want):
    """WANT, lowered to the hard limit of RES: podman's defaults exceed the
    hard limits where root lacks CAP_SYS_RESOURCE."""
    hard = resource.getrlimit(res)[1]
    if hard == resource.RLIM_INFINITY:
        return want
    return min(want, hard)


NOFILE = limit(resource.RLIMIT_NOFILE, 1024)
NPROC = limit(resource.RLIMIT_NPROC, 4096)


class Podman:
    def __init__(self, top, runtime):
        self.top = top
        self.runtime = runtime
        self.rt_root = os.path.join(top, "rr")
        self.argv_log = os.path.join(top, "runtime-argv.log")
        os.makedirs(os.path.join(top, "bin"))
        os.makedirs(os.path.join(top, "tmp"))
        os.makedirs(os.path.join(top, "cni"))
        name = os.path.basename(runtime)
        self.wrapper = cu.write_wrapper(os.path.join(top, "bin", name),
                                        runtime, self.argv_log,
                                        ["--root", self.rt_root])
        self.policy = self._write("policy.json", json.dumps(
            {"default": [{"type": "insecureAcceptAnything"}]}))
        self._write("registries.conf", "")
        self._write("containers.conf", """[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
image_copy_tmp_dir = "{top}/tmp"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "{name}"]

[network]
network_config_dir = "{top}/cni"
""".format(nofile=NOFILE, nproc=NPROC, top=top, name=name))
        self.env = dict(os.environ)
        self.env.update({
            "CONTAINERS_CONF": os.path.join(top, "containers.conf"),
            "CONTAINERS_STORAGE_CONF": os.path.join(top, "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": os.path.join(top, "registries.conf"),
        })
        self.driver = None
        self.image = None

    def _write(self, name, text):
        path = os.path.join(self.top, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def set_driver(self, driver):
        self.driver = driver
        self._write("storage.conf", """[storage]
driver = "{d}"
runroot = "{top}/runroot"
graphroot = "{top}/root"
""".format(d=driver, top=self.top))

    def cmd(self, *args):
        return ["podman", "--root", os.path.join(self.top, "root"),
                "--runroot", os.path.join(self.top, "runroot"),
                "--tmpdir", os.path.join(self.top, "tmp"),
                "--storage-driver", self.driver,
                "--cgroup-manager", "cgroupfs",
                "--events-backend", "file",
                "--network-config-dir", os.path.join(self.top, "cni"),
                "--runtime", self.wrapper] + [str(a) for a in args]

    def __call__(self, *args, check=True, timeout=60, input=None):
        p = subprocess.run(self.cmd(*args), input=input, timeout=timeout,
                           env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           stdin=None if input is not None
                           else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(self.explain(
                "podman %s exited %d\nstdout: %s\nstderr: %s" % (
                    " ".join(str(a) for a in args), p.returncode, p.stdout,
                    p.stderr)))
        return p

    def explain(self, msg):
        return "%s\n--- runtime argv (last lines):\n%s" % (
            msg, cu.tail(self.argv_log, 15))

    def pull(self):
        oci = "oci:%s:latest" % os.path.join(IMAGE_DIR, "oci")
        p = self("pull", "-q", "--signature-policy", self.policy, oci,
                 check=False, timeout=180)
        if p.returncode == 0:
            self.image = p.stdout.split()[-1]
        return p

    def names(self):
        return self("ps", "-a", "--format", "{{.Names}}").stdout.split()

    def reset(self):
        """Removes every container and image, then podman's storage."""
        self("rm", "-a", "-f", "-t", "0", check=False, timeout=120)
        self("rmi", "-a", "-f", check=False, timeout=120)
        self("system", "reset", "-f", check=False, timeout=120)
        # Anything still running for this podman (conmon, cleanup processes,
        # hung runtime calls) names the top directory.
        cu.kill_pids(cu.pids_matching(self.top))
        cu.unmount_all_under(self.top)


@pytest.fixture(scope="module")
def podman(image):
    runtime = cu.runtime_binary()
    top = tempfile.mkdtemp(prefix="berth-pm-", dir="/tmp")
    made = [d for d in (BLOB_CACHE, os.path.dirname(BLOB_CACHE),
                        os.path.dirname(os.path.dirname(BLOB_CACHE)))
            if not os.path.exists(d)]
    pm = Podman(top, runtime)
    try:
        errors = []
        for driver in ("overlay", "vfs"):
            pm.set_driver(driver)
            p = pm.pull()
            if p.returncode == 0:
                break
            errors.append("%s: %s" % (driver, p.stderr))
            pm.reset()
            for d in ("root", "runroot"):
                shutil.rmtree(os.path.join(top, d), ignore_errors=True)
        else:
            raise AssertionError("podman pull failed:\n" + "\n".join(errors))
        yield pm
    finally:
        try:
            pm.reset()
        finally:
            cu.unmount_all_under(top)
            cu.remove_cgroup_tree(CGROUP_PARENT)
            shutil.rmtree(top, ignore_errors=True)
            # What this fixture created, deepest first: the cache file, the
            # cache directory (podman's own), /var/lib/containers if empty.
            for path in made:
                try:
                    if path == BLOB_CACHE:
                        os.unlink(path)
                    elif path == os.path.dirname(BLOB_CACHE):
                        shutil.rmtree(path)
                    else:
                        os.rmdir(path)
                except OSError:
                    pass


class Pm:
    """Per-test helper: named containers, and a leak check at the end."""

    def __init__(self, podman):
        self.p = podman
        self.names = []
        self.pids = []

    def __call__(self, *args, **kw):
        return self.p(*args, **kw)

    def new_name(self):
        name = "berth-" + uuid.uuid4().hex[:10]
        self.names.append(name)
        return name

    def run_args(self, name, *opts):
        return ["run", "--name", name, "--network", "none",
                "--cgroup-parent", "/" + CGROUP_PARENT] + list(opts)

    def run(self, *cmd, opts=(), check=True, input=None, timeout=60):
        name = self.new_name()
        return self.p(*self.run_args(name, *opts) + [self.p.image] +
                      list(cmd), check=check, input=input, timeout=timeout)

    def run_detached(self, *cmd, opts=()):
        """Starts a detached container; returns (name, host pid)."""
        name = self.new_name()
        self.p(*self.run_args(name, "-d", *opts) + [self.p.image] + list(cmd))
        st = self.state(name)
        assert st["Status"] == "running", self.p.explain(str(st))
        self.pids.append(st["Pid"])
        return name, st["Pid"]

    def state(self, name):
        out = self.p("inspect", "--format", "{{json .State}}", name).stdout
        return json.loads(out)

    def wait_exit(self, name, timeout=30):
        p = self.p("wait", name, timeout=timeout)
        return int(p.stdout.split()[-1])

    def cleanup_and_check(self):
        leaks = []
        for name in self.names:
            self.p("rm", "-f", "-t", "0", "--ignore", name, check=False)
        left = [n for n in self.p.names() if n in self.names]
        if left:
            leaks.append("containers could not be removed: %s" % left)
        # The tests run one at a time: once a test's containers are gone,
        # nothing may stay in the runtime's root, in the cgroup parent
        # (but conmon's own cgroup) or among the container mounts.  Dot
        # entries are the runtime's caches, not containers.
        def containers():
            if not os.path.isdir(self.p.rt_root):
                return []
            return [n for n in os.listdir(self.p.rt_root)
                    if not n.startswith(".")]
        state = cu.wait_for(lambda: not containers(), timeout=10)
        if not state:
            leaks.append("runtime state left: %s" % containers())

        def container_cgroups():
            return sorted({d for top in cu.cgroup_dirs(CGROUP_PARENT)
                           for d in os.listdir(top)
                           if os.path.isdir(os.path.join(top, d))
                           and d != "conmon"})
        if not cu.wait_for(lambda: not container_cgroups(), timeout=10):
            leaks.append("cgroups left under /%s: %s"
                         % (CGROUP_PARENT, container_cgroups()))
            for d in container_cgroups():
                cu.remove_cgroup_tree("%s/%s" % (CGROUP_PARENT, d))

        def merged():
            return [m for m in cu.mounts_under(self.p.top)
                    if m.endswith("/merged")]
        if not cu.wait_for(lambda: not merged(), timeout=10):
            leaks.append("mounts left: %s" % merged())
        for pid in self.pids:
            if cu.wait_for(lambda: not cu.pid_alive(pid), timeout=5) is False:
                leaks.append("process %d still alive" % pid)
                cu.kill_pids([pid])
        assert not leaks, self.p.explain("leaked: " + "; ".join(leaks))


@pytest.fixture
def pm(podman):
    h = Pm(podman)
    yield h
    h.cleanup_and_check()


def test_run_rm_echo(pm):
    p = pm.run("echo", "hi", opts=("--rm",))
    assert p.stdout == "hi\n"
    assert pm.names[-1] not in pm.p.names()


def test_run_exit_code_propagates(pm):
    p = pm.run("sh", "-c", "echo out; echo err >&2; exit 3", opts=("--rm",),
               check=False)
    assert p.returncode == 3, pm.p.explain(p.stderr)
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr


def test_run_stdin(pm):
    p = pm.run("sh", "-c", "cat; echo done", opts=("--rm", "-i"),
               input="one\ntwo\n")
    assert p.stdout == "one\ntwo\ndone\n"


def test_run_ulimits_env_workdir(pm):
    p = pm.run("sh", "-c", 'ulimit -n; ulimit -u; echo "$FOO"; pwd',
               opts=("--rm", "-e", "FOO=bar", "-w", "/tmp"))
    assert p.stdout.split() == [str(NOFILE), str(NPROC), "bar", "/tmp"]


def test_detached_exec_stop_rm(pm):
    name, pid = pm.run_detached("sleep", "100")
    assert cu.pid_alive(pid)
    p = pm("exec", name, "echo", "x")
    assert p.stdout == "x\n"
    p = pm("exec", name, "sh", "-c", "echo err >&2; exit 4", check=False)
    assert p.returncode == 4, pm.p.explain(p.stderr)
    assert "err" in p.stderr
    p = pm("exec", name, "sh", "-c", "readlink /proc/1/ns/pid")
    assert p.stdout.strip() == os.readlink("/proc/%d/ns/pid" % pid)
    # sleep, as pid 1, ignores SIGTERM: stop escalates to SIGKILL after 1s.
    pm("stop", "-t", "1", name, timeout=60)
    st = pm.state(name)
    assert st["Status"] == "exited" and st["ExitCode"] == 137, st
    assert cu.wait_for(lambda: not cu.pid_alive(pid))
    pm("rm", name)
    assert name not in pm.p.names()


def test_stop_delivers_sigterm(pm):
    name, pid = pm.run_detached(
        "sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done")
    pm("stop", "-t", "30", name, timeout=60)
    st = pm.state(name)
    assert st["Status"] == "exited" and st["ExitCode"] == 42, st
    pm("rm", name)


def test_kill_and_wait(pm):
    name, pid = pm.run_detached("sleep", "100")
    pm("kill", name)  # SIGKILL
    assert pm.wait_exit(name) == 137
    assert cu.wait_for(lambda: not cu.pid_alive(pid))


def test_rm_force_running(pm):
    name, pid = pm.run_detached("sleep", "100")
    pm("rm", "-f", "-t", "0", name)
    assert name not in pm.p.names()
    assert cu.wait_for(lambda: not cu.pid_alive(pid))


def test_run_with_terminal(pm):
    name = pm.new_name()
    code, out = cu.run_pty(pm.p.cmd(*pm.run_args(name, "-t", "--rm") + [
        pm.p.image, "sh", "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; exit 5"]),
        env=pm.p.env)
    assert re.search(r"/dev/pts/\d+\n", out), pm.p.explain(out)
    assert "all-tty" in out, pm.p.explain(out)
    assert code == 5, pm.p.explain(out)


def test_exec_with_terminal(pm):
    name, _ = pm.run_detached("sleep", "100")
    code, out = cu.run_pty(pm.p.cmd(
        "exec", "-t", name, "sh", "-c", "tty; [ -t 0 ] && echo in-tty; exit 6"),
        env=pm.p.env)
    assert re.search(r"/dev/pts/\d+\n", out), pm.p.explain(out)
    assert "in-tty" in out, pm.p.explain(out)
    assert code == 6, pm.p.explain(out)
    assert pm.state(name)["Status"] == "running"


def test_pause_unpause(pm):
    name, pid = pm.run_detached("sleep", "100")
    pm("pause", name)
    assert pm.state(name)["Status"] == "paused"
    pm("unpause", name)
    assert pm.state(name)["Status"] == "running"
    assert pm("exec", name, "echo", "alive").stdout == "alive\n"


def test_cgroup_under_parent(pm):
    name, pid = pm.run_detached("sleep", "100")
    cid = pm("inspect", "--format", "{{.Id}}", name).stdout.strip()
    want = "/%s/libpod-%s" % (CGROUP_PARENT, cid)
    cgs = cu.pid_cgroups(pid)
    wrong = {c: p for c, p in cgs.items() if p != want}
    assert cgs and not wrong, "not in %s: %s" % (want, wrong)


def test_command_not_found_is_127(pm):
    """podman maps the runtime's error text to exit codes: "no such file or
    directory" / "executable file not found" give 127, "permission denied"
    126.  The text comes from the runtime's --log file (JSON)."""
    p = pm.run("/no/such/binary", opts=("--rm",), check=False)
    assert p.returncode == 127, pm.p.explain(p.stderr)
    assert "/no/such/binary" in p.stderr


def test_command_not_executable_is_126(pm):
    p = pm.run("/etc/passwd", opts=("--rm",), check=False)
    assert p.returncode == 126, pm.p.explain(p.stderr)
    assert "permission denied" in p.stderr.lower(), pm.p.explain(p.stderr)
