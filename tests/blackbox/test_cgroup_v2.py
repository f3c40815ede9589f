"""The pure cgroup v2 code paths, on a hybrid host.

The runtime runs in a private mount namespace where the v1 hierarchies are
unmounted and the host's cgroup2 hierarchy is mounted at /sys/fs/cgroup, so
it sees a v2-only machine.  This host's cgroup2 has no controllers (they are
bound to v1), so limits cannot be checked here; what v2 does without
controllers is: the cgroup itself, placing processes, freezing
(cgroup.freeze), the eBPF device filter, core "unified" files and stats.
"""
import json
import os
import subprocess
import time

import pytest

from conftest import CGROUP_PARENT, RUNTIME

UNIFIED = "/sys/fs/cgroup/unified"

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(UNIFIED, "cgroup.procs")),
    reason="no cgroup2 hierarchy at %s" % UNIFIED)

# Unmount the v1 tree in a private mount namespace and put cgroup2 where a
# v2-only host has it, then exec the runtime.
WRAPPER = """#!/bin/sh
exec unshare -m sh -c '
mount --make-rprivate / &&
umount -R -l /sys/fs/cgroup &&
mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
exec "$0" "$@"' "%s" "$@"
"""


@pytest.fixture
def v2(runtime, tmp_path):
    """The runtime fixture, running the runtime as on a v2-only host."""
    wrapper = tmp_path / "berth-v2"
    wrapper.write_text(WRAPPER % RUNTIME)
    wrapper.chmod(0o755)
    runtime.binary = str(wrapper)
    return runtime


def cgroup_dir(bundle):
    return os.path.join(UNIFIED, CGROUP_PARENT, bundle.cgroup_name)


def start(v2, bundle, *args):
    """run -d; the container keeps our stdio, so it goes to a file."""
    bundle.set_args(*args)
    cid = v2.new_id()
    log = os.path.join(os.path.dirname(bundle.path), cid + ".err")
    with open(log, "w") as err:
        p = subprocess.run(v2.cmd("run", "-d", "--bundle", bundle.path, cid),
                           stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=30)
    with open(log) as f:
        assert p.returncode == 0, f.read()
    return cid, v2.state(cid)["pid"]


def test_v2_places_the_process(v2, bundle):
    cid, pid = start(v2, bundle, "sleep", "100")
    with open("/proc/%d/cgroup" % pid) as f:
        lines = f.read().splitlines()
    want = "0::/%s/%s" % (CGROUP_PARENT, bundle.cgroup_name)
    assert want in lines, lines
    with open(os.path.join(cgroup_dir(bundle), "cgroup.procs")) as f:
        assert str(pid) in f.read().split()
    v2.run("delete", "--force", cid)
    assert not os.path.exists(cgroup_dir(bundle))


def test_v2_pause_uses_cgroup_freeze(v2, bundle):
    cid, pid = start(v2, bundle, "sleep", "100")
    v2.run("pause", cid)
    assert v2.state(cid)["status"] == "paused"
    with open(os.path.join(cgroup_dir(bundle), "cgroup.freeze")) as f:
        assert f.read().strip() == "1"
    with open(os.path.join(cgroup_dir(bundle), "cgroup.events")) as f:
        assert "frozen 1" in f.read()
    v2.run("resume", cid)
    assert v2.state(cid)["status"] == "running"
    with open(os.path.join(cgroup_dir(bundle), "cgroup.freeze")) as f:
        assert f.read().strip() == "0"
    v2.run("delete", "--force", cid)


def _devnode(bundle):
    bundle.config["linux"]["devices"] = [{
        "path": "/dev/berthdev", "type": "c", "major": 1, "minor": 200,
        "fileMode": 0o666, "uid": 0, "gid": 0}]


def test_v2_device_filter_denies(v2, bundle):
    """deny-all plus the defaults: /dev/null works, c 1:200 is refused by
    the eBPF program (EPERM), not by a missing driver (ENXIO)."""
    _devnode(bundle)
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"}]
    bundle.set_args("sh", "-c",
                    "echo x >/dev/null && echo NULL-OK; "
                    "true >/dev/berthdev && echo OPENED")
    cid = v2.new_id()
    p = v2.run("run", "--bundle", bundle.path, cid, check=False)
    assert "NULL-OK" in p.stdout, p.stderr
    assert "OPENED" not in p.stdout
    assert "Operation not permitted" in p.stderr, p.stderr


def test_v2_device_filter_allows(v2, bundle):
    _devnode(bundle)
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 200,
         "access": "rw"}]
    bundle.set_args("sh", "-c", "true >/dev/berthdev && echo OPENED")
    cid = v2.new_id()
    p = v2.run("run", "--bundle", bundle.path, cid, check=False)
    assert "Operation not permitted" not in p.stderr
    assert "No such device" in p.stderr, p.stderr


def test_v2_unified_core_file(v2, bundle):
    bundle.config["linux"]["resources"]["unified"] = {
        "cgroup.max.descendants": "7"}
    cid, pid = start(v2, bundle, "sleep", "100")
    with open(os.path.join(cgroup_dir(bundle),
                           "cgroup.max.descendants")) as f:
        assert f.read().strip() == "7"
    v2.run("update", "-r", "-", cid,
           input=json.dumps({"unified": {"cgroup.max.descendants": "3"}}))
    with open(os.path.join(cgroup_dir(bundle),
                           "cgroup.max.descendants")) as f:
        assert f.read().strip() == "3"
    v2.run("delete", "--force", cid)


def test_v2_unified_unknown_key_names_it(v2, bundle):
    bundle.config["linux"]["resources"]["unified"] = {
        "memory.high": "100000000"}
    bundle.set_args("true")
    cid = v2.new_id()
    p = v2.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode != 0
    assert "memory.high" in p.stderr, p.stderr


def test_v2_stats_and_ps(v2, bundle):
    cid, pid = start(v2, bundle, "sleep", "100")
    ev = json.loads(v2.run("events", "--stats", cid).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    assert isinstance(ev["data"], dict)
    pids = json.loads(v2.run("ps", "--format", "json", cid).stdout)
    assert pids == [pid]
    v2.run("kill", cid, "KILL")
    deadline = time.time() + 10
    while v2.state(cid)["status"] != "stopped" and time.time() < deadline:
        time.sleep(0.02)
    v2.run("delete", cid)
    assert not os.path.exists(cgroup_dir(bundle))
