"""Container lifecycle through the runc-compatible command line: create,
start, run, state, kill, delete, and their error cases."""
import ctypes
import json
import os
import platform
import re
import signal
import subprocess
import time
import uuid

import pytest

from cli_helpers import (ConsoleSocket, create, detached, read_pid_file,
                         run_detached, sleeper, wait_dead, with_fd3, workdir)
from conftest import RUNTIME, pid_alive


# --- create / start / state ---

def test_state_fields_through_create_start_stop(runtime, bundle):
    bundle.set_args("sleep", "100")
    cid, _ = create(runtime, bundle)
    st = runtime.state(cid)
    for key in ("ociVersion", "id", "pid", "status", "bundle", "rootfs",
                "created", "owner"):
        assert key in st, "state lacks %r: %r" % (key, st)
    assert isinstance(st["ociVersion"], str) and st["ociVersion"]
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert pid_alive(st["pid"])
    assert os.path.realpath(st["bundle"]) == os.path.realpath(bundle.path)
    assert os.path.realpath(st["rootfs"]) == \
        os.path.realpath(bundle.config["root"]["path"])
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", st["created"]), st
    assert isinstance(st["owner"], str)

    runtime.run("start", cid)
    st2 = runtime.state(cid)
    assert st2["status"] == "running"
    assert st2["pid"] == st["pid"]
    assert st2["created"] == st["created"]

    runtime.run("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    wait_dead(st["pid"])
    runtime.run("delete", cid)
    p = runtime.run("state", cid, check=False)
    assert p.returncode != 0


def test_create_does_not_run_process_until_start(runtime, bundle):
    bundle.set_args("sh", "-c", "echo started-marker")
    cid, d = create(runtime, bundle)
    assert runtime.state(cid)["status"] == "created"
    assert "started-marker" not in d.stdout
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    assert "started-marker" in d.stdout
    runtime.run("delete", cid)


def test_create_short_bundle_flag(runtime, bundle):
    bundle.set_args("sleep", "100")
    cid = runtime.new_id()
    detached(runtime, workdir(bundle), "create", "-b", bundle.path, cid)
    st = runtime.state(cid)
    assert st["status"] == "created"
    assert os.path.realpath(st["bundle"]) == os.path.realpath(bundle.path)


def test_create_bundle_defaults_to_cwd(runtime, bundle):
    bundle.set_args("sleep", "100")
    cid = runtime.new_id()
    p = subprocess.run(runtime.cmd("create", cid), cwd=bundle.path,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    assert p.returncode == 0
    st = runtime.state(cid)
    assert os.path.realpath(st["bundle"]) == os.path.realpath(bundle.path)


def test_create_pid_file(runtime, bundle, tmp_path):
    bundle.set_args("sleep", "100")
    pidfile = tmp_path / "init.pid"
    cid, _ = create(runtime, bundle, "--pid-file", str(pidfile))
    assert read_pid_file(str(pidfile)) == runtime.state(cid)["pid"]


def test_create_console_socket(runtime, bundle):
    bundle.config["process"]["terminal"] = True
    bundle.set_args("sh")
    with ConsoleSocket() as cs:
        cid, _ = create(runtime, bundle, "--console-socket", cs.path)
        cs.wait_master()
        runtime.run("start", cid)
        cs.write("echo hi\n")
        # Line-anchored, so the echoed command line does not match.
        cs.read_until(r"^hi\r?$")
        cs.write("tty\n")
        cs.read_until(r"^/dev/pts/\d+\r?$")
        cs.write("exit\n")
        runtime.wait_status(cid, "stopped")
    runtime.run("delete", cid)


def test_create_preserve_fds(runtime, bundle, tmp_path):
    bundle.set_args("sh", "-c", "echo preserved >&3")
    out = str(tmp_path / "fd3")
    cid, _ = create(runtime, bundle, "--preserve-fds", "1",
                    wrap=with_fd3(out))
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    with open(out) as f:
        assert f.read() == "preserved\n"


def test_create_without_preserve_fds_closes_extra_fds(runtime, bundle,
                                                      tmp_path):
    bundle.set_args("sh", "-c", "echo leaked >&3")
    out = str(tmp_path / "fd3")
    cid, _ = create(runtime, bundle, wrap=with_fd3(out))
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    with open(out) as f:
        assert f.read() == ""


def test_create_no_pivot(runtime, bundle):
    # The rootfs must still be the container's: its /etc/passwd has berth.
    bundle.set_args("sh", "-c", "grep ^berth: /etc/passwd; ls /home")
    cid, d = create(runtime, bundle, "--no-pivot")
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    assert d.stdout.split() == ["berth:x:1000:1000::/home/berth:/bin/sh",
                                "berth"]


_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 289,
           "s390x": 280}


def _join_private_session_keyring(name):
    """preexec_fn: join a new session keyring only its possessors can see."""
    libc = ctypes.CDLL(None, use_errno=True)
    nr = _KEYCTL[platform.machine()]

    def pre():
        kid = libc.syscall(nr, 1, name.encode())  # KEYCTL_JOIN_SESSION_KEYRING
        if kid < 0 or libc.syscall(nr, 5, kid, 0x3f000000) != 0:  # SETPERM
            os._exit(99)
    return pre


@pytest.mark.skipif(platform.machine() not in _KEYCTL,
                    reason="keyctl syscall number unknown here")
@pytest.mark.parametrize("flag", [False, True], ids=["new", "no-new"])
def test_create_no_new_keyring(runtime, bundle, flag):
    # The caller's session keyring is visible in /proc/keys only to its
    # possessors: the container sees it iff it kept the caller's keyring.
    bundle.config["linux"]["maskedPaths"] = [
        p for p in bundle.config["linux"]["maskedPaths"] if p != "/proc/keys"]
    bundle.set_args("cat", "/proc/keys")
    name = "berth-test-" + uuid.uuid4().hex[:8]
    flags = ["--no-new-keyring"] if flag else []
    cid, d = create(runtime, bundle, *flags,
                    preexec_fn=_join_private_session_keyring(name))
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    assert "keyring" in d.stdout
    assert (name in d.stdout) == flag, d.stdout


# --- run ---

def test_run_foreground_output_and_exit_zero(runtime, bundle):
    bundle.set_args("sh", "-c", "echo hello from $(hostname)")
    cid = runtime.new_id()
    p = runtime.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from berth\n"
    # Like runc, a foreground run deletes the container once it exited.
    assert runtime.run("state", cid, check=False).returncode != 0


@pytest.mark.parametrize("code", [1, 7, 255])
def test_run_propagates_exit_code(runtime, bundle, code):
    bundle.set_args("sh", "-c", "exit %d" % code)
    cid = runtime.new_id()
    p = runtime.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode == code, p.stderr


def test_run_signal_death_is_128_plus_signal(runtime, bundle):
    bundle.set_args("sh", "-c", "echo ready; exec sleep 100")
    cid = runtime.new_id()
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", bundle.path, cid),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        runtime.run("kill", cid, "KILL")
        assert proc.wait(timeout=30) == 128 + 9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("flag", ["-d", "--detach"])
def test_run_detach(runtime, bundle, flag):
    bundle.set_args("sleep", "100")
    cid = runtime.new_id()
    detached(runtime, workdir(bundle), "run", flag, "--bundle", bundle.path,
             cid)
    st = runtime.state(cid)
    assert st["status"] == "running"
    assert pid_alive(st["pid"])


def test_run_detach_pid_file(runtime, bundle, tmp_path):
    bundle.set_args("sleep", "100")
    pidfile = tmp_path / "run.pid"
    cid, _ = run_detached(runtime, bundle, "--pid-file", str(pidfile))
    assert read_pid_file(str(pidfile)) == runtime.state(cid)["pid"]


# --- kill ---

def test_kill_default_is_sigterm(runtime, bundle):
    # A container init ignores signals it has no handler for (except KILL),
    # so exit 42 shows the TERM trap ran.
    bundle.set_args("sh", "-c",
                    "trap 'exit 42' TERM; echo ready; sleep 100 & wait")
    cid = runtime.new_id()
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", bundle.path, cid),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        runtime.run("kill", cid)
        assert proc.wait(timeout=30) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_signal_forms(runtime, bundle, sig):
    # sleep as init ignores TERM, so stopping it takes a real SIGKILL.
    cid, pid = sleeper(runtime, bundle)
    runtime.run("kill", cid, sig)
    runtime.wait_status(cid, "stopped")
    wait_dead(pid)


@pytest.mark.parametrize("sig", ["USR1", "SIGUSR1", "10"])
def test_kill_signal_forms_reach_handler(runtime, bundle, sig):
    bundle.set_args("sh", "-c",
                    "trap 'exit 30' USR1; echo ready; sleep 100 & wait")
    cid = runtime.new_id()
    proc = subprocess.Popen(runtime.cmd("run", "--bundle", bundle.path, cid),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        runtime.run("kill", cid, sig)
        assert proc.wait(timeout=30) == 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_all_signals_every_process(runtime, bundle, tmp_path):
    cid, init = sleeper(runtime, bundle)
    pids = []
    for i in range(2):
        pf = str(tmp_path / ("exec%d.pid" % i))
        detached(runtime, workdir(bundle), "exec", "-d", "--pid-file", pf,
                 cid, "sleep", "100")
        pids.append(read_pid_file(pf))
    # TERM kills the exec'd sleeps; init ignores it (no handler, pid 1).
    runtime.run("kill", "--all", cid, "TERM")
    for pid in pids:
        wait_dead(pid)
    assert pid_alive(init)
    assert runtime.state(cid)["status"] == "running"


def test_kill_without_all_spares_other_processes(runtime, bundle, tmp_path):
    cid, init = sleeper(runtime, bundle)
    pf = str(tmp_path / "exec.pid")
    detached(runtime, workdir(bundle), "exec", "-d", "--pid-file", pf,
             cid, "sleep", "100")
    other = read_pid_file(pf)
    runtime.run("kill", cid, "TERM")
    # Nothing can have died: init ignores TERM and nobody signalled `other`.
    p = runtime.run("ps", "--format", "json", cid)
    assert other in json.loads(p.stdout)
    assert pid_alive(other) and pid_alive(init)


def test_kill_stopped_container_fails(runtime, bundle):
    bundle.set_args("true")
    cid, _ = create(runtime, bundle)
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    p = runtime.run("kill", cid, "KILL", check=False)
    assert p.returncode != 0
    assert p.stderr.strip()


def test_kill_bad_signal_fails(runtime, bundle):
    cid, pid = sleeper(runtime, bundle)
    p = runtime.run("kill", cid, "NOSUCHSIGNAL", check=False)
    assert p.returncode != 0
    assert p.stderr.strip()
    assert pid_alive(pid)


# --- delete ---

def test_delete_stopped(runtime, bundle):
    bundle.set_args("true")
    cid, _ = create(runtime, bundle)
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    runtime.run("delete", cid)
    assert runtime.run("state", cid, check=False).returncode != 0
    assert cid not in runtime.run("list", "-q").stdout.split()


def test_delete_created_container(runtime, bundle):
    bundle.set_args("sleep", "100")
    cid, _ = create(runtime, bundle)
    pid = runtime.state(cid)["pid"]
    # Whether a created container needs --force differs between runtimes;
    # with --force it must go away, init included.
    runtime.run("delete", "--force", cid)
    wait_dead(pid)
    assert runtime.run("state", cid, check=False).returncode != 0


@pytest.mark.parametrize("flag", ["--force", "-f"])
def test_delete_force_running(runtime, bundle, flag):
    cid, pid = sleeper(runtime, bundle)
    runtime.run("delete", flag, cid)
    wait_dead(pid)
    assert runtime.run("state", cid, check=False).returncode != 0


def test_delete_running_without_force_refused(runtime, bundle):
    cid, pid = sleeper(runtime, bundle)
    p = runtime.run("delete", cid, check=False)
    assert p.returncode != 0
    assert re.search(r"running|stopped|force", p.stderr, re.I), p.stderr
    assert runtime.state(cid)["status"] == "running"
    assert pid_alive(pid)


def test_delete_missing_container(runtime):
    cid = runtime.new_id()
    p = runtime.run("delete", cid, check=False)
    assert p.returncode != 0
    assert re.search(r"does not exist|not exist|no such|not found",
                     p.stderr, re.I), p.stderr


# --- error cases ---

def test_state_missing_container(runtime):
    p = runtime.run("state", runtime.new_id(), check=False)
    assert p.returncode != 0
    assert re.search(r"does not exist|not exist|no such|not found",
                     p.stderr, re.I), p.stderr
    assert p.stdout.strip() == ""


def test_create_existing_id_fails(runtime, bundle):
    bundle.set_args("sleep", "100")
    cid, _ = create(runtime, bundle)
    pid = runtime.state(cid)["pid"]
    d = detached(runtime, workdir(bundle), "create", "--bundle", bundle.path,
                 cid, check=False)
    assert d.returncode != 0
    assert re.search(r"exist|in use|already", d.stderr, re.I), d.stderr
    # The first container is untouched.
    st = runtime.state(cid)
    assert st["pid"] == pid and st["status"] == "created"


def test_run_existing_id_fails(runtime, bundle):
    cid, pid = sleeper(runtime, bundle)
    p = runtime.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode != 0
    assert re.search(r"exist|in use|already", p.stderr, re.I), p.stderr
    assert runtime.state(cid)["pid"] == pid


def test_start_stopped_container_fails(runtime, bundle):
    bundle.set_args("true")
    cid, _ = create(runtime, bundle)
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    p = runtime.run("start", cid, check=False)
    assert p.returncode != 0
    assert re.search(r"stopped|not created|state", p.stderr, re.I), p.stderr


def test_start_running_container_fails(runtime, bundle):
    cid, pid = sleeper(runtime, bundle)
    p = runtime.run("start", cid, check=False)
    assert p.returncode != 0
    assert p.stderr.strip()
    assert runtime.state(cid)["pid"] == pid


def test_start_missing_container_fails(runtime):
    cid = runtime.new_id()
    p = runtime.run("start", cid, check=False)
    assert p.returncode != 0
    assert re.search(r"does not exist|not exist|no such|not found",
                     p.stderr, re.I), p.stderr


def test_create_bad_bundle_path(runtime, tmp_path):
    missing = str(tmp_path / "no-such-bundle")
    cid = runtime.new_id()
    p = runtime.run("create", "--bundle", missing, cid, check=False)
    assert p.returncode != 0
    assert "no-such-bundle" in p.stderr or \
        re.search(r"no such file|not exist", p.stderr, re.I), p.stderr
    assert runtime.run("state", cid, check=False).returncode != 0


def test_create_bundle_without_config(runtime, tmp_path):
    empty = tmp_path / "empty-bundle"
    empty.mkdir()
    cid = runtime.new_id()
    p = runtime.run("create", "--bundle", str(empty), cid, check=False)
    assert p.returncode != 0
    assert re.search(r"config\.json|no such file|not exist", p.stderr,
                     re.I), p.stderr
    assert runtime.run("state", cid, check=False).returncode != 0


def _malformed_bundle(tmp_path):
    bad = tmp_path / "bad-bundle"
    bad.mkdir()
    (bad / "config.json").write_text('{"ociVersion": "1.2.0", "process": ')
    return str(bad)


def test_create_malformed_config_fails(runtime, tmp_path):
    cid = runtime.new_id()
    p = runtime.run("create", "--bundle", _malformed_bundle(tmp_path), cid,
                    check=False)
    assert p.returncode != 0
    assert p.stderr.strip()
    assert runtime.run("state", cid, check=False).returncode != 0


@pytest.mark.skipif(os.path.basename(RUNTIME) == "runc",
    reason="runc 1.1.5 says only 'unexpected EOF', without the file name")
def test_create_malformed_config_names_file(runtime, tmp_path):
    cid = runtime.new_id()
    p = runtime.run("create", "--bundle", _malformed_bundle(tmp_path), cid,
                    check=False)
    assert p.returncode != 0
    assert "config.json" in p.stderr, p.stderr


def test_create_missing_id_is_usage_error(runtime, bundle):
    p = runtime.run("create", "--bundle", bundle.path, check=False)
    assert p.returncode != 0
    assert p.stderr.strip()


@pytest.mark.skipif(os.path.basename(RUNTIME) == "runc",
                    reason="checks berth-runtime's early state record")
def test_create_killed_midway_is_cleaned_by_delete(runtime, bundle, tmp_path):
    """The runtime is killed (SIGKILL) while a prestart hook runs: the
    container shows as 'creating' until then, and delete --force removes its
    process, cgroup and state (the fixture checks nothing is left)."""
    gate = tmp_path / "hook-started"
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\ncat >/dev/null\ntouch %s\nsleep 60\n" % gate)
    hook.chmod(0o755)
    bundle.config["hooks"] = {"prestart": [{"path": str(hook)}]}
    bundle.set_args("true")
    cid = runtime.new_id()
    proc = subprocess.Popen(runtime.cmd("create", "--bundle", bundle.path, cid),
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 10
        while not gate.exists() and time.time() < deadline:
            time.sleep(0.02)
        assert gate.exists(), "the prestart hook never ran"
        st = runtime.state(cid)
        assert st["status"] == "creating"
        init = st["pid"]
        assert init > 0
    finally:
        # The runtime and its hook, by process group (ours alone).
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The init notices its runtime is gone (the sync socket closes) and
    # exits; what it leaves is the state and the cgroup.
    runtime.run("delete", "--force", cid)
    assert runtime.run("state", cid, check=False).returncode != 0
    deadline = time.time() + 5
    while pid_alive(init) and time.time() < deadline:
        time.sleep(0.02)
    assert not pid_alive(init)


def test_run_foreground_terminal_without_console_socket(runtime, bundle):
    """run in the foreground with process.terminal and no --console-socket
    copies the container's terminal to its own, and keeps the exit code."""
    import pty
    bundle.config["process"]["terminal"] = True
    bundle.set_args("sh", "-c", "tty; seq 1 500 | tail -1; exit 3")
    cid = runtime.new_id()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(runtime.binary, runtime.cmd("run", "--bundle", bundle.path,
                                             cid))
    out = b""
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert "/dev/pts/" in text, text
    assert "500" in text, text
    assert os.waitstatus_to_exitcode(status) == 3
