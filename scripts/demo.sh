#!/usr/bin/env bash
# The whole mission in one command, on the embedded default: no cloud
# account, no database to set up.
#
#   1. install the Debian packages and build aifleet and aifleet-sim,
#   2. start a throwaway PostgreSQL and the cloud simulator (demo fleet),
#   3. aifleet sync; mutate the simulated fleet; aifleet sync again,
#   4. print aifleet status, the inventory summary, the change feed and
#      aifleet report.
#
# Everything is stopped and removed at the end, unless --keep is given: then
# the database and simulator stay up and the script prints how to reach them.
#
#   scripts/demo.sh [--keep] [--items N]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
keep=false
items=50

while [ $# -gt 0 ]; do
	case "$1" in
	--keep) keep=true ;;
	--items) items=${2:?--items needs a number}; shift ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo.sh: unknown option $1" >&2; exit 64 ;;
	esac
	shift
done

work=$(mktemp -d /tmp/aifleet-demo.XXXXXX)
chmod 755 "$work"
. "$root/scripts/sim-lib.sh"

cleanup() {
	if $keep; then
		return
	fi
	sim_stop
	"$root/scripts/pg.sh" stop "$work/pg" || true
	rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing dependencies and building"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIFLEET_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target aifleet aifleet-sim >/dev/null
aifleet=$build/src/cli/aifleet
sim=$build/src/sim/aifleet-sim

say "Starting a throwaway PostgreSQL and the cloud simulator"
dsn=$("$root/scripts/pg.sh" start "$work/pg")
sim_start "$sim" "$work" --items "$items"
port=$sim_port
echo "PostgreSQL: $dsn"
echo "simulator:  http://127.0.0.1:$port ($items items per product, account and region)"

sed -e "s|@PORT@|$port|g" -e "s|@CONNINFO@|$dsn|g" "$root/deploy/demo.ini.in" >"$work/aifleet.ini"
chmod 600 "$work/aifleet.ini"
# The simulator's built-in demo keys, in the environment.
. "$root/scripts/demo-keys.sh"

run() {
	echo "\$ aifleet $*"
	"$aifleet" --config "$work/aifleet.ini" "$@"
}

say "First sync: everything is new"
run sync

say "Mutating the simulated fleet: 5% created, 5% changed, 5% deleted"
curl -fsS -X POST -d '{"create":0.05,"update":0.05,"delete":0.05,"seed":42}' \
	"http://127.0.0.1:$port/_sim/mutate" |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print("created %d, updated %d, deleted %d instances" % (d["created"], d["updated"], d["deleted"]))' 2>/dev/null ||
	true

say "Second sync: only the differences are written"
run sync

say "Status: runs and per-scope freshness"
run status

psql_q() { psql "$dsn" -X -q -P pager=off -c "$1"; }

say "Inventory: capacity by provider, product and region (aifleet.capacity_summary)"
psql_q "SELECT provider, region, coalesce(gpu_model, '-') AS gpu_model,
	       sum(instances) AS instances, sum(gpu_cards) AS gpu_cards,
	       sum(gpu_memory_gib) AS gpu_mem_gib, sum(cpu_cores) AS cpu_cores,
	       sum(memory_gib) AS memory_gib
	  FROM aifleet.capacity_summary
	 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;"

say "What changed in the second sync (aifleet.change_feed: a few of each kind, then the counts)"
psql_q "SELECT change, product, region, native_id, name, left(diff::text, 70) AS diff
	  FROM (SELECT *, row_number() OVER (PARTITION BY change, product ORDER BY native_id) AS n
	          FROM aifleet.change_feed
	         WHERE run_id = (SELECT max(run_id) FROM aifleet.change_feed)
	           AND entity_type IN ('instance', 'service')) c
	 WHERE n <= 2 ORDER BY change, product, native_id;"
psql_q "SELECT entity_type, change, count(*) FROM aifleet.change_feed
	 WHERE run_id = (SELECT max(run_id) FROM aifleet.change_feed)
	 GROUP BY 1, 2 ORDER BY 1, 2;"

say "The report a daily cron job would mail (aifleet report; --no-record leaves the next one's start alone)"
run report --no-record

if $keep; then
	say "Left running (--keep)"
	echo "psql \"$dsn\""
	echo "config: $work/aifleet.ini (credentials: see scripts/demo.sh)"
	echo "stop:   kill $sim_pid; $root/scripts/pg.sh stop $work/pg"
fi
say "Done"
