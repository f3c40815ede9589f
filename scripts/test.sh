#!/usr/bin/env bash
# Installs, builds and runs every test tier: style, C unit tests, black-box
# tests.  Ends with one line "N passed, N failed, N skipped" over all tiers.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh || { echo "0 passed, 1 failed"; exit 1; }
scripts/mkimage-busybox.sh build/test-image >/dev/null ||
	{ echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0

# Tier 0: formatting is checked, not hoped for.
if git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>/tmp/berth-format.$$; then
	passed=$((passed + 1)); echo "style: clang-format clean"
else
	failed=$((failed + 1)); echo "style: clang-format differences:"; head -20 /tmp/berth-format.$$
fi
rm -f /tmp/berth-format.$$

# Tier 1: C unit tests.
meson test -C build --suite unit --print-errorlogs >/tmp/berth-unit.$$ 2>&1
grep -E '^ *[0-9]+/[0-9]+ ' /tmp/berth-unit.$$ || true
u_ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' /tmp/berth-unit.$$)
u_fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' /tmp/berth-unit.$$)
u_skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' /tmp/berth-unit.$$)
[ -n "$u_fail" ] && [ "$u_fail" != 0 ] && cat /tmp/berth-unit.$$
rm -f /tmp/berth-unit.$$
passed=$((passed + ${u_ok:-0})); failed=$((failed + ${u_fail:-0})); skipped=$((skipped + ${u_skip:-0}))
[ -z "$u_ok" ] && failed=$((failed + 1))

# Tier 2: black-box tests of the real binaries and real clients.
/usr/bin/python3 -m pytest -q -rfEs -p no:cacheprovider tests/blackbox "$@" >/tmp/berth-bb.$$ 2>&1
cat /tmp/berth-bb.$$
line=$(tail -1 /tmp/berth-bb.$$)
rm -f /tmp/berth-bb.$$
for kind in passed failed skipped error errors xfailed xpassed; do
	n=$(echo "$line" | grep -oE "[0-9]+ $kind" | grep -oE '^[0-9]+' || true)
	case $kind in
	passed | xfailed) passed=$((passed + ${n:-0})) ;;
	failed | error | errors | xpassed) failed=$((failed + ${n:-0})) ;;
	skipped) skipped=$((skipped + ${n:-0})) ;;
	esac
done
echo "$line" | grep -qE '[0-9]+ (passed|failed)' || failed=$((failed + 1))

# Tier 3: a short run of every fuzz target (the 5-minute run of each is
# tests/fuzz/run.sh 300); a crash fails it.
if tests/fuzz/run.sh "${BERTH_FUZZ_SECONDS:-20}" >/tmp/berth-fuzz.$$ 2>&1; then
	passed=$((passed + 1)); tail -1 /tmp/berth-fuzz.$$
else
	failed=$((failed + 1)); tail -30 /tmp/berth-fuzz.$$
fi
rm -f /tmp/berth-fuzz.$$

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
