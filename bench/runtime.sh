#!/usr/bin/env bash
# Startup-to-exit latency of `RUNTIME run --bundle B ID` for a container whose
# process is `true`: berth-runtime against crun and runc, in one run, with
# the runs of all runtimes interleaved so that load from elsewhere on the
# machine hits them alike.  See bench/README.md.
#
#   bench/runtime.sh [-n N] [-w WARMUP] [-r BERTH_RUNTIME] [-i IMAGE_DIR]
#                    [--runc PATH] [--crun PATH] [--json FILE]
#
# Environment (options win): BERTH_RUNTIME (default
# build/src/runtime/berth-runtime), BERTH_TEST_IMAGE (default
# build/test-image, made by scripts/mkimage-busybox.sh), BENCH_ITERATIONS
# (100), BENCH_WARMUP (5), RUNC, CRUN (default: from PATH).
#
# Builds nothing. A runtime whose binary is missing is skipped with a message.
# Must run as root. Everything it makes (bundles, state roots, the cgroup
# /berth-bench-<pid>) is removed on exit.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
berth=${BERTH_RUNTIME:-$top/build/src/runtime/berth-runtime}
image=${BERTH_TEST_IMAGE:-$top/build/test-image}
n=${BENCH_ITERATIONS:-100}
warmup=${BENCH_WARMUP:-5}
runc=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
crun=${CRUN:-$(command -v crun || echo /usr/bin/crun)}
json_out=

die() {
	printf 'bench/runtime.sh: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	-n) n=${2:?}; shift 2 ;;
	-w) warmup=${2:?}; shift 2 ;;
	-r) berth=${2:?}; shift 2 ;;
	-i) image=${2:?}; shift 2 ;;
	--runc) runc=${2:?}; shift 2 ;;
	--crun) crun=${2:?}; shift 2 ;;
	--json) json_out=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done

[[ $n =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, not '$n'"
[[ $warmup =~ ^[0-9]+$ ]] || die "-w wants a number, not '$warmup'"
[ "$(id -u)" = 0 ] || die "must run as root (containers need it)"
[ -f "$image/bundle/config.json" ] ||
	die "no test image in $image (make one: scripts/mkimage-busybox.sh $image)"
command -v python3 >/dev/null || die "python3 is needed"
command -v unshare >/dev/null || die "unshare (util-linux) is needed"

abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }
berth=$(abspath "$berth")
image=$(abspath "$image")
[ -n "$json_out" ] && json_out=$(abspath "$json_out")

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
cgroup_parent=berth-bench-$$

cleanup() {
	local h d
	for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
		d=$h/$cgroup_parent
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/bench.py" <<'EOF'
import json, os, statistics, subprocess, sys, time


def worker():
    """Runs one container per request and reports how long it took: the
    timing loop lives in the worker, so the runtime's own mount namespace
    is that of the worker."""
    seen = set()
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("cleanup"):
            for binary, root in seen:
                if os.path.isdir(root):
                    for cid in os.listdir(root):
                        subprocess.run([binary, "--root", root, "delete",
                                        "--force", cid],
                                       stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            print(json.dumps({"ok": True}), flush=True)
            continue
        seen.add((req["bin"], req["root"]))
        argv = [req["bin"], "--root", req["root"], "run", "--bundle",
                req["bundle"], req["id"]]
        t0 = time.perf_counter_ns()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            rc, err = p.returncode, p.stderr.decode(errors="replace")
        except OSError as e:  # e.g. the binary is being rebuilt
            rc, err = 127, str(e)
        t1 = time.perf_counter_ns()
        print(json.dumps({"ns": t1 - t0, "rc": rc, "err": err[-2000:]}),
              flush=True)


def quantile(xs, q):
    """Nearest-rank quantile of the sorted list XS."""
    k = max(0, min(len(xs) - 1, -(-int(q * 100) * len(xs) // 100) - 1))
    return xs[k]


def driver(cfg):
    variants = cfg["variants"]
    me = [sys.executable, os.path.abspath(__file__), "worker"]
    workers = {}
    # One worker in this mount namespace; one in a private mount namespace
    # without the cgroup2 mount of a hybrid layout (crun 1.8 refuses
    # hybrid cgroups; berth-runtime runs there too, for a like comparison).
    workers["host"] = subprocess.Popen(me, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
    if any(v["ns"] for v in variants):
        script = ("if mountpoint -q /sys/fs/cgroup/unified; then "
                  "umount /sys/fs/cgroup/unified || exit 1; fi; exec \"$@\"")
        workers["ns"] = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
             "sh"] + me, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)

    def ask(w, req):
        w.stdin.write(json.dumps(req) + "\n")
        w.stdin.flush()
        line = w.stdout.readline()
        if not line:
            raise RuntimeError("bench worker died")
        return json.loads(line)

    times = {v["name"]: [] for v in variants}
    failed = {}
    total = cfg["warmup"] + cfg["n"]
    try:
        for i in range(total):
            # Rotate the order each round: no runtime always runs first.
            k = i % len(variants)
            for v in variants[k:] + variants[:k]:
                if v["name"] in failed:
                    continue
                r = ask(workers["ns" if v["ns"] else "host"],
                        {"bin": v["bin"], "root": v["root"],
                         "bundle": v["bundle"],
                         "id": "b%d-%s-%d" % (os.getpid(), v["name"], i)})
                if r["rc"] != 0:
                    failed[v["name"]] = "exit %d: %s" % (r["rc"],
                                                         r["err"].strip())
                elif i >= cfg["warmup"]:
                    times[v["name"]].append(r["ns"] / 1e6)
            if (i + 1) % 25 == 0 or i + 1 == total:
                print("  %d/%d rounds" % (i + 1, total), file=sys.stderr,
                      flush=True)
    finally:
        for w in workers.values():
            try:
                ask(w, {"cleanup": True})
                w.stdin.close()
                w.wait(timeout=30)
            except Exception:
                w.kill()

    rows = {}
    for v in variants:
        name = v["name"]
        if name in failed:
            print("%s FAILED (%s %s): %s" % (name, v["bin"], v["bundle"],
                                            failed[name]), file=sys.stderr)
            continue
        xs = sorted(times[name])
        rows[name] = {"median_ms": statistics.median(xs),
                      "p90_ms": quantile(xs, 0.9), "min_ms": xs[0],
                      "mean_ms": sum(xs) / len(xs), "n": len(xs),
                      "binary": v["bin"], "desc": v["desc"]}

    print()
    print("`RUNTIME run` of a busybox container running `true`: %d runs "
          "each (+%d warm-up), interleaved" % (cfg["n"], cfg["warmup"]))
    print()
    print("%-12s %10s %10s %10s  %s" % ("runtime", "median ms", "p90 ms",
                                        "min ms", "how"))
    for v in variants:
        r = rows.get(v["name"])
        if r:
            print("%-12s %10.2f %10.2f %10.2f  %s" % (
                v["name"], r["median_ms"], r["p90_ms"], r["min_ms"],
                r["desc"]))
        else:
            print("%-12s %10s %10s %10s  %s" % (v["name"], "failed", "-", "-",
                                                v["desc"]))
    for m in cfg["missing"]:
        print("%-12s %10s %10s %10s  %s" % (m["name"], "skipped", "-", "-",
                                            "not found: " + m["bin"]))
    print()
    ratios = {}
    for a, b in (("berth-ns", "crun-ns"), ("berth", "runc")):
        key = "%s/%s" % (a.split("-")[0], b.split("-")[0])
        if a in rows and b in rows:
            ratios[key] = {
                "median": rows[a]["median_ms"] / rows[b]["median_ms"],
                "p90": rows[a]["p90_ms"] / rows[b]["p90_ms"]}
            print("%-12s median %.2fx  p90 %.2fx   (%s vs %s)" % (
                key, ratios[key]["median"], ratios[key]["p90"], a, b))
        else:
            print("%-12s n/a (%s or %s not measured)" % (key, a, b))
    if cfg.get("json"):
        with open(cfg["json"], "w") as f:
            json.dump({"iterations": cfg["n"], "warmup": cfg["warmup"],
                       "results": rows, "ratios": ratios,
                       "failed": failed}, f, indent=2)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker()
    else:
        with open(sys.argv[2]) as f:
            sys.exit(driver(json.load(f)))
EOF

# One bundle per runtime: the test image's config, the shared rootfs
# (read-only), `true` without a terminal, a cgroup under /berth-bench-<pid>.
python3 - "$image" "$work" "$cgroup_parent" "$n" "$warmup" "$json_out" \
	"$berth" "$crun" "$runc" <<'EOF'
import json, os, sys

image, work, parent, n, warmup, json_out, berth, crun, runc = sys.argv[1:]
with open(os.path.join(image, "bundle", "config.json")) as f:
    base = json.load(f)

def bundle(name, oci_version=None):
    c = json.loads(json.dumps(base))
    c["root"] = {"path": os.path.join(image, "bundle", "rootfs"),
                 "readonly": True}
    c["process"]["args"] = ["true"]
    c["process"]["terminal"] = False
    c["linux"]["cgroupsPath"] = "/%s/%s" % (parent, name)
    if oci_version:
        c["ociVersion"] = oci_version
    d = os.path.join(work, "bundle-" + name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    return d

all_variants = [
    ("berth", berth, False, None, "berth-runtime, this mount namespace"),
    ("berth-ns", berth, True, None,
     "berth-runtime, private mount ns without cgroup2 (as crun)"),
    ("crun-ns", crun, True, "1.0.2",
     "crun, private mount ns without cgroup2, ociVersion 1.0.2"),
    ("runc", runc, False, None, "runc, this mount namespace"),
]
variants, missing = [], []
for name, binary, ns, ver, desc in all_variants:
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        if not any(m["bin"] == binary for m in missing):
            print("bench/runtime.sh: %s not found: skipping it" % binary,
                  file=sys.stderr)
        missing.append({"name": name, "bin": binary})
        continue
    variants.append({"name": name, "bin": binary, "ns": ns, "desc": desc,
                     "bundle": bundle(name, ver),
                     "root": os.path.join(work, "state-" + name)})
if not variants:
    sys.exit("bench/runtime.sh: no runtime to measure")
with open(os.path.join(work, "cfg.json"), "w") as f:
    json.dump({"variants": variants, "missing": missing, "n": int(n),
               "warmup": int(warmup), "json": json_out}, f)
EOF

printf 'bench/runtime.sh: %s runs of each runtime (+%s warm-up)...\n' "$n" "$warmup" >&2
python3 "$work/bench.py" driver "$work/cfg.json"
