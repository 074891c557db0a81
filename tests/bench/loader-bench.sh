#!/usr/bin/env bash
# Loader benchmark (on demand, never in ctest):
#
#   tests/bench/loader-bench.sh [INSTANCES] [SMALL_INSTANCES]
#
# Starts its own throwaway PostgreSQL (scripts/pg.sh), builds fleetgen, and
# measures on a synthetic fleet (default 100k instances = 1.3M rows):
#   1. initial load through the loader vs a raw psql \copy of the same final
#      rows into plain tables (target <= 2.0x)
#   2. reload of identical data (target <= 0.25x of the initial load,
#      0 history rows, 0 updated)
#   3. reload with 1% changed, 1% deleted, 1% new: history rows expected vs got
#   4. peak RSS of the loader at two fleet sizes (must not grow with the fleet)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
small=${2:-25000}
build=${BUILD_DIR:-$root/build-bench}
work=$(mktemp -d /tmp/aifleet-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$root/scripts/pg.sh" stop "$work/pg" || true
	rm -rf "$work"
}
trap cleanup EXIT

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DAIFLEET_TESTS=ON -DAIFLEET_WERROR=OFF >/dev/null
cmake --build "$build" -j2 --target fleetgen >/dev/null
gen=$(find "$build" -name fleetgen -type f -perm -u+x | head -1)

dsn=$("$root/scripts/pg.sh" start "$work/pg")
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
for db in bench small raw; do psql "$dsn" -c "CREATE DATABASE $db"; done

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }

echo "== initial load of $n instances"
out1=$("$gen" --dsn "$dsn dbname=bench" --migrate --instances "$n")
echo "$out1"

echo "== raw baseline: \\copy of the same final rows into plain tables"
# The very rows the initial load left behind -- instance, service, resource
# and their history, every column -- exported, then loaded by psql \copy
# into tables of the same shape with no keys, indexes or constraints.
psql "$dsn dbname=raw" -c "CREATE SCHEMA aifleet"
for t in instance service resource history; do
	psql "$dsn dbname=bench" -c "\\copy (SELECT * FROM aifleet.$t) TO '$work/$t.copy'"
	cols=$(psql "$dsn dbname=bench" -tAc "SELECT string_agg(quote_ident(column_name) || ' ' ||
		format_type(atttypid, atttypmod), ', ' ORDER BY ordinal_position)
		FROM information_schema.columns c JOIN pg_attribute a
		  ON a.attrelid = 'aifleet.$t'::regclass AND a.attname = c.column_name
		WHERE table_schema = 'aifleet' AND table_name = '$t'")
	psql "$dsn dbname=raw" -c "CREATE TABLE aifleet.$t ($cols)"
done
t0=$(date +%s.%N)
for t in instance service resource history; do
	psql "$dsn dbname=raw" -c "\\copy aifleet.$t FROM '$work/$t.copy'"
done
t1=$(date +%s.%N)
raw_s=$(echo "$t1 - $t0" | bc -l)
raw_rows=$(psql "$dsn dbname=raw" -tAc "SELECT (SELECT count(*) FROM aifleet.instance) +
	(SELECT count(*) FROM aifleet.service) + (SELECT count(*) FROM aifleet.resource) +
	(SELECT count(*) FROM aifleet.history)")

echo "== reload of identical data"
out2=$("$gen" --dsn "$dsn dbname=bench" --instances "$n")
echo "$out2"

echo "== reload with 1% changed, 1% deleted, 1% new"
out3=$("$gen" --dsn "$dsn dbname=bench" --instances "$n" --change 1 --delete 1 --new 1)
echo "$out3"

echo "== peak RSS at $small instances"
outs=$("$gen" --dsn "$dsn dbname=small" --migrate --instances "$small")
echo "$outs"

load_s=$(field seconds "$out1")
reload_s=$(field seconds "$out2")
mut_s=$(field seconds "$out3")
ratio() { echo "scale=3; $1 / $2" | bc -l; }
verdict() { if [ "$(echo "$1 <= $2" | bc -l)" = 1 ]; then echo ok; else echo MISSED; fi; }

echo
echo "================ loader benchmark ($n instances, $(field rows "$out1") rows) ================"
printf "%-44s %10s %10s %8s\n" "measure" "value" "target" "verdict"
printf "%-44s %10s\n" "raw \\copy of the $raw_rows final rows (s)" "$raw_s"
printf "%-44s %10s\n" "initial load (s)" "$load_s"
printf "%-44s %10s\n" "  of which COPY stream (s)" "$(field copy_seconds "$out1")"
printf "%-44s %10s\n" "  of which merge (s)" "$(field merge_seconds "$out1")"
r1=$(ratio "$load_s" "$raw_s")
printf "%-44s %10s %10s %8s\n" "initial load / raw copy" "${r1}x" "<= 2.0x" "$(verdict "$r1" 2.0)"
printf "%-44s %10s\n" "reload identical (s)" "$reload_s"
r2=$(ratio "$reload_s" "$load_s")
printf "%-44s %10s %10s %8s\n" "reload identical / initial load" "${r2}x" "<= 0.25x" "$(verdict "$r2" 0.25)"
printf "%-44s %10s %10s\n" "reload identical: history rows" "$(field got_history "$out2")" "0"
printf "%-44s %10s %10s\n" "reload identical: updated rows" "$(field got_updated "$out2")" "0"
printf "%-44s %10s\n" "reload 1%/1%/1% (s)" "$mut_s"
printf "%-44s %10s %10s\n" "1%/1%/1%: updated (got / expected)" "$(field got_updated "$out3")" "$(field expect_updated "$out3")"
printf "%-44s %10s %10s\n" "1%/1%/1%: deleted (got / expected)" "$(field got_deleted "$out3")" "$(field expect_deleted "$out3")"
printf "%-44s %10s %10s\n" "1%/1%/1%: created (got / expected)" "$(field got_created "$out3")" "$(field expect_created "$out3")"
printf "%-44s %10s %10s\n" "1%/1%/1%: history rows (got / expected)" "$(field got_history "$out3")" "$(field expect_history "$out3")"
printf "%-44s %10s\n" "peak RSS, $small instances (KiB)" "$(field rss_kib "$outs")"
printf "%-44s %10s\n" "peak RSS, $n instances (KiB)" "$(field rss_kib "$out1")"
fail=0
[ "$(field got_history "$out2")" = 0 ] || fail=1
[ "$(field got_updated "$out2")" = 0 ] || fail=1
[ "$(field got_history "$out3")" = "$(field expect_history "$out3")" ] || fail=1
[ "$(field got_updated "$out3")" = "$(field expect_updated "$out3")" ] || fail=1
[ "$(field got_deleted "$out3")" = "$(field expect_deleted "$out3")" ] || fail=1
[ "$(field got_created "$out3")" = "$(field expect_created "$out3")" ] || fail=1
if [ $fail = 1 ]; then
	echo "loader-bench: counts differ from the expectation" >&2
	exit 1
fi
