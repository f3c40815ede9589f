"""`exec`: running extra processes in a running container."""
import json
import re

import pytest

from cli_helpers import (PATH_ENV, ConsoleSocket, detached, proc_status,
                         read_pid_file, sleeper, wait_dead, wait_for, with_fd3,
                         workdir)
from conftest import pid_alive

CAP_SYS_ADMIN = 21


def test_exec_runs_in_container(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", cid, "sh", "-c", "hostname; cat /proc/1/cmdline")
    assert p.stdout.split("\n", 1)[0] == "berth"
    # Same pid namespace: pid 1 is the container's init.
    assert p.stdout.split("\n", 1)[1].split("\0")[:2] == ["sleep", "100"]


@pytest.mark.parametrize("code", [0, 5, 130])
def test_exec_propagates_exit_code(runtime, bundle, code):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", cid, "sh", "-c", "exit %d" % code, check=False)
    assert p.returncode == code, p.stderr
    assert runtime.state(cid)["status"] == "running"


def test_exec_process_file(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    process = {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["/bin/sh", "-c", "echo $FOO; pwd; id -u"],
        "env": [PATH_ENV, "FOO=from-process-json"],
        "cwd": "/home/berth",
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    p = runtime.run("exec", "--process", str(path), cid)
    assert p.stdout.split() == ["from-process-json", "/home/berth", "1000"]
    p = runtime.run("exec", "-p", str(path), cid)
    assert p.stdout.split()[0] == "from-process-json"


def test_exec_process_file_exit_code(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": ["/bin/sh", "-c", "exit 9"],
                                "env": [PATH_ENV], "cwd": "/",
                                "user": {"uid": 0, "gid": 0}}))
    p = runtime.run("exec", "--process", str(path), cid, check=False)
    assert p.returncode == 9, p.stderr


def test_exec_cwd(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", "--cwd", "/tmp", cid, "pwd")
    assert p.stdout == "/tmp\n"


@pytest.mark.parametrize("flag", ["-e", "--env"])
def test_exec_env(runtime, bundle, flag):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", flag, "FOO=bar baz", flag, "TERM=dumb", cid,
                    "sh", "-c", 'echo "$FOO|$TERM"; echo $PATH')
    lines = p.stdout.splitlines()
    assert lines[0] == "bar baz|dumb"
    # The config's environment is kept where not overridden.
    assert lines[1] == PATH_ENV.split("=", 1)[1]


@pytest.mark.parametrize("flag", ["-u", "--user"])
def test_exec_user(runtime, bundle, flag):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", flag, "1000:1001", cid, "sh", "-c",
                    "id -u; id -g")
    assert p.stdout.split() == ["1000", "1001"]


def test_exec_user_uid_only(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", "-u", "1000", cid, "id", "-u")
    assert p.stdout.strip() == "1000"


def test_exec_detach_pid_file(runtime, bundle, tmp_path):
    cid, init = sleeper(runtime, bundle)
    pf = str(tmp_path / "exec.pid")
    detached(runtime, workdir(bundle), "exec", "-d", "--pid-file", pf, cid,
             "sleep", "100")
    pid = read_pid_file(pf)
    assert pid != init
    assert pid_alive(pid)
    with open("/proc/%d/cmdline" % pid) as f:
        assert f.read().split("\0")[:2] == ["sleep", "100"]
    assert pid in json.loads(runtime.run("ps", "--format", "json",
                                         cid).stdout)
    runtime.run("delete", "--force", cid)
    wait_dead(pid)


def test_exec_detach_long_flag(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    pf = str(tmp_path / "exec.pid")
    d = detached(runtime, workdir(bundle), "exec", "--detach", "--pid-file",
                 pf, cid, "sh", "-c", "echo detached-ran; sleep 100")
    # The runtime returns while the process still runs.
    assert pid_alive(read_pid_file(pf))
    wait_for(lambda: "detached-ran" in d.stdout, what="exec -d output")


def test_exec_preserve_fds(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    src = tmp_path / "fd3-in"
    src.write_text("through fd 3\n")
    d = detached(runtime, workdir(bundle), "exec", "--preserve-fds", "1",
                 cid, "cat", "/proc/self/fd/3", wrap=with_fd3(str(src), "r"))
    assert d.returncode == 0
    assert d.stdout == "through fd 3\n"


def test_exec_without_preserve_fds_closes_fd3(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    src = tmp_path / "fd3-in"
    src.write_text("through fd 3\n")
    d = detached(runtime, workdir(bundle), "exec", cid, "sh", "-c",
                 "cat <&3 || echo closed", check=False,
                 wrap=with_fd3(str(src), "r"))
    assert "through fd 3" not in d.stdout
    assert "closed" in d.stdout


def _caps(status, field):
    return int(proc_status(status, field), 16)


@pytest.mark.parametrize("flag", ["--cap", "-c"])
def test_exec_cap(runtime, bundle, flag):
    cid, _ = sleeper(runtime, bundle)
    before = runtime.run("exec", cid, "cat", "/proc/self/status").stdout
    assert not _caps(before, "CapBnd") & (1 << CAP_SYS_ADMIN)
    after = runtime.run("exec", flag, "CAP_SYS_ADMIN", cid, "cat",
                        "/proc/self/status").stdout
    assert _caps(after, "CapBnd") & (1 << CAP_SYS_ADMIN)
    assert _caps(after, "CapEff") & (1 << CAP_SYS_ADMIN)
    # The config's capabilities are still there (CAP_KILL is bit 5).
    assert _caps(after, "CapBnd") & (1 << 5)


def test_exec_no_new_privs(runtime, bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", cid, "cat", "/proc/self/status")
    assert proc_status(p.stdout, "NoNewPrivs") == "0"
    p = runtime.run("exec", "--no-new-privs", cid, "cat", "/proc/self/status")
    assert proc_status(p.stdout, "NoNewPrivs") == "1"


def test_exec_tty_console_socket(runtime, bundle, tmp_path):
    # As with runc, --console-socket goes with -d: the runtime hands the pty
    # master over and returns.
    cid, _ = sleeper(runtime, bundle)
    pf = str(tmp_path / "tty.pid")
    with ConsoleSocket() as cs:
        detached(runtime, workdir(bundle), "exec", "-d", "-t",
                 "--console-socket", cs.path, "--pid-file", pf, cid, "sh")
        pid = read_pid_file(pf)
        cs.write("echo hi\n")
        cs.read_until(r"^hi\r?$")
        cs.write("tty; [ -t 0 ] && echo stdin-is-tty\n")
        cs.read_until(r"^/dev/pts/\d+\r?$")
        cs.read_until(r"^stdin-is-tty\r?$")
        cs.write("exit\n")
        wait_dead(pid)
    assert runtime.state(cid)["status"] == "running"


def test_exec_missing_container(runtime):
    cid = runtime.new_id()
    p = runtime.run("exec", cid, "true", check=False)
    assert p.returncode != 0
    assert re.search(r"does not exist|not exist|no such|not found",
                     p.stderr, re.I), p.stderr


def test_exec_stopped_container_fails(runtime, bundle):
    cid, pid = sleeper(runtime, bundle)
    runtime.run("kill", cid, "KILL")
    runtime.wait_status(cid, "stopped")
    p = runtime.run("exec", cid, "true", check=False)
    assert p.returncode != 0
    assert p.stderr.strip()


def test_exec_missing_binary_fails(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("exec", cid, "/no/such/binary", check=False)
    assert p.returncode != 0
    assert "/no/such/binary" in p.stderr or \
        re.search(r"no such file|not found", p.stderr, re.I), p.stderr
    assert runtime.state(cid)["status"] == "running"
