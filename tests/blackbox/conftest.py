"""Shared fixtures for the black-box tests.

The tests drive the real binaries.  The runtime under test is
build/src/runtime/berth-runtime unless BERTH_RUNTIME names another runc
compatible binary (the suite also runs against runc, which keeps the tests
honest about what "runc compatible" means).

Every test gets its own state root and its own cgroup parent; after the test
the fixtures check that nothing was left behind: no container state, no
process, no mount, no cgroup.
"""
import copy
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BERTH_BUILD_DIR", os.path.join(TOP, "build"))
RUNTIME = os.environ.get("BERTH_RUNTIME",
                         os.path.join(BUILD, "src", "runtime", "berth-runtime"))
IMAGE_DIR = os.environ.get("BERTH_TEST_IMAGE",
                           os.path.join(BUILD, "test-image"))
CGROUP_PARENT = "berth-test-%d" % os.getpid()
CGROUP_ROOT = "/sys/fs/cgroup"


def meson_option(name):
    """The value of build option NAME in the build directory, as text."""
    out = subprocess.run(["meson", "configure", BUILD], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return parts[1]
    raise AssertionError("no option %s in meson configure" % name)


def cgroup_hierarchies():
    """Mount points of every cgroup hierarchy (v1 controllers, cgroup2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] in ("cgroup", "cgroup2"):
                out.append(fields[4])
    return out


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f if l.split()[4].startswith(path)]


@pytest.fixture(scope="session")
def image():
    """The busybox test image: IMAGE_DIR/bundle (OCI bundle), IMAGE_DIR/oci."""
    if not os.path.exists(os.path.join(IMAGE_DIR, "bundle", "config.json")):
        subprocess.run([os.path.join(TOP, "scripts", "mkimage-busybox.sh"),
                        IMAGE_DIR], check=True)
    return IMAGE_DIR


@pytest.fixture(scope="session", autouse=True)
def cgroup_parent_cleanup():
    yield
    for h in cgroup_hierarchies():
        p = os.path.join(h, CGROUP_PARENT)
        if os.path.isdir(p):
            for sub in sorted((os.path.join(d, n) for d, ds, _ in os.walk(p)
                               for n in ds), key=len, reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
            try:
                os.rmdir(p)
            except OSError:
                pass


class Bundle:
    """A bundle directory whose rootfs is the shared, read-only image rootfs."""

    def __init__(self, path, config):
        self.path = path
        self.config = config

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        return self

    @property
    def process(self):
        return self.config["process"]

    def set_args(self, *args):
        self.config["process"]["args"] = list(args)
        return self.write()


@pytest.fixture
def bundle(image, tmp_path):
    """A fresh bundle: the image's config.json with root.path pointing at the
    shared rootfs (read-only), a cgroupsPath under this run's test parent,
    written to disk.  Change .config and call .write() to adjust."""
    with open(os.path.join(image, "bundle", "config.json")) as f:
        config = json.load(f)
    config["root"] = {"path": os.path.join(image, "bundle", "rootfs"),
                      "readonly": True}
    d = tmp_path / "bundle"
    d.mkdir()
    b = Bundle(str(d), config)
    b.cgroup_name = uuid.uuid4().hex[:12]
    config["linux"]["cgroupsPath"] = "/%s/%s" % (CGROUP_PARENT, b.cgroup_name)
    return b.write()


class Runtime:
    """Runs the runtime under test with a private --root."""

    def __init__(self, binary, root):
        self.binary = binary
        self.root = root
        self.ids = []

    def cmd(self, *args):
        return [self.binary, "--root", self.root] + [str(a) for a in args]

    def run(self, *args, check=True, input=None, timeout=30, env=None,
            stdin=None, capture=True, pass_fds=()):
        p = subprocess.run(self.cmd(*args), input=input, timeout=timeout,
                           env=env, stdin=stdin, pass_fds=pass_fds,
                           stdout=subprocess.PIPE if capture else None,
                           stderr=subprocess.PIPE if capture else None,
                           text=True)
        if check and p.returncode != 0:
            raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
                " ".join(self.cmd(*args)), p.returncode, p.stdout, p.stderr))
        return p

    def new_id(self):
        cid = "t" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def state(self, cid):
        return json.loads(self.run("state", cid).stdout)

    def wait_status(self, cid, status, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            p = self.run("state", cid, check=False)
            if p.returncode == 0 and json.loads(p.stdout)["status"] == status:
                return
            time.sleep(0.02)
        raise AssertionError("%s never reached %s" % (cid, status))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0): read its state.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def runtime(tmp_path, bundle):
    root = tmp_path / "state"
    root.mkdir()
    rt = Runtime(RUNTIME, str(root))
    yield rt
    # Clean up what the test left, then check that nothing leaked.
    pids = []
    for cid in rt.ids:
        p = rt.run("state", cid, check=False)
        if p.returncode == 0:
            try:
                pids.append(json.loads(p.stdout).get("pid", 0))
            except ValueError:
                pass
            rt.run("delete", "--force", cid, check=False)
    leaks = []
    for pid in pids:
        if pid and pid_alive(pid):
            leaks.append("process %d still alive" % pid)
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    for cid in rt.ids:
        if os.path.exists(os.path.join(str(root), cid)):
            leaks.append("state of %s left in --root" % cid)
    for m in mounts_under(str(tmp_path)):
        leaks.append("mount left: %s" % m)
    for h in cgroup_hierarchies():
        p = os.path.join(h, CGROUP_PARENT, bundle.cgroup_name)
        if os.path.isdir(p):
            leaks.append("cgroup left: %s" % p)
            try:
                os.rmdir(p)
            except OSError:
                pass
    shutil.rmtree(str(root), ignore_errors=True)
    assert not leaks, "leaked: " + "; ".join(leaks)


def copy_config(bundle):
    return copy.deepcopy(bundle.config)
