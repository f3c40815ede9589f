#!/usr/bin/env python3
"""berth-registry against Debian's docker-registry 2.8, same data, one run.

Both servers run on loopback with a fresh root each.  The same image is
pushed to both (skopeo, from the test image's OCI layout), and the same
50 MiB blob.  Measured, for each server:

  - manifest GET requests/s and p50 latency, 1 and 16 connections (wrk);
  - blob GET throughput of the 50 MiB blob (MB/s, best of several);
  - monolithic upload throughput (POST ?digest=, MB/s, best of several);
  - idle memory after start, the pushes and 3 quiet seconds: RSS, PSS
    and USS (kB, from /proc).

Then the ratios berth/docker-registry.  Needs root only to read /proc of
both servers (they run as the caller).  No timing assertions: this prints.

usage: bench/registry.py [--berth PATH] [--image DIR] [--seconds N] [--json F]
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
IDLE_SECONDS = 3
MANIFEST_ACCEPT = ("application/vnd.oci.image.manifest.v1+json,"
                   "application/vnd.docker.distribution.manifest.v2+json,"
                   "application/vnd.oci.image.index.v1+json")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ready(port, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("server exited with %d" % proc.returncode)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/v2/")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("server on %d never answered" % port)


class Server:
    def __init__(self, name, argv, port, root):
        self.name, self.port, self.root = name, port, root
        self.log = open(os.path.join(root, "..", name + ".log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        wait_ready(port, self.proc)

    def memory_kb(self):
        """RSS, PSS and USS (private pages) in kB, from smaps_rollup.  RSS
        counts every resident page the process maps, the C library's shared
        text included; PSS divides shared pages among their users; USS is
        what only this process holds."""
        vals = {}
        with open("/proc/%d/smaps_rollup" % self.proc.pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    vals[parts[0].rstrip(":")] = int(parts[1])
        return {"rss_kb": vals.get("Rss", 0), "pss_kb": vals.get("Pss", 0),
                "uss_kb": vals.get("Private_Clean", 0)
                + vals.get("Private_Dirty", 0)}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_berth(binary, work):
    root = os.path.join(work, "berth-root")
    os.mkdir(root)
    port = free_port()
    return Server("berth", [binary, "--listen", "127.0.0.1:%d" % port,
                            "--root", root, "--log-level", "error"],
                  port, root)


def start_docker_registry(work):
    root = os.path.join(work, "dr-root")
    os.mkdir(root)
    port = free_port()
    cfg = os.path.join(work, "dr.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n"
                "    disabled: true\nstorage:\n  filesystem:\n"
                "    rootdirectory: %s\n  delete:\n    enabled: true\n"
                "http:\n  addr: 127.0.0.1:%d\n" % (root, port))
    return Server("docker-registry", ["docker-registry", "serve", cfg],
                  port, root)


def push_image(server, image):
    subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                    "oci:%s:latest" % image,
                    "docker://127.0.0.1:%d/bench/busybox:latest"
                    % server.port], check=True)


def upload(port, repo, data, digest):
    """Monolithic upload as both servers take it: POST opens the session,
    one PUT ?digest= carries the whole blob.  (docker-registry ignores the
    single-request POST ?digest= form and answers before reading.)"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    c.request("POST", "/v2/%s/blobs/uploads/" % repo,
              headers={"Content-Length": "0"})
    r = c.getresponse()
    r.read()
    if r.status != 202:
        raise SystemExit("upload to %d: POST %d" % (port, r.status))
    loc = re.sub(r"^https?://[^/]+", "", r.getheader("Location"))
    sep = "&" if "?" in loc else "?"
    c.request("PUT", "%s%sdigest=%s" % (loc, sep, digest), body=data,
              headers={"Content-Type": "application/octet-stream",
                       "Content-Length": str(len(data))})
    r = c.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    if r.status != 201:
        raise SystemExit("upload to %d failed: PUT %d" % (port, r.status))
    return dt


def blob_get(port, repo, digest, size):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    c.request("GET", "/v2/%s/blobs/%s" % (repo, digest))
    r = c.getresponse()
    got = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    dt = time.perf_counter() - t0
    if r.status != 200 or got != size:
        raise SystemExit("blob GET from %d: %d, %d bytes" % (port, r.status,
                                                            got))
    return dt


def wrk(port, conns, seconds, work):
    script = os.path.join(work, "accept.lua")
    with open(script, "w") as f:
        f.write('wrk.headers["Accept"] = "%s"\n' % MANIFEST_ACCEPT)
    out = subprocess.run(
        ["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d",
         "%ds" % seconds, "--latency", "-s", script,
         "http://127.0.0.1:%d/v2/bench/busybox/manifests/latest" % port],
        check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p50 = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit("wrk on %d: %s non-2xx responses" % (port,
                                                              non2xx.group(1)))
    return rps, p50


def measure(server, image, blob, digest, seconds, work, rounds=5):
    res = {}
    push_image(server, image)
    # Idle: the same quiet time for both servers after the push, for what
    # they free when nothing happens (Go's scavenger, berth's heap trim).
    time.sleep(IDLE_SECONDS)
    res.update(server.memory_kb())
    # A new blob each round: a server may answer at once (without reading
    # the body) for content it already has.
    ups = []
    for i in range(rounds):
        data = blob if i == 0 else os.urandom(len(blob))
        dg = digest if i == 0 else "sha256:" + hashlib.sha256(data).hexdigest()
        ups.append(upload(server.port, "bench/blob%d" % i, data, dg))
    res["upload_mb_s"] = len(blob) / min(ups) / 1e6
    gets = [blob_get(server.port, "bench/blob0", digest, len(blob))
            for _ in range(rounds)]
    res["blob_get_mb_s"] = len(blob) / min(gets) / 1e6
    for conns in (1, 16):
        rps, p50 = wrk(server.port, conns, seconds, work)
        res["manifest_rps_c%d" % conns] = rps
        res["manifest_p50_ms_c%d" % conns] = p50
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", default=os.environ.get(
        "BERTH_REGISTRY",
        os.path.join(TOP, "build", "src", "registry", "berth-registry")))
    ap.add_argument("--image", default=os.path.join(TOP, "build", "test-image",
                                                    "oci"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    for tool in ("skopeo", "wrk", "docker-registry"):
        if shutil.which(tool) is None:
            raise SystemExit("bench/registry.py: %s is missing" % tool)
    if not os.path.exists(args.berth):
        raise SystemExit("bench/registry.py: %s is missing" % args.berth)
    if not os.path.exists(os.path.join(args.image, "index.json")):
        subprocess.run([os.path.join(TOP, "scripts", "mkimage-busybox.sh"),
                        os.path.dirname(args.image)], check=True,
                       stdout=subprocess.DEVNULL)
    blob = os.urandom(50 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    work = tempfile.mkdtemp(prefix="berth-regbench-")
    results = {}
    servers = []
    try:
        for name, start in (("berth", lambda: start_berth(args.berth, work)),
                            ("docker-registry",
                             lambda: start_docker_registry(work))):
            s = start()
            servers.append(s)
            results[name] = measure(s, args.image, blob, digest, args.seconds,
                                    work)
            s.stop()
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    b, d = results["berth"], results["docker-registry"]
    rows = [("manifest GET req/s, 1 conn", "manifest_rps_c1", ">= 10x"),
            ("manifest GET req/s, 16 conns", "manifest_rps_c16", ">= 10x"),
            ("manifest GET p50 ms, 1 conn", "manifest_p50_ms_c1", ""),
            ("manifest GET p50 ms, 16 conns", "manifest_p50_ms_c16", ""),
            ("blob GET MB/s (50 MiB)", "blob_get_mb_s", ">= 1x"),
            ("monolithic upload MB/s", "upload_mb_s", ">= 1.5x"),
            ("idle RSS kB", "rss_kb", "<= 0.1x"),
            ("idle PSS kB", "pss_kb", ""),
            ("idle USS kB (private)", "uss_kb", "")]
    print("%-32s %14s %16s %8s  %s" % ("", "berth", "docker-registry",
                                       "ratio", "target"))
    for label, key, target in rows:
        ratio = b[key] / d[key] if d[key] else float("inf")
        fmt = "%-32s %14.3f %16.3f %7.2fx  %s" if "p50" in key else \
            "%-32s %14.1f %16.1f %7.2fx  %s"
        print(fmt % (label, b[key], d[key], ratio, target))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
