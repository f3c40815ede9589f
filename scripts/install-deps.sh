#!/usr/bin/env bash
# Installs everything Berth needs to build and test on Debian 12. Idempotent:
# packages already present are left alone and apt is only asked when one is
# missing.
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config clang clang-format
	libclang-rt-14-dev lld
	# libraries
	libjansson-dev libseccomp-dev libcap-dev libmnl-dev
	libssl-dev libcrypt-dev libcurl4-openssl-dev libfyaml-dev
	# tests
	libcmocka-dev python3-pytest busybox-static iproute2 procps util-linux
	# real clients and reference runtimes and registries
	containerd podman crun runc skopeo docker-registry apache2-utils
	# the registry gallery's browser test
	chromium
	# benchmarks
	hyperfine wrk
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
