#!/usr/bin/env bash
# Benchmark: a full `aifleet sync` of N items per product (default 100k) from
# the simulator into a throwaway PostgreSQL, compared in the same run with
# loading the very same rows by raw COPY into plain tables.
#
#   tests/bench/sync-bench.sh [ITEMS]
#
# Prints: wall time, requests, peak RSS, and the split between fetch,
# normalize (+ COPY streaming) and merge; then a resync with no change (which
# must write no history), and the raw COPY baseline of the final rows.
# Rate limits are lifted on both sides (the simulator and the client): at
# TI-ONE's documented 20 requests/s, 1000 pages would take 50 s by design,
# which measures the limit, not aifleet.
set -euo pipefail

items=${1:-100000}
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/bench/sync-lib.sh"
sync_world_up sync-bench

cat >"$work/sim.ini" <<INI
[account bench-ali]
provider = alibaba
access_key_id = LTAI5tBenchAli000000001
access_key_secret = bench-ali-secret-NOT-REAL
regions = cn-hangzhou
items = $items

[account bench-tc]
provider = tencent
secret_id = AKIDBenchTencent000000001
secret_key = bench-tc-secret-NOT-REAL
regions = ap-guangzhou
items = $items

[limits tione]
rate_limit = 0
INI
sim_start "$build/src/sim/aifleet-sim" "$work" --config "$work/sim.ini" || exit 1
port=$sim_port

cat >"$work/aifleet.ini" <<INI
[database]
conninfo = $dsn

[sync]
concurrency = 3
detail_concurrency = 8
max_response_mb = 256
timeout_ms = 120000

[account bench-ali]
provider = alibaba
access_key_id_env = BENCH_ALI_ID
access_key_secret_env = BENCH_ALI_SECRET
regions = cn-hangzhou
tair_kvcache_endpoint = http://127.0.0.1:$port
hologres_endpoint = http://127.0.0.1:$port/{region}
tair_kvcache_rate_limit = 10000
hologres_rate_limit = 10000
tair_kvcache_burst = 10000
hologres_burst = 10000

[account bench-tc]
provider = tencent
secret_id_env = BENCH_TC_ID
secret_key_env = BENCH_TC_SECRET
regions = ap-guangzhou
tione_endpoint = http://127.0.0.1:$port
tione_rate_limit = 10000
tione_burst = 10000
INI
chmod 600 "$work/aifleet.ini"
export BENCH_ALI_ID=LTAI5tBenchAli000000001 BENCH_ALI_SECRET=bench-ali-secret-NOT-REAL
export BENCH_TC_ID=AKIDBenchTencent000000001 BENCH_TC_SECRET=bench-tc-secret-NOT-REAL

"$build/src/cli/aifleet" --config "$work/aifleet.ini" -q migrate >/dev/null

report() { # label title
	local wall rss
	read -r wall rss _ <"$work/time.$1"
	printf '%-22s %7.2f s %5d MiB  requests %-6s items %-7s history %-7s collect %5s s (fetch %s, normalize+copy %s worker-s)  merge %5s s\n' \
		"$2" "$wall" $((rss / 1024)) "$(summary "$1" '; ([0-9]+) requests')" \
		"$(summary "$1" '\), ([0-9]+) items')" "$(summary "$1" '; ([0-9]+) history rows')" \
		"$(summary "$1" 'collect ([0-9.]+) s')" "$(summary "$1" 'fetch ([0-9.]+) s')" \
		"$(summary "$1" 'normalize\+copy ([0-9.]+) s')" "$(summary "$1" 'merge ([0-9.]+) s')"
}

echo "sync-bench: $items items per product (Tair, Hologres, TI-ONE), simulator on :$port"
sync_once initial
sync_once resync

# Split of the initial sync, from the run's own timers.
"$build/src/cli/aifleet" --config "$work/aifleet.ini" -q status --runs 2 >"$work/status.txt"

# Raw COPY baseline: the same final rows (current tables and history, every
# column), exported and loaded by psql \copy into plain tables of the same
# shape: no keys, no indexes, no exclusion constraint.
psql_q() { psql "$dsn" -X -q -v ON_ERROR_STOP=1 "$@"; }
for t in instance service resource history; do
	psql_q -c "\\copy (SELECT * FROM aifleet.$t) TO '$work/$t.copy'"
done
psql_q -c "CREATE SCHEMA raw;
	CREATE TABLE raw.instance (LIKE aifleet.instance);
	CREATE TABLE raw.service (LIKE aifleet.service);
	CREATE TABLE raw.resource (LIKE aifleet.resource);
	CREATE TABLE raw.history (LIKE aifleet.history);"
start=$(date +%s.%N)
for t in instance service resource history; do
	psql_q -c "\\copy raw.$t FROM '$work/$t.copy'"
done
end=$(date +%s.%N)
raw=$(echo "$end - $start" | bc -l)
rows=$(psql_q -Atc "SELECT (SELECT count(*) FROM raw.instance) + (SELECT count(*) FROM raw.service) + (SELECT count(*) FROM raw.resource) + (SELECT count(*) FROM raw.history)")

echo
printf '%-26s %10s  %11s\n' "" "wall" "peak RSS"
report initial "initial sync"
report resync "resync, no change"
read -r wall_initial _ <"$work/time.initial"
printf '%-26s %8.2f s  (%s rows: instances, services, resources, history)\n' "raw COPY of final rows" "$raw" "$rows"
echo
printf 'initial sync / raw COPY = %.2fx   resync / initial = %.2fx\n' \
	"$(echo "$wall_initial / $raw" | bc -l)" \
	"$(echo "$(cut -d' ' -f1 "$work/time.resync") / $wall_initial" | bc -l)"
echo
echo "summary lines:"
cat "$work/out.initial" "$work/out.resync"
grep -q '; 0 history rows' "$work/out.resync" || { echo "FAIL: the resync wrote history" >&2; exit 1; }
echo "resync wrote no history: ok"
