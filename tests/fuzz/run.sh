#!/usr/bin/env bash
# Build and run the config.json fuzzer (libFuzzer + ASan + UBSan).
#
#   tests/fuzz/run.sh [SECONDS]     default 300
#
# Configures build-fuzz/ with clang the first time, builds fuzz_config, and
# runs one fuzzing job for SECONDS.  New inputs go to build-fuzz/corpus/config
# (the checked-in seeds in tests/fuzz/corpus/config are only read), crashes
# to build-fuzz/artifacts/.  Exits non-zero when the fuzzer found a crash.
# Environment: FUZZ_ARGS, extra libFuzzer flags.
set -euo pipefail

secs=${1:-300}
case $secs in
'' | *[!0-9]*)
	printf 'usage: %s [SECONDS]\n' "${0##*/}" >&2
	exit 2
	;;
esac

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build-fuzz
seeds=$top/tests/fuzz/corpus/config

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$top" -Dfuzz=true
fi
ninja -C "$build" tests/fuzz/fuzz_config

work=$build/fuzz-work
mkdir -p "$build/corpus/config" "$build/artifacts" "$work"
rm -f "$work"/fuzz-*.log

# -jobs=1 runs the fuzzer in one child process that logs to fuzz-0.log in
# the current directory; the parent's status is non-zero when it crashed.
status=0
(
	cd "$work"
	# shellcheck disable=SC2086
	"$build/tests/fuzz/fuzz_config" \
		-max_total_time="$secs" -jobs=1 -workers=1 \
		-dict="$top/tests/fuzz/config.dict" \
		-max_len=16384 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 \
		-artifact_prefix="$build/artifacts/" \
		${FUZZ_ARGS:-} \
		"$build/corpus/config" "$seeds"
) || status=$?

# libFuzzer's parent prints the job's log (fuzz-0.log) when the job ends.
if [ "$status" -ne 0 ]; then
	printf 'fuzz_config: crash (status %d): the input is in %s, the log in %s\n' \
		"$status" "$build/artifacts/" "$work/fuzz-0.log" >&2
	exit 1
fi
printf 'fuzz_config: no crash in %s s\n' "$secs"
