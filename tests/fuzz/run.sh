#!/usr/bin/env bash
# Build and run the fuzz targets (libFuzzer + ASan + UBSan).
#
#   tests/fuzz/run.sh [SECONDS [TARGET...]]     default 300, every target
#
# Configures build-fuzz/ with clang the first time, builds the targets, and
# runs one fuzzing job for SECONDS per target, one target after the other.
# TARGET is a name like fuzz_config or registry_manifest.  For target
# fuzz_NAME, new inputs go to build-fuzz/corpus/NAME (the checked-in seeds in
# tests/fuzz/corpus/NAME are only read), crashes to build-fuzz/artifacts/,
# the log to build-fuzz/fuzz-work/NAME/fuzz-0.log, and tests/fuzz/NAME.dict
# is its dictionary when it exists.  Every target runs even after one
# crashed; the exit status is non-zero when any did.
# Environment: FUZZ_ARGS, extra libFuzzer flags (for every target).
set -euo pipefail

all_targets=(fuzz_config fuzz_registry_manifest fuzz_registry_reference fuzz_yaml
	fuzz_registry_jwt fuzz_registry_htpasswd fuzz_http_server)

secs=${1:-300}
case $secs in
'' | *[!0-9]*)
	printf 'usage: %s [SECONDS [TARGET...]]\n' "${0##*/}" >&2
	exit 2
	;;
esac
shift $(($# > 0 ? 1 : 0))

targets=()
for t in "$@"; do
	t=fuzz_${t#fuzz_}
	case " ${all_targets[*]} " in
	*" $t "*) targets+=("$t") ;;
	*)
		printf '%s: no target %s (%s)\n' "${0##*/}" "$t" "${all_targets[*]}" >&2
		exit 2
		;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build-fuzz

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$top" -Dfuzz=true
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/}"

# The longest input worth trying: a config.json or a manifest can be long,
# names and digests are short.
max_len() {
	case $1 in
	fuzz_registry_reference) echo 1024 ;;
	*) echo 16384 ;;
	esac
}

mkdir -p "$build/artifacts"
crashed=()
for target in "${targets[@]}"; do
	name=${target#fuzz_}
	seeds=$top/tests/fuzz/corpus/$name
	dict=$top/tests/fuzz/$name.dict
	work=$build/fuzz-work/$name
	mkdir -p "$build/corpus/$name" "$work"
	rm -f "$work"/fuzz-*.log
	dict_arg=()
	[ -f "$dict" ] && dict_arg=(-dict="$dict")

	# -jobs=1 runs the fuzzer in one child process that logs to fuzz-0.log
	# in the current directory; the parent's status is non-zero when it
	# crashed.
	status=0
	(
		cd "$work"
		# shellcheck disable=SC2086
		"$build/tests/fuzz/$target" \
			-max_total_time="$secs" -jobs=1 -workers=1 \
			"${dict_arg[@]}" \
			-max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 \
			-artifact_prefix="$build/artifacts/" \
			${FUZZ_ARGS:-} \
			"$build/corpus/$name" "$seeds"
	) || status=$?

	# libFuzzer's parent prints the job's log (fuzz-0.log) when the job ends.
	if [ "$status" -ne 0 ]; then
		printf '%s: crash (status %d): the input is in %s, the log in %s\n' \
			"$target" "$status" "$build/artifacts/" "$work/fuzz-0.log" >&2
		crashed+=("$target")
	else
		printf '%s: no crash in %s s\n' "$target" "$secs"
	fi
done

if [ ${#crashed[@]} -gt 0 ]; then
	printf 'fuzz: %d of %d targets crashed: %s\n' \
		"${#crashed[@]}" "${#targets[@]}" "${crashed[*]}" >&2
	exit 1
fi
printf 'fuzz: no crash in %d targets, %s s each\n' "${#targets[@]}" "$secs"
