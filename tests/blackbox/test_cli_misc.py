"""ps, list, pause/resume, update, events, features, spec, the global flags
and command-line errors."""
import json
import os
import re
import subprocess
import time

import pytest

from cli_helpers import (create, detached, json_lines, read_cgroup,
                         read_pid_file, run_detached, sleeper, wait_for,
                         workdir)
from conftest import RUNTIME, Runtime, pid_alive

MiB = 1024 * 1024


# --- ps ---

def test_ps_table(runtime, bundle, tmp_path):
    cid, init = sleeper(runtime, bundle)
    pf = str(tmp_path / "exec.pid")
    detached(runtime, workdir(bundle), "exec", "-d", "--pid-file", pf, cid,
             "sleep", "99")
    other = read_pid_file(pf)
    lines = runtime.run("ps", cid).stdout.splitlines()
    header = lines[0].split()
    assert "PID" in header, lines
    col = header.index("PID")
    pids = [int(l.split()[col]) for l in lines[1:] if l.strip()]
    assert sorted(pids) == sorted([init, other])
    assert any("sleep 99" in l for l in lines[1:]), lines


@pytest.mark.parametrize("flag", ["--format", "-f"])
def test_ps_json(runtime, bundle, tmp_path, flag):
    cid, init = sleeper(runtime, bundle)
    pf = str(tmp_path / "exec.pid")
    detached(runtime, workdir(bundle), "exec", "-d", "--pid-file", pf, cid,
             "sleep", "99")
    pids = json.loads(runtime.run("ps", flag, "json", cid).stdout)
    assert isinstance(pids, list)
    assert all(isinstance(p, int) for p in pids)
    assert sorted(pids) == sorted([init, read_pid_file(pf)])


def test_ps_missing_container(runtime):
    cid = runtime.new_id()
    p = runtime.run("ps", cid, check=False)
    assert p.returncode != 0
    assert re.search(r"does not exist|not exist|no such|not found",
                     p.stderr, re.I), p.stderr


# --- list ---

def test_list_table(runtime, bundle):
    cid, init = sleeper(runtime, bundle)
    lines = runtime.run("list").stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED",
                                "OWNER"]
    rows = [l.split() for l in lines[1:] if l.strip()]
    assert len(rows) == 1, lines
    row = rows[0]
    assert row[:4] == [cid, str(init), "running", bundle.path]
    assert row[4] == runtime.state(cid)["created"]
    assert len(row) == 6


def test_list_empty_root(runtime):
    lines = runtime.run("list").stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED",
                                "OWNER"]
    assert [l for l in lines[1:] if l.strip()] == []


@pytest.mark.parametrize("flag", ["--format", "-f"])
def test_list_json(runtime, bundle, flag):
    cid, init = sleeper(runtime, bundle)
    cid2, _ = create(runtime, bundle)
    out = json.loads(runtime.run("list", flag, "json").stdout)
    assert isinstance(out, list)
    by_id = {c["id"]: c for c in out}
    assert set(by_id) == {cid, cid2}
    assert by_id[cid]["pid"] == init
    assert by_id[cid]["status"] == "running"
    assert by_id[cid2]["status"] == "created"
    assert os.path.realpath(by_id[cid]["bundle"]) == \
        os.path.realpath(bundle.path)
    for key in ("ociVersion", "rootfs", "created", "owner"):
        assert key in by_id[cid], by_id[cid]


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_list_quiet(runtime, bundle, flag):
    cid, _ = sleeper(runtime, bundle)
    cid2, _ = create(runtime, bundle)
    out = runtime.run("list", flag).stdout
    assert sorted(out.split()) == sorted([cid, cid2])
    assert "STATUS" not in out


# --- pause / resume ---

def _line_count(d):
    return len(d.stdout.splitlines())


def test_pause_resume(runtime, bundle):
    bundle.set_args("sh", "-c", "while :; do echo tick; sleep 0.01; done")
    cid, d = run_detached(runtime, bundle)
    wait_for(lambda: _line_count(d) > 2, what="ticks")
    runtime.run("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    assert "paused" in runtime.run("list").stdout
    frozen = _line_count(d)
    time.sleep(0.3)  # a running loop would print ~30 lines meanwhile
    assert _line_count(d) == frozen, "paused container made progress"
    assert runtime.state(cid)["status"] == "paused"

    runtime.run("resume", cid)
    assert runtime.state(cid)["status"] == "running"
    wait_for(lambda: _line_count(d) > frozen + 2, what="ticks after resume")


def test_pause_not_running_fails(runtime, bundle):
    bundle.set_args("true")
    cid, _ = create(runtime, bundle)
    runtime.run("start", cid)
    runtime.wait_status(cid, "stopped")
    p = runtime.run("pause", cid, check=False)
    assert p.returncode != 0
    assert p.stderr.strip()


def test_resume_not_paused_fails(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    p = runtime.run("resume", cid, check=False)
    assert p.returncode != 0
    assert p.stderr.strip()
    assert runtime.state(cid)["status"] == "running"


def test_delete_force_paused(runtime, bundle):
    cid, pid = sleeper(runtime, bundle)
    runtime.run("pause", cid)
    runtime.run("delete", "--force", cid)
    wait_for(lambda: not pid_alive(pid), what="paused init to die")
    assert runtime.run("state", cid, check=False).returncode != 0


# --- update ---

def test_update_resources_file(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    res = tmp_path / "resources.json"
    res.write_text(json.dumps({
        "memory": {"limit": 64 * MiB},
        "cpu": {"shares": 256, "quota": 20000, "period": 100000},
        "pids": {"limit": 42},
    }))
    runtime.run("update", "--resources", str(res), cid)
    assert read_cgroup(bundle, "memory", "memory.limit_in_bytes") == \
        str(64 * MiB)
    assert read_cgroup(bundle, "cpu", "cpu.shares") == "256"
    assert read_cgroup(bundle, "cpu", "cpu.cfs_quota_us") == "20000"
    assert read_cgroup(bundle, "cpu", "cpu.cfs_period_us") == "100000"
    assert read_cgroup(bundle, "pids", "pids.max") == "42"
    assert runtime.state(cid)["status"] == "running"


def test_update_resources_stdin(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    runtime.run("update", "-r", "-", cid, input=json.dumps({
        "memory": {"limit": 48 * MiB}, "pids": {"limit": 33}}))
    assert read_cgroup(bundle, "memory", "memory.limit_in_bytes") == \
        str(48 * MiB)
    assert read_cgroup(bundle, "pids", "pids.max") == "33"


def test_update_flags(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    runtime.run("update", "--memory", str(32 * MiB), "--pids-limit", "17",
                "--cpu-quota", "30000", "--cpu-period", "60000",
                "--cpu-share", "768", cid)
    assert read_cgroup(bundle, "memory", "memory.limit_in_bytes") == \
        str(32 * MiB)
    assert read_cgroup(bundle, "pids", "pids.max") == "17"
    assert read_cgroup(bundle, "cpu", "cpu.cfs_quota_us") == "30000"
    assert read_cgroup(bundle, "cpu", "cpu.cfs_period_us") == "60000"
    assert read_cgroup(bundle, "cpu", "cpu.shares") == "768"


def test_update_leaves_other_values(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    runtime.run("update", "--pids-limit", "25", "--cpu-share", "300", cid)
    runtime.run("update", "--pids-limit", "26", cid)
    assert read_cgroup(bundle, "pids", "pids.max") == "26"
    assert read_cgroup(bundle, "cpu", "cpu.shares") == "300"


def test_update_malformed_resources_fails(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    before = read_cgroup(bundle, "pids", "pids.max")
    p = runtime.run("update", "-r", "-", cid, input='{"pids": {"limit": ',
                    check=False)
    assert p.returncode != 0
    assert p.stderr.strip()
    assert read_cgroup(bundle, "pids", "pids.max") == before


def test_update_missing_container(runtime):
    cid = runtime.new_id()
    p = runtime.run("update", "--pids-limit", "10", cid, check=False)
    assert p.returncode != 0
    assert re.search(r"does not exist|not exist|no such|not found",
                     p.stderr, re.I), p.stderr


# --- events ---

def test_events_stats(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    out = runtime.run("events", "--stats", cid).stdout
    events = json_lines(out)
    assert len(events) == 1, out
    ev = events[0]
    assert ev["type"] == "stats"
    assert ev["id"] == cid
    data = ev["data"]
    for key in ("memory", "cpu", "pids"):
        assert isinstance(data.get(key), dict), data.keys()
    assert data["pids"]["current"] >= 1
    assert data["memory"]["usage"]["usage"] > 0
    assert data["cpu"]["usage"]["total"] > 0


def test_events_stats_reflect_update(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    runtime.run("update", "--pids-limit", "55", "--memory", str(40 * MiB), cid)
    data = json.loads(runtime.run("events", "--stats", cid).stdout)["data"]
    assert data["memory"]["usage"]["limit"] == 40 * MiB
    if "limit" in data["pids"]:
        assert data["pids"]["limit"] == 55


def test_events_interval_streams_stats(runtime, bundle):
    cid, _ = sleeper(runtime, bundle)
    proc = subprocess.Popen(
        runtime.cmd("events", "--interval", "100ms", cid),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        got = []
        # With the 5s default, three events would take 15s: the deadline is
        # only there so a broken --interval fails instead of hanging.
        end = time.time() + 10
        while len(got) < 3 and time.time() < end:
            line = proc.stdout.readline()
            if not line:
                break
            ev = json.loads(line)
            if ev["type"] == "stats":
                got.append(ev)
        assert len(got) == 3, got
        assert all(ev["id"] == cid and "pids" in ev["data"] for ev in got)
    finally:
        proc.kill()
        proc.wait()


def test_events_reports_oom(runtime, bundle):
    """A process killed by the OOM killer shows up as an "oom" event."""
    bundle.config["linux"]["resources"]["memory"] = {
        "limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024}
    # Stays alive (sleep) while a child grows past the limit and is killed.
    cid, _ = sleeper(runtime, bundle, "sh", "-c",
                     "sleep 0.5; (x=$(head -c 100000000 /dev/zero | tr '\\0' a)"
                     " ; echo $x) >/dev/null 2>&1; sleep 100")
    proc = subprocess.Popen(
        runtime.cmd("events", "--interval", "100ms", cid),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        end = time.time() + 20
        oom = None
        while time.time() < end:
            line = proc.stdout.readline()
            if not line:
                break
            ev = json.loads(line)
            if ev["type"] == "oom":
                oom = ev
                break
        assert oom == {"type": "oom", "id": cid}
    finally:
        proc.kill()
        proc.wait()


def test_events_missing_container(runtime):
    cid = runtime.new_id()
    p = runtime.run("events", "--stats", cid, check=False)
    assert p.returncode != 0
    assert p.stderr.strip()


# --- features ---

NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]


def _features(runtime):
    return json.loads(runtime.run("features").stdout)


def test_features(runtime):
    f = _features(runtime)
    assert re.match(r"1\.\d+\.\d+", f["ociVersionMin"])
    assert re.match(r"1\.\d+\.\d+", f["ociVersionMax"])
    assert isinstance(f["hooks"], list)
    assert {"prestart", "createRuntime", "createContainer", "startContainer",
            "poststart", "poststop"} <= set(f["hooks"])
    assert isinstance(f["mountOptions"], list)
    assert {"ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind"} <= \
        set(f["mountOptions"])
    linux = f["linux"]
    assert set(NAMESPACES) <= set(linux["namespaces"])
    caps = linux["capabilities"]
    assert {"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE",
            "CAP_AUDIT_WRITE"} <= set(caps)
    assert all(c.startswith("CAP_") for c in caps)


@pytest.mark.skipif(os.path.basename(RUNTIME) == "runc",
                    reason="runc 1.1.5 predates the time namespace "
                    "(runc >= 1.2 lists it)")
def test_features_time_namespace(runtime):
    assert sorted(_features(runtime)["linux"]["namespaces"]) == \
        sorted(NAMESPACES + ["time"])


# --- spec ---

def test_spec_writes_config(runtime, tmp_path):
    d = tmp_path / "newbundle"
    d.mkdir()
    runtime.run("spec", "--bundle", str(d))
    config = json.loads((d / "config.json").read_text())
    assert re.match(r"1\.\d+\.\d+", config["ociVersion"])
    assert config["root"]["path"] == "rootfs"
    assert config["process"]["args"]
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert {"pid", "mount"} <= types
    assert "user" not in types


def test_spec_short_bundle_flag_and_cwd(runtime, tmp_path):
    d = tmp_path / "b1"
    d.mkdir()
    runtime.run("spec", "-b", str(d))
    assert json.loads((d / "config.json").read_text())["ociVersion"]
    d2 = tmp_path / "b2"
    d2.mkdir()
    p = subprocess.run(runtime.cmd("spec"), cwd=str(d2), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads((d2 / "config.json").read_text())["ociVersion"]


def test_spec_refuses_to_overwrite(runtime, tmp_path):
    d = tmp_path / "newbundle"
    d.mkdir()
    (d / "config.json").write_text('{"mine": true}\n')
    p = runtime.run("spec", "--bundle", str(d), check=False)
    assert p.returncode != 0
    assert "config.json" in p.stderr or \
        re.search(r"exist", p.stderr, re.I), p.stderr
    assert (d / "config.json").read_text() == '{"mine": true}\n'


def test_spec_rootless(runtime, tmp_path):
    d = tmp_path / "rootless"
    d.mkdir()
    runtime.run("spec", "--rootless", "--bundle", str(d))
    linux = json.loads((d / "config.json").read_text())["linux"]
    assert "user" in {ns["type"] for ns in linux["namespaces"]}
    assert linux["uidMappings"] and linux["gidMappings"]
    m = linux["uidMappings"][0]
    assert m["containerID"] == 0
    assert m["hostID"] == os.getuid()
    assert m["size"] >= 1
    assert linux["gidMappings"][0]["hostID"] == os.getgid()


# --- global flags ---

def test_root_flag_selects_state_dir(runtime, bundle, tmp_path):
    cid, _ = sleeper(runtime, bundle)
    assert os.listdir(runtime.root), "nothing written under --root"
    assert cid in runtime.run("list", "-q").stdout.split()
    other_root = tmp_path / "other-root"
    other_root.mkdir()
    other = Runtime(runtime.binary, str(other_root))
    assert cid not in other.run("list", "-q").stdout.split()
    p = other.run("state", cid, check=False)
    assert p.returncode != 0


def test_log_json_error(runtime, tmp_path):
    log = tmp_path / "runtime.log"
    missing = runtime.new_id()
    p = subprocess.run([runtime.binary, "--root", runtime.root, "--log",
                        str(log), "--log-format", "json", "state", missing],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    entries = json_lines(log.read_text())
    errors = [e for e in entries if e.get("level") == "error"]
    assert errors, entries
    assert all(isinstance(e["msg"], str) and e["msg"] for e in errors)


def test_log_text_error(runtime, tmp_path):
    log = tmp_path / "runtime.log"
    p = subprocess.run([runtime.binary, "--root", runtime.root, "--log",
                        str(log), "state", runtime.new_id()],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    text = log.read_text()
    assert "error" in text, text
    with pytest.raises(ValueError):
        json_lines(text)


def _debug_lines(runtime, bundle, tmp_path, debug):
    log = tmp_path / ("debug.log" if debug else "nodebug.log")
    bundle.set_args("true")
    cid = runtime.new_id()
    flags = ["--debug"] if debug else []
    p = subprocess.run([runtime.binary, "--root", runtime.root] + flags +
                       ["--log", str(log), "--log-format", "json", "run",
                        "--bundle", bundle.path, cid],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return [e for e in json_lines(log.read_text())
            if e.get("level") == "debug"]


def test_debug_flag(runtime, bundle, tmp_path):
    assert _debug_lines(runtime, bundle, tmp_path, debug=True)
    assert not _debug_lines(runtime, bundle, tmp_path, debug=False)


@pytest.mark.skipif(os.path.basename(RUNTIME) == "runc",
                    reason="runc supports --systemd-cgroup; berth-runtime "
                    "must refuse it clearly while unsupported")
def test_systemd_cgroup_unsupported(runtime, bundle):
    bundle.set_args("true")
    cid = runtime.new_id()
    p = subprocess.run([runtime.binary, "--root", runtime.root,
                        "--systemd-cgroup", "run", "--bundle", bundle.path,
                        cid], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "systemd" in p.stderr.lower(), p.stderr
    assert runtime.run("state", cid, check=False).returncode != 0


def test_version_flag(runtime):
    p = subprocess.run([runtime.binary, "--version"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0
    assert re.search(r"\d+\.\d+", p.stdout), p.stdout


# --- command-line errors ---

def test_unknown_subcommand(runtime):
    p = runtime.run("frobnicate", check=False)
    assert p.returncode != 0
    assert "frobnicate" in p.stderr, p.stderr


def test_unknown_flag(runtime):
    p = runtime.run("list", "--no-such-flag", check=False)
    assert p.returncode != 0
    assert "no-such-flag" in p.stderr, p.stderr


@pytest.mark.parametrize("cmd", ["state", "start", "kill", "delete", "pause",
                                 "resume", "ps", "exec"])
def test_missing_container_id(runtime, cmd):
    p = runtime.run(cmd, check=False)
    assert p.returncode != 0
    assert p.stderr.strip()


@pytest.mark.skipif(os.path.basename(RUNTIME) == "runc",
                    reason="runc supports the systemd cgroup driver")
def test_systemd_cgroups_path_refused_clearly(runtime, bundle):
    """podman's systemd form of cgroupsPath gets a clear error instead of a
    directory named after it."""
    bundle.config["linux"]["cgroupsPath"] = "machine.slice:libpod:abc"
    bundle.set_args("true")
    cid = runtime.new_id()
    p = runtime.run("run", "--bundle", bundle.path, cid, check=False)
    assert p.returncode != 0
    assert "systemd" in p.stderr and "cgroupsPath" in p.stderr, p.stderr
    for h in ("cpu", "memory", "pids"):
        assert not os.path.exists(
            "/sys/fs/cgroup/%s/machine.slice:libpod:abc" % h)
