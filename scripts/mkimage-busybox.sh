#!/usr/bin/env bash
# Builds Berth's test base image from Debian's busybox-static, offline and
# deterministically: the same busybox binary (and SOURCE_DATE_EPOCH) always
# gives byte-identical output.
#
#   scripts/mkimage-busybox.sh OUTDIR          build (then self-check)
#   scripts/mkimage-busybox.sh --check OUTDIR  only verify an existing build
#
# OUTDIR/bundle/  OCI runtime bundle: config.json (runc-spec defaults) + rootfs/
# OUTDIR/oci/     OCI image layout with one single-layer image tagged "latest"
#
# Only OUTDIR/bundle and OUTDIR/oci are replaced on a re-run; anything else in
# OUTDIR is left alone. Needs: busybox-static, tar (GNU), gzip, python3,
# coreutils. Environment: MKIMAGE_BUSYBOX (a static busybox to use instead of
# /bin/busybox, which must belong to busybox-static), SOURCE_DATE_EPOCH
# (default 0).
set -euo pipefail

readonly PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

die() {
	printf 'mkimage-busybox: %s\n' "$*" >&2
	exit 1
}

usage() {
	printf 'usage: %s [--check] OUTDIR\n' "${0##*/}" >&2
	exit 2
}

# --- self-check ---------------------------------------------------------------

# check OUTDIR: verifies every blob against its name with sha256sum, every
# descriptor's size and digest, the layer's diff_id and the bundle's config.
check() {
	local out=$1 oci=$1/oci blob want got
	[ -f "$oci/oci-layout" ] || die "check: $oci/oci-layout missing"
	[ -f "$oci/index.json" ] || die "check: $oci/index.json missing"
	for blob in "$oci"/blobs/sha256/*; do
		[ -f "$blob" ] || die "check: no blobs in $oci/blobs/sha256"
		want=${blob##*/}
		got=$(sha256sum <"$blob")
		got=${got%% *}
		[ "$want" = "$got" ] || die "check: blob $want has digest $got"
	done
	python3 - "$out" <<'EOF'
import gzip, hashlib, json, os, sys

out = sys.argv[1]
oci = os.path.join(out, "oci")

def fail(msg):
    sys.exit("mkimage-busybox: check: " + msg)

def load(path):
    with open(path, "rb") as f:
        return f.read()

def blob(desc, media_type):
    if desc.get("mediaType") != media_type:
        fail("descriptor %s: mediaType %r, want %r"
             % (desc.get("digest"), desc.get("mediaType"), media_type))
    algo, _, hexd = desc["digest"].partition(":")
    if algo != "sha256":
        fail("unsupported digest " + desc["digest"])
    data = load(os.path.join(oci, "blobs", "sha256", hexd))
    if len(data) != desc["size"]:
        fail("blob %s: size %d, descriptor says %d" % (hexd, len(data), desc["size"]))
    if hashlib.sha256(data).hexdigest() != hexd:
        fail("blob %s: digest mismatch" % hexd)
    return data

if json.loads(load(os.path.join(oci, "oci-layout"))) != {"imageLayoutVersion": "1.0.0"}:
    fail("bad oci-layout")
index = json.loads(load(os.path.join(oci, "index.json")))
if index.get("schemaVersion") != 2:
    fail("index.json: schemaVersion is not 2")
refs = [m for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"]
if len(refs) != 1:
    fail("index.json: want exactly one manifest tagged latest")
manifest = json.loads(blob(refs[0], "application/vnd.oci.image.manifest.v1+json"))
config = json.loads(blob(manifest["config"], "application/vnd.oci.image.config.v1+json"))
layers = manifest["layers"]
diff_ids = config["rootfs"]["diff_ids"]
if config["rootfs"]["type"] != "layers" or len(layers) != len(diff_ids):
    fail("config rootfs does not match manifest layers")
for desc, diff_id in zip(layers, diff_ids):
    tar = gzip.decompress(blob(desc, "application/vnd.oci.image.layer.v1.tar+gzip"))
    if "sha256:" + hashlib.sha256(tar).hexdigest() != diff_id:
        fail("layer %s: diff_id mismatch" % desc["digest"])

spec = json.loads(load(os.path.join(out, "bundle", "config.json")))
root = os.path.join(out, "bundle", spec["root"]["path"])
if not os.access(os.path.join(root, "bin", "busybox"), os.X_OK):
    fail("bundle: rootfs/bin/busybox is not executable")
for link in ("bin/sh", "usr/bin/env", "sbin/init"):
    if os.path.realpath(os.path.join(root, link)) != os.path.join(os.path.realpath(root), "bin", "busybox"):
        fail("bundle: rootfs/%s does not resolve to bin/busybox" % link)
EOF
	if command -v skopeo >/dev/null 2>&1; then
		skopeo inspect "oci:$oci:latest" >/dev/null ||
			die "check: skopeo inspect oci:$oci:latest failed"
	fi
}

# --- build --------------------------------------------------------------------

# goarch DPKG_ARCH: prints "GOARCH [VARIANT]" for a Debian architecture.
goarch() {
	case $1 in
	amd64 | arm64 | s390x | riscv64 | loong64) echo "$1" ;;
	i386) echo 386 ;;
	armhf) echo arm v7 ;;
	armel) echo arm v5 ;;
	ppc64el) echo ppc64le ;;
	ppc64) echo ppc64 ;;
	mips64el) echo mips64le ;;
	mipsel) echo mipsle ;;
	*) die "unknown Debian architecture $1" ;;
	esac
}

build_rootfs() {
	local rootfs=$1 busybox=$2
	mkdir -p "$rootfs"
	(
		cd "$rootfs"
		mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root \
			home/berth var run
		chmod 0755 bin sbin usr usr/bin usr/sbin etc proc sys dev root \
			home home/berth var run
		chmod 1777 tmp
		chmod 0700 root
		cp "$busybox" bin/busybox
		chmod 0755 bin/busybox

		# One relative symlink per applet, so links resolve both inside
		# the container and from the host (rootfs/bin/sh works too). One
		# python3 process rather than a few forks per applet keeps it fast.
		"$busybox" --list-full | python3 -c '
import os, sys
for applet in sorted(set(sys.stdin.read().split())):
    parts = applet.split("/")
    if applet.startswith("/") or ".." in parts or "" in parts:
        sys.exit("mkimage-busybox: suspicious applet path %r" % applet)
    if applet == "bin/busybox":
        continue
    if len(parts) > 1:
        os.makedirs(os.path.dirname(applet), mode=0o755, exist_ok=True)
    os.symlink("../" * (len(parts) - 1) + "bin/busybox", applet)
'

		cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
berth:x:1000:1000::/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
		cat >etc/group <<'EOF'
root:x:0:
berth:x:1000:
extra:x:1001:berth
nogroup:x:65534:
EOF
		chmod 0644 etc/passwd etc/group
	)
}

write_config_json() {
	python3 - "$1" <<'EOF'
import json, sys

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

def mount(dest, typ, src, opts=None):
    m = {"destination": dest, "type": typ, "source": src}
    if opts:
        m["options"] = opts
    return m

spec = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": [PATH_ENV, "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "berth",
    "mounts": [
        mount("/proc", "proc", "proc"),
        mount("/dev", "tmpfs", "tmpfs",
              ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount("/dev/pts", "devpts", "devpts",
              ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        mount("/dev/shm", "tmpfs", "shm",
              ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        mount("/sys/fs/cgroup", "cgroup", "cgroup",
              ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in
                       ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
            "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ],
        "readonlyPaths": [
            "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
            "/proc/sysrq-trigger",
        ],
    },
}
with open(sys.argv[1], "w") as f:
    f.write(json.dumps(spec, indent="\t") + "\n")
EOF
}

build() {
	local out=$1 busybox=${MKIMAGE_BUSYBOX:-/bin/busybox}
	local epoch=${SOURCE_DATE_EPOCH:-0}
	local owner version arch platform go_arch go_variant created work rootfs oci
	local diff_id

	[[ $epoch =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number"
	[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
	if [ -z "${MKIMAGE_BUSYBOX:-}" ]; then
		owner=$(dpkg-query -S "$busybox" 2>/dev/null) || owner=
		[ "${owner%%:*}" = busybox-static ] ||
			die "$busybox does not come from busybox-static (apt-get install busybox-static)"
		version=$(dpkg-query -W -f='${Version}' busybox-static)
		arch=$(dpkg-query -W -f='${Architecture}' busybox-static)
	else
		version=$("$busybox" --help 2>&1 | sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p') ||
			true
		arch=$(dpkg --print-architecture)
	fi
	platform=$(goarch "$arch")
	read -r go_arch go_variant <<<"$platform" || true
	created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

	mkdir -p "$out"
	work=$(mktemp -d "$out/.mkimage.XXXXXX")
	MKIMAGE_WORK=$work
	trap 'rm -rf "$MKIMAGE_WORK"' EXIT
	rootfs=$work/bundle/rootfs
	oci=$work/oci

	umask 022
	build_rootfs "$rootfs" "$busybox"
	write_config_json "$work/bundle/config.json"

	# The layer: sorted names, fixed times and owners, no pid in pax names.
	mkdir -p "$oci/blobs/sha256"
	(cd "$rootfs" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z) |
		tar -C "$rootfs" --create --file="$work/layer.tar" --null \
			--no-recursion --files-from=- --sort=name --mtime="@$epoch" \
			--owner=0 --group=0 --numeric-owner --format=posix \
			--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
	diff_id=$(sha256sum <"$work/layer.tar")
	diff_id=sha256:${diff_id%% *}
	gzip -9 -n <"$work/layer.tar" >"$work/layer.tar.gz"
	rm "$work/layer.tar"

	python3 - "$oci" "$work/layer.tar.gz" "$diff_id" "$go_arch" "$go_variant" \
		"$created" "$PATH_ENV" "busybox-static $version" <<'EOF'
import hashlib, json, os, sys

oci, layer, diff_id, arch, variant, created, path_env, comment = sys.argv[1:]

def blob(media_type, path=None, obj=None):
    """Stores a file or a JSON document as a blob; returns its descriptor."""
    if obj is not None:
        data = json.dumps(obj, separators=(",", ":")).encode()
    else:
        with open(path, "rb") as f:
            data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(oci, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    if path is not None:
        os.unlink(path)
    return {"mediaType": media_type, "digest": "sha256:" + digest,
            "size": len(data)}

platform = {"architecture": arch, "os": "linux"}
if variant:
    platform["variant"] = variant

layer_desc = blob("application/vnd.oci.image.layer.v1.tar+gzip", path=layer)
config = {"created": created}
config.update(platform)
config.update({
    "config": {"Env": [path_env], "Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{
        "created": created,
        "created_by": "scripts/mkimage-busybox.sh",
        "comment": comment,
    }],
})
config_desc = blob("application/vnd.oci.image.config.v1+json", obj=config)
manifest_desc = blob("application/vnd.oci.image.manifest.v1+json", obj={
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config_desc,
    "layers": [layer_desc],
})
manifest_desc["platform"] = platform
manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [manifest_desc],
}
with open(os.path.join(oci, "index.json"), "w") as f:
    f.write(json.dumps(index, separators=(",", ":")))
with open(os.path.join(oci, "oci-layout"), "w") as f:
    f.write(json.dumps({"imageLayoutVersion": "1.0.0"}))
EOF

	# Same timestamps on disk as in the layer, so the output is reproducible
	# even for tools that look at mtimes.
	find "$work/bundle" "$oci" -exec touch -h -d "@$epoch" {} +

	check "$work"

	rm -rf "$out/bundle" "$out/oci"
	mv "$work/bundle" "$out/bundle"
	mv "$oci" "$out/oci"
	rm -rf "$work"
	trap - EXIT
}

main() {
	local mode=build
	if [ "${1:-}" = --check ]; then
		mode=check
		shift
	fi
	{ [ $# -eq 1 ] && [ -n "$1" ]; } || usage
	case $1 in -*) usage ;; esac
	if [ "$mode" = check ]; then
		check "$1"
		echo "mkimage-busybox: $1 OK"
	else
		build "$1"
	fi
}

main "$@"
