#!/usr/bin/env bash
# Regenerates src/registry/link-order.txt, the order in which lld lays out
# berth-registry's functions (see src/registry/meson.build): the functions
# a typical session runs come first, so that they share as few 64 KiB
# windows of the executable as possible.
#
#   scripts/gen-link-order.sh [BINARY]    default build/src/registry/berth-registry
#
# The session, run under callgrind (which records every function that
# executes): start, a push and a pull with skopeo, the catalog, tags,
# manifest and blob requests, a chunked upload, the gallery's pages, a
# garbage collection, a few idle seconds, SIGTERM.  callgrind's CPU has no
# AVX-512 or SHA extensions, so for the C library's string functions and
# OpenSSL's SHA-2 code every variant of a function that ran is listed: the
# machine picks its own at start.
#
# Run it after a change that renames or adds much of the code a request
# runs; a stale list only costs memory (unknown names are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/src/registry/berth-registry}")
out=src/registry/link-order.txt
for tool in valgrind callgrind_control skopeo curl nm python3; do
	command -v "$tool" >/dev/null || { echo "${0##*/}: $tool is missing" >&2; exit 1; }
done
[ -f build/test-image/oci/index.json ] || scripts/mkimage-busybox.sh build/test-image >/dev/null

work=$(mktemp -d /tmp/berth-linkorder.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
mkdir "$work/root"
valgrind -q --tool=callgrind --callgrind-out-file="$work/cg.out" \
	"$bin" --listen "127.0.0.1:$port" --root "$work/root" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -fs "$url/v2/" >/dev/null && break; sleep 0.1; done

skopeo copy -q --dest-tls-verify=false oci:build/test-image/oci:latest \
	"docker://127.0.0.1:$port/library/busybox:latest"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/library/busybox:latest" \
	"oci:$work/pulled:latest"
accept='application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
curl -fs "$url/v2/_catalog?n=10" >/dev/null
curl -fs "$url/v2/library/busybox/tags/list" >/dev/null
curl -fs -I -H "Accept: $accept" "$url/v2/library/busybox/manifests/latest" >/dev/null
manifest=$(curl -fs -H "Accept: $accept" "$url/v2/library/busybox/manifests/latest")
layer=$(printf '%s' "$manifest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
curl -fs -o /dev/null "$url/v2/library/busybox/blobs/$layer"
curl -fs -o /dev/null -H 'Range: bytes=0-99' "$url/v2/library/busybox/blobs/$layer"
# What ran so far (start, push, pull) goes first; the rest after it.
callgrind_control -d "$pid" >/dev/null 2>&1
# A chunked upload: POST, two PATCHes, PUT.
head -c 100000 /dev/urandom >"$work/chunk"
digest=sha256:$(sha256sum "$work/chunk" | cut -d' ' -f1)
loc=$(curl -fs -D - -o /dev/null -X POST "$url/v2/library/scratch/blobs/uploads/" |
	tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $loc in /*) loc=$url$loc ;; esac
head -c 50000 "$work/chunk" >"$work/c1"
tail -c 50000 "$work/chunk" >"$work/c2"
loc=$(curl -fs -D - -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 0-49999' --data-binary @"$work/c1" "$loc" |
	tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $loc in /*) loc=$url$loc ;; esac
loc=$(curl -fs -D - -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
	-H 'Content-Range: 50000-99999' --data-binary @"$work/c2" "$loc" |
	tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
case $loc in /*) loc=$url$loc ;; esac
case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
curl -fs -o /dev/null -X PUT "$loc${sep}digest=$digest"
curl -fs -o /dev/null "$url/"
curl -fs -o /dev/null "$url/?q=busy"
curl -fs -o /dev/null "$url/r/library/busybox"
curl -fs -o /dev/null "$url/r/library/busybox/t/latest"
curl -fs -o /dev/null -X POST "$url/admin/gc" || true
curl -s -o /dev/null "$url/v2/library/missing/manifests/latest" || true
sleep 3
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=

python3 - "$bin" "$out" "$work"/cg.out.* "$work/cg.out" <<'EOF'
import re, subprocess, sys
binary, out, dumps = sys.argv[1], sys.argv[2], sys.argv[3:]
# Each dump's new names, sorted: the order within a part does not matter
# (it is resident as a whole), and sorted, a new list differs from the
# old one only where the code did.
ran = []
for cg in dumps:
    part = set()
    for line in open(cg, errors="replace"):
        m = re.match(r"^c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
        if m:
            part.add(m.group(1))
    ran += sorted(part - set(ran))
defs = {}
for l in subprocess.run(["nm", "--defined-only", binary], capture_output=True,
                        text=True, check=True).stdout.splitlines():
    if len(l.split()) == 3:
        defs[l.split()[-1]] = defs.get(l.split()[-1], 0) + 1
syms = sorted(defs)
variant = re.compile(r"^__([a-z0-9]+?)_(sse2|ssse3|sse4_1|sse4_2|avx2?|evex|avx512|erms)")
order, seen = [], set()
def add(name):
    # A static function's name may be defined in several objects (glibc has
    # a read_int in each of its printf and scanf engines): lld would move
    # them all.  Such a name is left out; its object is placed by its
    # other, unique names.
    if name not in seen and defs.get(name, 0) == 1:
        seen.add(name)
        order.append(name)
for name in ran:
    if name.startswith("0x") or name == "???":
        continue
    add(name)
    m = variant.match(name)
    prefix = ("__%s_" % m.group(1)) if m else None
    if name.startswith(("sha256_block_data_order", "sha512_block_data_order")):
        prefix = name[:6] + "_block_data_order"
    if prefix:
        for s in syms:
            if s.startswith(prefix):
                add(s)
with open(out, "w") as f:
    f.write("# berth-registry's functions in the order lld lays them out (hot\n"
            "# first): made by scripts/gen-link-order.sh, do not edit by hand.\n")
    f.write("\n".join(order) + "\n")
print("%s: %d functions" % (out, len(order)))
EOF
