#!/usr/bin/env bash
# Benchmark: many small scopes. For each size N (default 1000 5000 10000),
# a configuration of N scopes -- Alibaba accounts of 16 regions each, Tair
# KVCache and Hologres in every region, 5 items per scope -- synced from the
# simulator into a throwaway PostgreSQL, twice: a first sync, then a resync
# with nothing changed. Prints wall time and peak RSS of each, and per scope.
#
#   tests/bench/scopes-bench.sh [N...]
#
# Targets (issue "Run it like production", item 7): peak RSS bounded by the
# concurrency, not the number of scopes (<= 64 MiB at 10,000 scopes), and
# <= 2 ms per unchanged scope. Rate limits are lifted on both sides (the
# simulator has none for Alibaba; the client's are set to 10000/s): the
# figures are aifleet's own cost, not a vendor's limit. On demand, never in
# ctest.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 5000 10000)
regions_per_account=16 # the simulator's limit
items=5
. "$root/tests/bench/sync-lib.sh"
sync_world_up scopes-bench
server=${dsn% dbname=postgres}

regions() {
	local r out=
	for r in $(seq -w 1 $regions_per_account); do out+="${out:+, }cn-$r"; done
	echo "$out"
}

# The simulator's accounts and aifleet's, for N scopes (2 per region);
# exports their keys, sets $scopes (N rounded up to whole accounts).
write_configs() { # N DB
	local n=$1 db=$2 accounts a
	accounts=$(((n + 2 * regions_per_account - 1) / (2 * regions_per_account)))
	{
		for a in $(seq -w 1 "$accounts"); do
			printf '[account bench-%s]\nprovider = alibaba\naccess_key_id = LTAIbench%s\n' "$a" "$a"
			printf 'access_key_secret = bench-%s-secret-NOT-REAL\nregions = %s\nitems = %d\n\n' \
				"$a" "$(regions)" "$items"
		done
	} >"$work/sim.ini"
	{
		printf '[database]\nconninfo = %s dbname=%s\n\n' "$server" "$db"
		printf '[sync]\nconcurrency = 4\n\n'
		for a in $(seq -w 1 "$accounts"); do
			printf '[account bench-%s]\nprovider = alibaba\n' "$a"
			printf 'access_key_id_env = BENCH_ID_%s\naccess_key_secret_env = BENCH_SECRET_%s\n' "$a" "$a"
			printf 'regions = %s\nproducts = tair_kvcache, hologres\n' "$(regions)"
			printf 'tair_kvcache_endpoint = http://127.0.0.1:@PORT@\n'
			printf 'hologres_endpoint = http://127.0.0.1:@PORT@/{region}\n'
			printf 'tair_kvcache_rate_limit = 10000\nhologres_rate_limit = 10000\n'
			printf 'tair_kvcache_burst = 10000\nhologres_burst = 10000\n\n'
			export "BENCH_ID_$a=LTAIbench$a" "BENCH_SECRET_$a=bench-$a-secret-NOT-REAL"
		done
	} >"$work/aifleet.ini.in"
	scopes=$((accounts * regions_per_account * 2))
}

start_sim() {
	sim_start "$build/src/sim/aifleet-sim" "$work" --config "$work/sim.ini" || exit 1
	sed "s/@PORT@/$sim_port/" "$work/aifleet.ini.in" >"$work/aifleet.ini"
	chmod 600 "$work/aifleet.ini"
}

printf '%-7s %-9s %9s %9s %10s %10s %10s %10s %9s %12s\n' scopes run wall "peak RSS" "ms/scope" \
	"KiB/scope" collect "fetch w-s" merge "CPU ms/scope"
for n in "${sizes[@]}"; do
	db=scopes_$n
	psql -X -q "$dsn" -c "CREATE DATABASE $db"
	write_configs "$n" "$db"
	start_sim
	"$build/src/cli/aifleet" --config "$work/aifleet.ini" -q migrate >/dev/null
	for run in first unchanged; do
		sync_once "$run-$n"
		read -r wall rss user sys <"$work/time.$run-$n"
		grep -q "($scopes complete" "$work/out.$run-$n" || {
			echo "scopes-bench: $run sync of $scopes scopes not all complete:" >&2
			cat "$work/out.$run-$n" >&2
			exit 1
		}
		printf '%-7s %-9s %7.2f s %5d MiB %10.2f %10.1f %8s s %8s s %7s s %12.2f\n' "$scopes" "$run" \
			"$wall" $((rss / 1024)) "$(echo "$wall * 1000 / $scopes" | bc -l)" \
			"$(echo "$rss / $scopes" | bc -l)" "$(summary "$run-$n" 'collect ([0-9.]+) s')" \
			"$(summary "$run-$n" 'fetch ([0-9.]+) s')" "$(summary "$run-$n" 'merge ([0-9.]+) s')" \
			"$(echo "($user + $sys) * 1000 / $scopes" | bc -l)"
	done
	sim_stop
done
