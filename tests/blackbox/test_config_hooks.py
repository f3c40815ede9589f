"""config.json `hooks`: the six kinds, their order, the state on stdin,
env/args, timeout, and what a failing hook does (runtime-spec lifecycle:
a failing prestart/createRuntime/createContainer/startContainer hook makes
the operation fail and the lifecycle continue at "destroy" -- so poststop
hooks still run --; a failing poststart/poststop hook is only a warning).

Hook scripts live in a host directory that is also bind-mounted at /tmp in
the container: host-side hooks use the host path, startContainer (whose
path resolves inside the container) the in-container one; every hook
appends "KIND <state JSON>" to the same log."""
import json
import os
import subprocess
import time
import uuid

import pytest

from config_helpers import IS_RUNC, read, run_fails, skip_for_runc

KINDS = ["prestart", "createRuntime", "createContainer", "startContainer",
         "poststart", "poststop"]

HOOK_SH = """\
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
kind=$1 log=$2 rc=${3:-0}
state=$(cat)
echo "$kind $state" >> "$log"
exit "$rc"
"""

ENV_SH = """\
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cat >/dev/null
echo "var=$BERTH_HOOK_VAR args=$*" >> "$1"
"""


class Hooks:
    def __init__(self, bundle, tmp_path):
        self.bundle = bundle
        self.dir = tmp_path / "hooks"
        self.dir.mkdir()
        os.chmod(str(self.dir), 0o777)
        (self.dir / "hook.sh").write_text(HOOK_SH)
        (self.dir / "env.sh").write_text(ENV_SH)
        self.log = self.dir / "log"
        self.log.write_text("")
        os.chmod(str(self.log), 0o666)
        bundle.config["mounts"].append({
            "destination": "/tmp", "type": "bind", "source": str(self.dir),
            "options": ["rbind"]})
        bundle.config["hooks"] = {}

    def host(self, name):
        return str(self.dir / name)

    def add(self, kind, rc=0, timeout=None):
        """A logging hook for KIND; exit code RC."""
        if kind == "startContainer":
            args = ["sh", "/tmp/hook.sh", kind, "/tmp/log"]
        else:
            args = ["sh", self.host("hook.sh"), kind, str(self.log)]
        if rc:
            args.append(str(rc))
        h = {"path": "/bin/sh", "args": args}
        if timeout:
            h["timeout"] = timeout
        self.bundle.config["hooks"].setdefault(kind, []).append(h)
        return h

    def add_all(self):
        for k in KINDS:
            self.add(k)

    def entries(self):
        out = []
        for line in read(str(self.log)).splitlines():
            kind, _, rest = line.partition(" ")
            if kind in KINDS:
                out.append((kind, json.loads(rest)))
            else:
                out.append((kind, rest))
        return out

    def kinds(self):
        return [k for k, _ in self.entries()]


def _create(runtime, bundle, cid, tmp_path):
    """`create` with stdio on files (the container keeps them open)."""
    with open(str(tmp_path / "create.out"), "w") as out, \
            open(str(tmp_path / "create.err"), "w") as err:
        return subprocess.run(runtime.cmd("create", "--bundle", bundle.path,
                                          cid),
                              stdin=subprocess.DEVNULL, stdout=out,
                              stderr=err, timeout=30)


def test_hooks_all_six_in_order(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    hooks.add_all()
    bundle.set_args("sh", "-c", "echo process >> /tmp/log")
    cid = runtime.new_id()
    runtime.run("run", "--bundle", bundle.path, cid)
    kinds = hooks.kinds()
    assert sorted(kinds) == sorted(KINDS + ["process"]), kinds
    order = [k for k in kinds if k != "process"]
    if IS_RUNC:
        # runc 1.1.5 runs startContainer (in the container, after the start
        # handshake) concurrently with poststart.
        assert order[:3] == KINDS[:3] and order[5] == "poststop"
        assert set(order[3:5]) == {"startContainer", "poststart"}
    else:
        assert order == KINDS
    assert kinds.index("startContainer") < kinds.index("process")
    assert kinds.index("process") < kinds.index("poststop")


def test_hooks_receive_state_on_stdin(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    hooks.add_all()
    bundle.set_args("true")
    cid = runtime.new_id()
    runtime.run("run", "--bundle", bundle.path, cid)
    states = dict(hooks.entries())
    assert set(states) == set(KINDS)
    for kind, st in states.items():
        assert st["id"] == cid, kind
        assert st["ociVersion"], kind
        assert os.path.realpath(st["bundle"]) == \
            os.path.realpath(bundle.path), kind
        assert "status" in st, kind
    pid = states["createRuntime"]["pid"]
    assert pid > 0
    for kind in ("prestart", "poststart"):
        assert states[kind]["pid"] == pid, kind
    assert states["poststop"]["status"] == "stopped"
    assert states["createRuntime"]["status"] == "creating"


@skip_for_runc("gives createContainer/startContainer hooks the pid as seen "
               "in the container (1), not the host pid, and poststart the "
               "status 'created'")
def test_hooks_in_container_get_host_pid(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    hooks.add_all()
    bundle.set_args("true")
    cid = runtime.new_id()
    runtime.run("run", "--bundle", bundle.path, cid)
    states = dict(hooks.entries())
    pid = states["createRuntime"]["pid"]
    assert states["createContainer"]["pid"] == pid
    assert states["startContainer"]["pid"] == pid
    assert states["createContainer"]["status"] == "creating"
    assert states["startContainer"]["status"] == "created"
    assert states["poststart"]["status"] == "running"


@skip_for_runc("runs poststart hooks at create, not at start")
def test_hooks_follow_create_start_delete(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    hooks.add_all()
    bundle.set_args("sh", "-c", "echo process >> /tmp/log")
    cid = runtime.new_id()
    p = _create(runtime, bundle, cid, tmp_path)
    assert p.returncode == 0, read(str(tmp_path / "create.err"))
    assert hooks.kinds() == KINDS[:3]
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    kinds = hooks.kinds()
    assert set(kinds) == set(KINDS[:5] + ["process"])
    assert "poststop" not in kinds
    runtime.run("delete", cid)
    assert hooks.kinds()[-1] == "poststop"
    assert hooks.kinds().count("poststop") == 1


def test_hook_in_container_namespaces(bundle, runtime, tmp_path):
    """createContainer and startContainer run in the container's
    namespaces; createRuntime in the runtime's."""
    hooks = Hooks(bundle, tmp_path)
    script = ("PATH=/usr/sbin:/usr/bin:/sbin:/bin; cat >/dev/null;"
              " echo \"$1 $(readlink /proc/self/ns/mnt) "
              "$(readlink /proc/self/ns/net) $(hostname)\" >> \"$2\"")
    (hooks.dir / "ns.sh").write_text(script)
    bundle.config["hostname"] = "berth-hooked"
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sh", "args": [
            "sh", hooks.host("ns.sh"), "createRuntime", str(hooks.log)]}],
        "createContainer": [{"path": "/bin/sh", "args": [
            "sh", hooks.host("ns.sh"), "createContainer", str(hooks.log)]}],
        "startContainer": [{"path": "/bin/sh", "args": [
            "sh", "/tmp/ns.sh", "startContainer", "/tmp/log"]}],
    }
    bundle.set_args("sh", "-c", "echo \"process $(readlink /proc/self/ns/mnt)"
                    " $(readlink /proc/self/ns/net) $(hostname)\" >> /tmp/log")
    cid = runtime.new_id()
    runtime.run("run", "--bundle", bundle.path, cid)
    rows = {l.split()[0]: l.split()[1:] for l in
            read(str(hooks.log)).splitlines()}
    host_mnt = os.readlink("/proc/self/ns/mnt")
    host_net = os.readlink("/proc/self/ns/net")
    assert rows["createRuntime"][:2] == [host_mnt, host_net]
    proc = rows["process"]
    assert proc[0] != host_mnt and proc[1] != host_net
    assert rows["createContainer"][:2] == proc[:2]
    assert rows["startContainer"] == proc


def test_hook_env_and_args(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    bundle.config["hooks"] = {"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", hooks.host("env.sh"), str(hooks.log), "two words",
                 "x"],
        "env": ["BERTH_HOOK_VAR=hello-hook", "OTHER=1"]}]}
    bundle.set_args("true")
    cid = runtime.new_id()
    runtime.run("run", "--bundle", bundle.path, cid)
    assert read(str(hooks.log)).strip() == \
        "var=hello-hook args=%s two words x" % hooks.log


def test_hook_args0_is_passed_as_argv0(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    (hooks.dir / "argv0.sh").write_text(
        "cat >/dev/null; echo \"argv0=$0\" >> \"$1\"")
    # /bin/busybox dispatches on argv[0]: "sh" makes it a shell.
    bundle.config["hooks"] = {"createRuntime": [{
        "path": "/bin/busybox",
        "args": ["sh", hooks.host("argv0.sh"), str(hooks.log)]}]}
    bundle.set_args("true")
    cid = runtime.new_id()
    runtime.run("run", "--bundle", bundle.path, cid)
    assert read(str(hooks.log)).strip() == "argv0=" + hooks.host("argv0.sh")


def test_hook_timeout(bundle, runtime, tmp_path):
    marker = "berth-hook-%s" % uuid.uuid4().hex[:8]
    # argv[0] carries the marker; sleep itself is the hook process.
    bundle.config["hooks"] = {"prestart": [{
        "path": "/bin/sleep", "args": [marker, "20"], "timeout": 1}]}
    bundle.write()
    t0 = time.time()
    p = run_fails(runtime, bundle)
    assert time.time() - t0 < 10
    assert "time" in p.stderr.lower()     # "timeout", "timed out"
    # The hook itself was killed.
    time.sleep(0.2)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = read("/proc/%s/cmdline" % pid)
            except OSError:
                continue
            assert marker not in cmd, "hook %s still running" % pid


@pytest.mark.parametrize("kind", ["prestart", "createRuntime",
                                  "createContainer", "startContainer"])
def test_failing_hook_fails_run_and_leaves_nothing(bundle, runtime, tmp_path,
                                                   kind):
    hooks = Hooks(bundle, tmp_path)
    hooks.add_all()
    bundle.config["hooks"][kind] = []
    hooks.add(kind, rc=3)
    bundle.write()
    p = run_fails(runtime, bundle, "echo process >> /tmp/log")
    kinds = hooks.kinds()
    assert "process" not in kinds
    # Nothing after the failed hook ran, except poststop (checked below).
    later = KINDS[KINDS.index(kind) + 1:-1]
    if IS_RUNC:
        # runc 1.1.5 runs poststart at create, and concurrently with
        # startContainer.
        later = [k for k in later if k != "poststart"]
    assert not set(later) & set(kinds), kinds
    assert p.stderr


@pytest.mark.parametrize("kind", ["prestart", "createRuntime",
                                  "createContainer"])
def test_failing_create_hook_fails_create(bundle, runtime, tmp_path, kind):
    hooks = Hooks(bundle, tmp_path)
    hooks.add(kind, rc=1)
    bundle.set_args("true")
    cid = runtime.new_id()
    p = _create(runtime, bundle, cid, tmp_path)
    assert p.returncode != 0
    assert runtime.run("state", cid, check=False).returncode != 0
    assert not os.path.exists(os.path.join(runtime.root, cid))


@pytest.mark.parametrize("kind", ["prestart", "createRuntime",
                                  "createContainer", "startContainer"])
def test_failing_hook_still_runs_poststop(bundle, runtime, tmp_path, kind):
    """runtime-spec lifecycle: continue at step 12 (destroy), then 13
    (poststop hooks)."""
    hooks = Hooks(bundle, tmp_path)
    hooks.add(kind, rc=1)
    hooks.add("poststop")
    bundle.write()
    run_fails(runtime, bundle, "true")
    assert hooks.kinds() == [kind, "poststop"]


@skip_for_runc("treats a failing poststart hook as fatal and kills the "
               "container")
def test_failing_poststart_hook_is_only_a_warning(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    hooks.add("poststart", rc=1)
    hooks.add("poststart")
    hooks.add("poststop")
    bundle.set_args("sh", "-c", "sleep 0.3; echo process >> /tmp/log")
    cid = runtime.new_id()
    p = runtime.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stderr           # the warning
    assert hooks.kinds() == ["poststart", "poststart", "process",
                             "poststop"]


def _failing_poststop(bundle, runtime, tmp_path):
    hooks = Hooks(bundle, tmp_path)
    hooks.add("poststop", rc=1)
    hooks.add("poststop")
    bundle.set_args("true")
    cid = runtime.new_id()
    p = _create(runtime, bundle, cid, tmp_path)
    assert p.returncode == 0
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    runtime.run("delete", cid, check=False)
    assert runtime.run("state", cid, check=False).returncode != 0
    return hooks


def test_failing_poststop_hook_does_not_block_delete(bundle, runtime,
                                                     tmp_path):
    hooks = _failing_poststop(bundle, runtime, tmp_path)
    assert hooks.kinds()[0] == "poststop"


@skip_for_runc("stops at the first failing poststop hook")
def test_failing_poststop_hook_runs_the_rest(bundle, runtime, tmp_path):
    hooks = _failing_poststop(bundle, runtime, tmp_path)
    assert hooks.kinds() == ["poststop", "poststop"]


def test_hook_missing_binary_is_an_error(bundle, runtime, tmp_path):
    bundle.config["hooks"] = {"createRuntime": [{
        "path": str(tmp_path / "berth-no-such-hook")}]}
    bundle.write()
    p = run_fails(runtime, bundle)
    assert p.stderr
