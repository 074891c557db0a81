#!/usr/bin/env bash
# Read-side benchmark (on demand, never in ctest): the read rows of the
# benchmark table of issue 10.
#
#   tests/bench/read-bench.sh [INSTANCES] [RUNS]
#
# Builds a history with the loader -- an initial load of INSTANCES (default
# 25000) through fleetgen, then RUNS (default 100) runs that each rename 1%
# of the instances (fleetgen --run r --change 1: a different choice every
# run, no instance renamed back, so every run writes exactly its renames as
# `updated` versions; no deletes or new instances) -- and times, on the
# public read side only:
#
#   instances_as_of(ts)   ts between the starts of the two middle runs  <= 0.5 s
#   fleet_as_of(ts)       the same ts                                   <= 1 s
#   change feed           SELECT * FROM aifleet.change_feed
#                         WHERE run_id > max - 10 ORDER BY time, seq    <= 10 ms
#   one entity's versions aifleet.entity_history(provider, account,
#                         product, native_id) when the schema has it,
#                         else the same rows from aifleet.history by
#                         entity_id                                     <= 1 ms
#
# Beside fleet_as_of and the feed, their floor: the same answer (the same
# rows and columns) selected from a plain table, written beforehand --
# what sending those rows costs, whatever query computes them. A floor has
# no target and no verdict.
#
# Each query runs once to warm up, then REPS (default 3) times; the median
# is judged. "client" is psql's \timing (parse, plan, execute and receive
# every row over TCP; output to /dev/null), "server" is EXPLAIN (ANALYZE,
# TIMING OFF): planning + execution, without sending the rows. Both are
# printed; the target is judged on the client figure.
#
# Every run's counts are checked against fleetgen's expect_*, and every
# query's row count against the history that was generated; a mismatch
# exits 1. A missed speed target is printed as MISSED and does not.
#
# Environment:
#   BUILD_DIR           build directory for fleetgen (default $root/build-bench)
#   FLEETGEN            use this fleetgen binary (no build)
#   BENCH_DSN           use this server (a libpq conninfo without dbname)
#                       instead of starting a throwaway one; a database
#                       read_bench_<pid> is created in it and dropped after
#   READ_BENCH_RESULTS  append the results there, one per line:
#                       name|median client ms|target ms|client runs|server ms
#   REPS                timed repetitions per query (default 3)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-25000}
runs=${2:-100}
reps=${REPS:-3}
work=$(mktemp -d /tmp/aifleet-read-bench.XXXXXX)
chmod 755 "$work"
own_pg=0
db_made=0
cleanup() {
	if [ $own_pg = 1 ]; then
		"$root/scripts/pg.sh" stop "$work/pg" || true
	elif [ $db_made = 1 ]; then
		command psql -X -q "$dsn dbname=postgres" -c "DROP DATABASE IF EXISTS $dbname" || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${FLEETGEN:-}" ]; then
	gen=$FLEETGEN
else
	build=${BUILD_DIR:-$root/build-bench}
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DAIFLEET_TESTS=ON \
		-DAIFLEET_WERROR=OFF >/dev/null
	cmake --build "$build" -j2 --target fleetgen >/dev/null
	gen=$(find "$build" -name fleetgen -type f -perm -u+x | head -1)
fi
if [ -n "${BENCH_DSN:-}" ]; then
	dsn=$BENCH_DSN
	dbname=read_bench_$$
else
	own_pg=1
	dsn=$("$root/scripts/pg.sh" start "$work/pg")
	dbname=reads
fi
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$dsn dbname=postgres" -c "CREATE DATABASE $dbname"
db_made=1
db="$dsn dbname=$dbname"
q() { psql "$db" -tAc "$1"; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
fail=0
bad() {
	echo "read-bench: $*" >&2
	fail=1
}

echo "== read bench: history of $runs runs x 1% renamed over $n instances"
t_start=$(date +%s)
out=$("$gen" --dsn "$db" --migrate --instances "$n")
echo "   initial load: $(field seconds "$out") s"
[ "$(field got_created "$out")" = $((13 * n)) ] || bad "initial load created $(field got_created "$out"), expected $((13 * n))"
feed_expect=()
run_s=()
for r in $(seq "$runs"); do
	out=$("$gen" --dsn "$db" --instances "$n" --run "$r" --change 1)
	run_s+=("$(field seconds "$out")")
	feed_expect+=("$(field expect_history "$out")")
	for k in updated deleted created history; do
		if [ "$(field "got_$k" "$out")" != "$(field "expect_$k" "$out")" ]; then
			bad "run $r: $k $(field "got_$k" "$out"), expected $(field "expect_$k" "$out")"
		fi
	done
	if [ $((r % 10)) = 0 ] || [ "$r" = "$runs" ]; then
		echo "   run $r/$runs: $(field seconds "$out") s, $(field got_updated "$out") updated ($(($(date +%s) - t_start)) s so far)"
	fi
done
echo "   median run: $(median "${run_s[@]}") s"
psql "$db" -c "VACUUM ANALYZE"

# The query parameters, from the public views.
maxrun=$(q "SELECT max(id) FROM aifleet.run_status")
ts=$(q "SELECT started_at + (next - started_at) / 2 FROM (
	SELECT id, started_at, lead(started_at) OVER (ORDER BY id) AS next FROM aifleet.run_status) r
	WHERE id = (SELECT (min(id) + max(id)) / 2 FROM aifleet.run_status)")
IFS='|' read -r e_prov e_acct e_prod e_native e_versions < <(q "SELECT provider, account, product,
	native_id, count(*) FROM aifleet.change_feed WHERE entity_type = 'instance'
	GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 4 LIMIT 1")
lit() { printf "'%s'" "${1//\'/\'\'}"; }
if [ -n "$(q "SELECT to_regprocedure('aifleet.entity_history(text, text, text, text)')")" ]; then
	entity_sql="SELECT * FROM aifleet.entity_history($(lit "$e_prov"), $(lit "$e_acct"), $(lit "$e_prod"), $(lit "$e_native"))"
	entity_how="aifleet.entity_history"
else
	# The schema before aifleet.entity_history: the same versions straight
	# from the history table (the GiST key's leading entity_id serves it).
	entity_sql="SELECT h.entity_type, h.entity_id, h.valid, h.change, h.changed_at, h.run_id, h.diff, h.content
	FROM aifleet.history h WHERE h.entity_id = (SELECT id FROM aifleet.instance
		WHERE (provider, account, product, native_id) = ($(lit "$e_prov"), $(lit "$e_acct"), $(lit "$e_prod"), $(lit "$e_native")))
	ORDER BY h.changed_at, h.id"
	entity_how="aifleet.history by entity_id (no entity_history)"
fi
last10=$((maxrun - 10))
feed_sql="SELECT * FROM aifleet.change_feed WHERE run_id > $last10 ORDER BY time, seq"
asof_i_sql="SELECT * FROM aifleet.instances_as_of('$ts')"
asof_f_sql="SELECT * FROM aifleet.fleet_as_of('$ts')"
echo "   ts = $ts (middle of runs 1..$maxrun); change feed: runs > $last10; entity: $e_prov/$e_acct/$e_prod/$e_native ($e_versions versions) via $entity_how"

# Row counts: what each query must return for the history generated above.
want_feed=0
for ((i = ${#feed_expect[@]} - 10; i < ${#feed_expect[@]}; i++)); do
	[ "$i" -ge 0 ] && want_feed=$((want_feed + feed_expect[i]))
done
# Changes before the very first rename: the initial load's 13 rows per instance.
[ "$runs" -ge 10 ] || want_feed=$((want_feed + 13 * n))
check_rows() { # NAME SQL WANT
	local got
	got=$(q "SELECT count(*) FROM ($2) q")
	if [ "$got" != "$3" ]; then
		bad "$1 returned $got rows, expected $3"
	fi
	echo "   $1: $got rows"
}
check_rows "instances_as_of" "$asof_i_sql" "$n"
check_rows "fleet_as_of" "$asof_f_sql" $((13 * n))
check_rows "change feed" "$feed_sql" "$want_feed"
check_rows "entity versions" "$entity_sql" "$e_versions"

# time_query SQL: one warm-up, then $reps timed runs in one session; prints
# the client times (ms, psql \timing), space-separated.
time_query() {
	{
		printf '%s\n' '\timing on' '\o /dev/null'
		for _ in $(seq $((reps + 1))); do echo "$1;"; done
	} | psql "$db" -At | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n +2 | tr '\n' ' '
}
# server_query SQL: the same under EXPLAIN (ANALYZE); prints the median of
# planning + execution time (ms).
server_query() {
	local t=()
	{
		for _ in $(seq $((reps + 1))); do
			echo "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) $1;"
		done
	} | psql "$db" -At | awk '/^Planning Time:/ { p = $3 } /^Execution Time:/ { print p + $3 }' \
		>"$work/server"
	mapfile -t t < <(tail -n +2 "$work/server")
	median "${t[@]}"
}

results=()
measure() { # NAME SQL TARGET_MS
	local c s med out
	out=$(time_query "$2")
	read -r -a c <<<"$out"
	s=$(server_query "$2")
	med=$(median "${c[@]}")
	results+=("$1|$med|$3|${c[*]}|$s")
}
psql "$db" -c "CREATE SCHEMA bench_floor" \
	-c "CREATE TABLE bench_floor.fleet AS $asof_f_sql" \
	-c "CREATE TABLE bench_floor.feed AS $feed_sql" \
	-c "VACUUM ANALYZE bench_floor.fleet, bench_floor.feed"
check_rows "fleet_as_of's floor" "SELECT * FROM bench_floor.fleet" $((13 * n))
check_rows "the feed's floor" "SELECT * FROM bench_floor.feed" "$want_feed"
measure "instances_as_of(ts)" "$asof_i_sql" 500
measure "fleet_as_of(ts)" "$asof_f_sql" 1000
measure "  floor: its rows from a table" "SELECT * FROM bench_floor.fleet" ""
measure "change feed, last 10 runs" "$feed_sql" 10
measure "  floor: its rows from a table" "SELECT * FROM bench_floor.feed ORDER BY time, seq" ""
measure "one entity's versions" "$entity_sql" 1
psql "$db" -c "SET client_min_messages = warning" -c "DROP SCHEMA bench_floor CASCADE"

echo
echo "================ read benchmark ($n instances, $runs runs x 1% renamed, $(q "SELECT count(*) FROM aifleet.history") history rows) ================"
printf "%-30s %12s %12s %10s %8s   %s\n" "query" "client ms" "server ms" "target" "verdict" "client runs"
for row in "${results[@]}"; do
	IFS='|' read -r name med target all server <<<"$row"
	verdict=-
	if [ -n "$target" ]; then
		verdict=$(awk -v a="$med" -v b="$target" 'BEGIN { print (a <= b ? "ok" : "MISSED") }')
	fi
	printf "%-30s %12s %12s %10s %8s   %s\n" "$name" "$med" "$server" "${target:+<= $target}" "$verdict" "$all"
	if [ -n "${READ_BENCH_RESULTS:-}" ]; then
		echo "$row" >>"$READ_BENCH_RESULTS"
	fi
done
echo "(entity: $entity_how; history generated in $(($(date +%s) - t_start)) s)"
if [ $fail = 1 ]; then
	echo "read-bench: counts differ from the expectation" >&2
	exit 1
fi
