#!/usr/bin/env bash
# Installs, builds, makes the test image and runs a container with
# berth-runtime that prints something.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/mkimage-busybox.sh build/test-image >/dev/null
bundle=$(mktemp -d)
trap 'rm -rf "$bundle"' EXIT
python3 - "$bundle" "$PWD/build/test-image/bundle" <<'PY'
import json, sys
out, img = sys.argv[1], sys.argv[2]
c = json.load(open(img + "/config.json"))
c["root"] = {"path": img + "/rootfs", "readonly": True}
c["process"]["args"] = ["sh", "-c",
    "echo \"Hello from a Berth container: $(hostname), pid $$, $(uname -sr)\""]
json.dump(c, open(out + "/config.json", "w"))
PY
build/src/runtime/berth-runtime --root "$bundle/state" run --bundle "$bundle" "demo-$$"
