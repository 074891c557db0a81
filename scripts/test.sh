#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. install the Debian packages (scripts/install-deps.sh),
#   2. start a throwaway PostgreSQL (scripts/pg.sh),
#   3. build and run ctest (cmocka unit + integration tests),
#   4. build again with ASan+UBSan and run ctest again,
# and always stop and remove the cluster. Any failure -> non-zero exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-$(nproc)}
work=$(mktemp -d /tmp/aifleet-test.XXXXXX)
chmod 755 "$work"

cleanup() {
	"$root/scripts/pg.sh" stop "$work/pg" || true
	rm -rf "$work"
}
trap cleanup EXIT

"$root/scripts/install-deps.sh"

export AIFLEET_TEST_DSN
AIFLEET_TEST_DSN=$("$root/scripts/pg.sh" start "$work/pg")
echo "test.sh: throwaway PostgreSQL at $AIFLEET_TEST_DSN"

run_suite() {
	local build=$1
	shift
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIFLEET_TESTS=ON "$@" >/dev/null
	cmake --build "$build" -j "$jobs"
	(cd "$build" && ctest --output-on-failure -j "$jobs")
}

echo "== test.sh: regular build =="
run_suite "${BUILD_DIR:-$root/build}"

echo "== test.sh: ASan + UBSan build =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite "${ASAN_BUILD_DIR:-$root/build-asan}" -DAIFLEET_SANITIZE=ON

echo "test.sh: all suites passed"
