#!/usr/bin/env bash
# Loader benchmark: the benchmark table of issue 10 (on demand, never in
# ctest).
#
#   tests/bench/loader-bench.sh [INSTANCES]
#
# Starts its own throwaway PostgreSQL (scripts/pg.sh), builds fleetgen, and
# measures on a synthetic fleet of INSTANCES (default 100000; 13 rows per
# instance over 12 scopes, so 1.3M entity rows), every measure REPS (default
# 3) times from the same state, medians judged:
#
#   initial load          fleetgen (= the loader) into a fresh, migrated
#                         database; a fresh database for every repetition
#                         (the first-load path: rows straight into their
#                         tables, indexes built after them)
#   initial load, merge   the same through staging and the merge
#                         (fleetgen --no-direct), for comparison
#   generator alone       fleetgen --generate-only: what making the records
#                         costs, part of every load and reload below
#   reload floor          fleetgen --hash-only: the records made, checked and
#                         hashed as the loader's sink does first, stored
#                         nowhere -- what no reload can skip, since a scope
#                         is known unchanged only once all of it is hashed
#   vs raw \copy          psql \copy of the current rows that load left
#                         (instance, service, resource; not history) into
#                         plain tables of the same columns: no keys, no
#                         indexes, no constraints                       <= 2.0x
#   schema floor          the current rows and the history rows that load
#                         left, by psql \copy into tables with no index, then
#                         every index of the four tables (primary and natural
#                         keys included) built by one sort each, as the
#                         loader builds them: what any load that leaves this
#                         schema writes, ANALYZE left out
#   vs the peer           the same rows as CloudQuery's PostgreSQL
#                         destination writes them (see peer_sql below)  <= 0.7x
#   identical reload      the same fleet again                   <= 0.01x,
#                         and nothing written but aifleet.scope_state and
#                         the run's aifleet.sync_run row (checked below)
#   churn, all scopes     1% renamed, 1% deleted, 1% new, over every scope
#                                                                 <= 0.20x
#   churn, K scopes       the same rates inside the first CHURN_SCOPES
#                         (default 1) of the 12 scopes (1/12 = 8.3% of the
#                         instances: the nearest to 10% that 12 scopes
#                         allow); the other scopes unchanged      <= 0.05x
#   reads                 tests/bench/read-bench.sh (its own database in the
#                         same server): as-of, change feed, one entity
#
# Every reload starts from the same state: a copy (CREATE DATABASE ...
# TEMPLATE) of the first repetition's initial load after VACUUM ANALYZE,
# i.e. as autovacuum would leave it; a CHECKPOINT precedes every timed step.
# The loader's time is fleetgen's own (af_loader_begin to commit, records
# generated on the fly; connecting and migrating excluded); raw and peer are
# the wall time of their psql.
#
# Every count is checked (what the loader reports, what the database holds,
# fleetgen's expect_*); a difference exits 1. A missed speed target is
# printed as MISSED and does not change the exit status.
#
# Environment: BUILD_DIR (default $root/build-bench), REPS (3), CHURN_SCOPES
# (1), READ_INSTANCES (25000), READ_RUNS (100), SKIP_READS=1 to leave the
# read benchmark out.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100000}
if [ $# -gt 1 ]; then
	echo "loader-bench: ignoring '$2': the second size of the old peak-RSS comparison is gone (every load prints its peak RSS)" >&2
fi
reps=${REPS:-3}
kscopes=${CHURN_SCOPES:-1}
read_n=${READ_INSTANCES:-25000}
read_runs=${READ_RUNS:-100}
build=${BUILD_DIR:-$root/build-bench}
work=$(mktemp -d /tmp/aifleet-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
	"$root/scripts/pg.sh" stop "$work/pg" || true
	rm -rf "$work"
}
trap cleanup EXIT
t_start=$(date +%s)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DAIFLEET_TESTS=ON -DAIFLEET_WERROR=OFF >/dev/null
cmake --build "$build" -j2 --target fleetgen >/dev/null
gen=$(find "$build" -name fleetgen -type f -perm -u+x | head -1)

server=$("$root/scripts/pg.sh" start "$work/pg")
server=${server% dbname=postgres}
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q() { psql "$server dbname=$1" -tAc "$2"; }          # DB SQL: the answer, unaligned
admin() { psql "$server dbname=postgres" -c "$1"; }
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
now() { date +%s.%N; }
since() { printf '%.3f' "$(echo "$(now) - $1" | bc -l)"; }
checkpoint() { admin "CHECKPOINT"; }
# PostgreSQL >= 15 copies a template by WAL-logging every block unless told
# to copy the files (one checkpoint, then cp): much faster for a 1.5 GB copy.
strategy=
if [ "$(q postgres "SHOW server_version_num")" -ge 150000 ]; then
	strategy="STRATEGY = FILE_COPY"
fi
clone() { # NEW TEMPLATE (retried: a template must have no other session)
	local try
	for try in 1 2 3 4 5; do
		admin "CREATE DATABASE $1 TEMPLATE $2 $strategy" 2>"$work/clone.err" && return 0
		sleep "$try"
	done
	cat "$work/clone.err" >&2
	return 1
}
indent() { sed 's/^/    /'; }

fail=0
checks=()
check() { # WHAT GOT WANT
	local v=ok
	if [ "$2" != "$3" ]; then
		v=FAIL
		fail=1
	fi
	checks+=("$1|$2|$3|$v")
	[ $v = ok ] || echo "loader-bench: $1: got $2, expected $3" >&2
}
# The loader's counts against fleetgen's expectation, and the run's changes
# in the database (public change feed, current view) against the same.
check_run() { # LABEL DB OUT HISTORY_BEFORE
	local label=$1 db=$2 out=$3 run k want
	run=$(field run_id "$out")
	for k in created updated deleted history; do
		check "$label: loader's $k" "$(field "got_$k" "$out")" "$(field "expect_$k" "$out")"
	done
	for k in created updated deleted restored; do
		want=0
		[ $k = restored ] || want=$(field "expect_$k" "$out")
		check "$label: $k in the change feed" \
			"$(q "$db" "SELECT count(*) FROM aifleet.change_feed WHERE run_id = $run AND change = '$k'")" "$want"
	done
	check "$label: history rows" $(($(q "$db" "SELECT count(*) FROM aifleet.history") - $4)) \
		"$(field expect_history "$out")"
	check "$label: current instances" "$(q "$db" "SELECT count(*) FROM aifleet.current_instances")" \
		"$(field instances "$out")"
}

echo "== loader benchmark: $n instances, $reps repetitions, build $build"

# ---- 1. initial load -------------------------------------------------------
load_s=()
for r in $(seq "$reps"); do
	admin "CREATE DATABASE load_$r"
	checkpoint
	out=$("$gen" --dsn "$server dbname=load_$r" --migrate --instances "$n")
	echo "-- initial load $r/$reps"
	indent <<<"$out"
	load_s+=("$(field seconds "$out")")
	check "initial load $r: rows created" "$(field got_created "$out")" $((13 * n))
	check "initial load $r: history rows" "$(q "load_$r" "SELECT count(*) FROM aifleet.change_feed")" $((13 * n))
	check "initial load $r: current instances/services/resources" \
		"$(q "load_$r" "SELECT (SELECT count(*) FROM aifleet.current_instances) || '/' ||
			(SELECT count(*) FROM aifleet.current_services) || '/' ||
			(SELECT count(*) FROM aifleet.current_resources)")" "$n/$((2 * n))/$((10 * n))"
	rss=$(field rss_kib "$out")
	[ "$r" = 1 ] || admin "DROP DATABASE load_$r"
done
base=load_1

merge_s=()
for r in $(seq "$reps"); do
	admin "CREATE DATABASE merge_$r"
	checkpoint
	out=$("$gen" --dsn "$server dbname=merge_$r" --migrate --instances "$n" --no-direct)
	echo "-- initial load through the merge $r/$reps"
	indent <<<"$out"
	merge_s+=("$(field seconds "$out")")
	check "initial load via the merge $r: rows created" "$(field got_created "$out")" $((13 * n))
	check "initial load via the merge $r: same rows as the first-load path" \
		"$(q "merge_$r" "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (SELECT native_id || content_hash::text AS x
			FROM aifleet.instance UNION ALL SELECT native_id || content_hash::text FROM aifleet.service
			UNION ALL SELECT owner_native_id || kind || content_hash::text FROM aifleet.resource) v")" \
		"$(q "$base" "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (SELECT native_id || content_hash::text AS x
			FROM aifleet.instance UNION ALL SELECT native_id || content_hash::text FROM aifleet.service
			UNION ALL SELECT owner_native_id || kind || content_hash::text FROM aifleet.resource) v")"
	admin "DROP DATABASE merge_$r"
done
gen_s=()
hash_s=()
for r in $(seq "$reps"); do
	gen_s+=("$(field seconds "$("$gen" --generate-only --instances "$n")")")
	hash_s+=("$(field seconds "$("$gen" --hash-only --instances "$n")")")
done

# ---- 2. raw \copy of the current rows --------------------------------------
# The very rows the initial load left in the three current tables, every
# column, exported, then loaded by psql \copy into tables of the same columns
# and types with no keys, indexes or constraints: the floor for writing them.
tables="instance service resource"
coldefs() { # TABLE: "col type, ..." as in the base database
	q $base "SELECT string_agg(quote_ident(attname) || ' ' || format_type(atttypid, atttypmod),
		', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'aifleet.$1'::regclass AND attnum > 0 AND NOT attisdropped"
}
copy_args=()
for t in $tables; do
	psql "$server dbname=$base" -c "\\copy (SELECT * FROM aifleet.$t) TO '$work/$t.copy'"
	copy_args+=(-c "\\copy aifleet.$t FROM '$work/$t.copy'")
done
current_rows=$(q $base "SELECT (SELECT count(*) FROM aifleet.instance) + (SELECT count(*) FROM aifleet.service)
	+ (SELECT count(*) FROM aifleet.resource)")
rows_in() { # DB
	q "$1" "SELECT (SELECT count(*) FROM aifleet.instance) + (SELECT count(*) FROM aifleet.service)
		+ (SELECT count(*) FROM aifleet.resource)"
}
plain_db() { # DB TABLE...: a new database whose aifleet.TABLEs have the base's columns, nothing else
	local db=$1 t
	shift
	admin "CREATE DATABASE $db"
	psql "$server dbname=$db" -c "CREATE SCHEMA aifleet"
	for t in "$@"; do
		psql "$server dbname=$db" -c "CREATE TABLE aifleet.$t ($(coldefs "$t"))"
	done
}
raw_s=()
for r in $(seq "$reps"); do
	plain_db "raw_$r" $tables
	checkpoint
	t0=$(now)
	psql "$server dbname=raw_$r" "${copy_args[@]}"
	raw_s+=("$(since "$t0")")
	echo "-- raw \\copy $r/$reps: ${raw_s[-1]} s"
	check "raw copy $r: rows" "$(rows_in "raw_$r")" "$current_rows"
	admin "DROP DATABASE raw_$r"
done

# ---- 2b. the floor of this schema -------------------------------------------
# The rows of the four tables a first load fills, as that load left them,
# into tables of the same columns with no index, then each index those
# tables have in the base database, by its own definition, in one session
# with the loader's maintenance_work_mem (bulk.c). The loader writes the
# same rows and builds the same indexes; it also analyzes the tables, which
# the floor leaves out.
psql "$server dbname=$base" -c "\\copy (SELECT * FROM aifleet.history) TO '$work/history.copy'"
floor_args=("${copy_args[@]}" -c "\\copy aifleet.history FROM '$work/history.copy'")
index_list() { # DB: the four tables' index definitions, a statement a line
	PGOPTIONS="-c search_path=pg_catalog" q "$1" "SELECT string_agg(pg_get_indexdef(indexrelid)
		|| ';', E'\\n' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid IN
		('aifleet.instance'::regclass, 'aifleet.service'::regclass, 'aifleet.resource'::regclass,
		 'aifleet.history'::regclass)"
}
index_list $base >"$work/floor_indexes.sql"  # names qualified: search_path is pg_catalog
floor_indexes=$(wc -l <"$work/floor_indexes.sql")
history_rows=$(q $base "SELECT count(*) FROM aifleet.history")
floor_s=()
for r in $(seq "$reps"); do
	plain_db "floor_$r" $tables history
	checkpoint
	t0=$(now)
	psql "$server dbname=floor_$r" "${floor_args[@]}" -c "SET maintenance_work_mem = '256MB'" \
		-f "$work/floor_indexes.sql"
	floor_s+=("$(since "$t0")")
	echo "-- schema floor $r/$reps: ${floor_s[-1]} s"
	check "schema floor $r: rows" "$(rows_in "floor_$r")/$(q "floor_$r" "SELECT count(*) FROM aifleet.history")" \
		"$current_rows/$history_rows"
	check "schema floor $r: the base's $floor_indexes indexes (md5 of their definitions)" \
		"$(index_list "floor_$r" | md5sum)" "$(md5sum <"$work/floor_indexes.sql")"
	admin "DROP DATABASE floor_$r"
done
rm -f "$work/floor_indexes.sql" "$work/history.copy"

# ---- 3. the peer: CloudQuery's PostgreSQL destination -----------------------
# Why this is a fair model of the peer: CloudQuery's destination keeps only
# the current state (no history), in tables keyed by the resource's natural
# key, and writes every synced row as an upsert -- "INSERT ... ON CONFLICT
# ... DO UPDATE SET col = excluded.col" for every column -- sent in batches
# of batch_size rows (default 10000), each batch one implicit transaction
# (plugins/destination/postgresql/client/insert.go: pgx.Batch of one
# parameterized statement per row). Here each batch is one multi-row
# INSERT of 10000 rows with literals, as a client would send it: the same
# rows, keys and index maintenance, with one parse per 10000 rows instead of
# 10000 executions of a prepared statement -- if anything cheaper than the
# peer, so the 0.7x target is not flattered. The tables have the columns of
# aifleet.<table>, PRIMARY KEY (id) and the natural-key UNIQUE constraint of
# sql/001_schema.sql, nothing else (no history, no scope index, no foreign
# key). The statements are generated before the clock starts; psql -f
# autocommits each.
natural_key() { # TABLE
	case $1 in
	resource) echo "provider, account, product, owner_kind, owner_native_id, kind" ;;
	*) echo "provider, account, product, native_id" ;;
	esac
}
peer_sql=$work/peer.sql
: >"$peer_sql"
for t in $tables; do
	nk=$(natural_key "$t")
	cols=$(q $base "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'aifleet.$t'::regclass AND attnum > 0 AND NOT attisdropped")
	vals=$(q $base "SELECT string_agg('quote_nullable(' || quote_ident(attname) || ')', ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = 'aifleet.$t'::regclass AND attnum > 0 AND NOT attisdropped")
	sets=$(q $base "SELECT string_agg(format('%I = EXCLUDED.%I', attname, attname), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = 'aifleet.$t'::regclass AND attnum > 0 AND NOT attisdropped
		AND attname <> ALL (string_to_array('id, $nk', ', '))")
	q $base "SELECT 'INSERT INTO aifleet.$t ($cols) VALUES '
			|| string_agg('(' || concat_ws(', ', $vals) || ')', ', ' ORDER BY id)
			|| ' ON CONFLICT ($nk) DO UPDATE SET $sets;'
		FROM (SELECT *, (row_number() OVER (ORDER BY id) - 1) / 10000 AS batch FROM aifleet.$t) s
		GROUP BY batch ORDER BY batch" >>"$peer_sql"
done
echo "-- peer statements: $(grep -c '^INSERT' "$peer_sql") INSERTs, $(du -m "$peer_sql" | cut -f1) MB"
peer_s=()
for r in $(seq "$reps"); do
	admin "CREATE DATABASE peer_$r"
	psql "$server dbname=peer_$r" -c "CREATE SCHEMA aifleet"
	for t in $tables; do
		psql "$server dbname=peer_$r" -c "CREATE TABLE aifleet.$t ($(coldefs "$t"),
			PRIMARY KEY (id), UNIQUE ($(natural_key "$t")))"
	done
	checkpoint
	t0=$(now)
	psql "$server dbname=peer_$r" -f "$peer_sql"
	peer_s+=("$(since "$t0")")
	echo "-- peer upserts $r/$reps: ${peer_s[-1]} s"
	check "peer $r: rows" "$(rows_in "peer_$r")" "$current_rows"
	admin "DROP DATABASE peer_$r"
done
rm -f "$peer_sql" "$work"/*.copy

# The state every reload starts from.
psql "$server dbname=$base" -c "VACUUM ANALYZE"

# ---- 4. identical reload ---------------------------------------------------
# Written rows are counted from the tuples themselves, not from statistics:
# every row the reload inserts or updates carries its transaction id as xmin
# (greater than any id handed out before it), and a deleted row changes the
# table's count. That covers every table of schema aifleet except the two a
# run may write (scope_state, its sync_run row). pg_stat_user_tables is
# shown as well, once it has the run: the statistics of a backend reach the
# shared counters asynchronously (PostgreSQL 15 has no
# pg_stat_force_next_flush()), at the latest when it exits; we poll, each
# time in a new session (so no cached snapshot), until sync_run's n_tup_ins
# shows the run's row -- all of a backend's counters are flushed together.
watched=$(q $base "SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables
	WHERE schemaname = 'aifleet' AND tablename NOT IN ('scope_state', 'sync_run')")
table_state() { # DB XID: per watched table "name rows rows_written_since_XID"
	local t
	for t in $watched; do
		echo "$t $(q "$1" "SELECT count(*) || ' ' || count(*) FILTER (WHERE xmin::text::bigint >= $2)
			FROM aifleet.$t")"
	done
}
stat_writes() { # DB: n_tup_ins + n_tup_upd + n_tup_del of the entity tables and history
	q "$1" "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables
		WHERE schemaname = 'aifleet' AND relname IN ('instance', 'service', 'resource', 'history')"
}
runs_inserted() { # DB: sync_run's n_tup_ins, the flush sentinel
	q "$1" "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables
		WHERE schemaname = 'aifleet' AND relname = 'sync_run'"
}
ident_s=()
for r in $(seq "$reps"); do
	db=ident_$r
	clone "$db" $base
	checkpoint
	runs0=$(q "$db" "SELECT count(*) FROM aifleet.sync_run")
	sentinel0=$(runs_inserted "$db")
	stat0=$(stat_writes "$db")
	xid0=$(q "$db" "SELECT pg_current_xact_id()")
	before=$(table_state "$db" "$xid0")
	out=$("$gen" --dsn "$server dbname=$db" --instances "$n")
	echo "-- identical reload $r/$reps"
	indent <<<"$out"
	ident_s+=("$(field seconds "$out")")
	after=$(table_state "$db" "$xid0")
	written=$(join <(sort <<<"$before") <(sort <<<"$after") |
		awk '{ d = $4 - $2; if (d < 0) d = -d; w += d + $5 } END { print w + 0 }')
	check "identical reload $r: rows written outside scope_state/sync_run ($watched)" "$written" 0
	check "identical reload $r: history rows" \
		"$(join <(sort <<<"$before") <(sort <<<"$after") | awk '$1 == "history" { print $4 - $2 }')" 0
	check "identical reload $r: sync_run rows added / written" \
		"$(($(q "$db" "SELECT count(*) FROM aifleet.sync_run") - runs0))/$(q "$db" "SELECT count(*)
			FROM aifleet.sync_run WHERE xmin::text::bigint >= $xid0")" 1/1
	check "identical reload $r: loader's updated+created+deleted" \
		$(($(field got_updated "$out") + $(field got_created "$out") + $(field got_deleted "$out"))) 0
	stat=n/a
	for _ in $(seq 50); do
		if [ "$(runs_inserted "$db")" -gt "$sentinel0" ]; then
			stat=$(($(stat_writes "$db") - stat0))
			break
		fi
		sleep 0.2
	done
	if [ $stat = n/a ]; then
		echo "    pg_stat_user_tables did not show the run within 10 s: not compared" >&2
	else
		check "identical reload $r: pg_stat n_tup_ins+upd+del (instance, service, resource, history)" "$stat" 0
	fi
	admin "DROP DATABASE $db"
done

# ---- 5. churn over every scope, and inside K scopes ---------------------------
churn() { # LABEL PREFIX FLEETGEN-ARGS...: fills churn_s
	local label=$1 prefix=$2 r db h0 out
	shift 2
	churn_s=()
	for r in $(seq "$reps"); do
		db=${prefix}_$r
		clone "$db" $base
		checkpoint
		h0=$(q "$db" "SELECT count(*) FROM aifleet.history")
		out=$("$gen" --dsn "$server dbname=$db" --instances "$n" "$@")
		echo "-- $label $r/$reps"
		indent <<<"$out"
		churn_s+=("$(field seconds "$out")")
		check_run "$label $r" "$db" "$out" "$h0"
		admin "DROP DATABASE $db"
	done
	churn_desc=$(field mutable_instances "$out")
}
churn "churn 1/1/1 all scopes" churn --change 1 --delete 1 --new 1
churn_all_s=("${churn_s[@]}")
churn "churn 1/1/1 in $kscopes scope(s)" churnk --change 1 --delete 1 --new 1 --scopes "$kscopes"
churn_k_s=("${churn_s[@]}")
churn_k_inst=$churn_desc

psql "$server dbname=postgres" -c "DROP DATABASE $base"

# ---- 6. reads ---------------------------------------------------------------
reads=$work/reads.txt
: >"$reads"
if [ "${SKIP_READS:-0}" != 1 ]; then
	echo "-- read benchmark: $read_n instances, $read_runs runs"
	if ! BENCH_DSN=$server FLEETGEN=$gen READ_BENCH_RESULTS=$reads REPS=$reps \
		"$root/tests/bench/read-bench.sh" "$read_n" "$read_runs" 2>&1 | indent; then
		check "read benchmark: counts" FAIL ok
	fi
fi

# ---- the table -------------------------------------------------------------
ratio() { echo "scale=4; $1 / $2" | bc -l | sed 's/^\./0./'; }
verdict() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b ? "ok" : "MISSED") }'; }
load=$(median "${load_s[@]}")
raw=$(median "${raw_s[@]}")
peer=$(median "${peer_s[@]}")
row() { # MEASURE VALUE RATIO TARGET TARGET_NUMBER RUNS: judges the ratio, else the value
	local v=-
	if [ -n "$5" ]; then
		v=$(verdict "${3:-$2}" "$5")
	fi
	printf "%-50s %10s %9s %12s %7s   %s\n" "$1" "$2" "$3" "$4" "$v" "$6"
}
echo
echo "================ loader benchmark: $n instances ($((13 * n)) entity rows, 12 scopes), medians of $reps ================"
printf "%-50s %10s %9s %12s %7s   %s\n" "measure" "median" "ratio" "target" "verdict" "runs"
row "raw \\copy of the $current_rows current rows (s)" "$raw" "" "" "" "${raw_s[*]}"
row "peer: upserts of 10k rows per statement (s)" "$peer" "" "" "" "${peer_s[*]}"
row "initial load (s)" "$load" "" "" "" "${load_s[*]}"
m=$(median "${merge_s[@]}")
row "  through the merge (s); first-load path / merge" "$m" "$(ratio "$load" "$m")" "" "" "${merge_s[*]}"
row "generator alone (s), in every load below" "$(median "${gen_s[@]}")" "" "" "" "${gen_s[*]}"
row "  initial load / raw \\copy" "" "$(ratio "$load" "$raw")" "<= 2.0x" 2.0 ""
floor=$(median "${floor_s[@]}")
row "schema floor: + $history_rows history rows, $floor_indexes indexes (s)" "$floor" "" "" "" "${floor_s[*]}"
row "  schema floor / raw \\copy" "" "$(ratio "$floor" "$raw")" "(2.0x)" "" ""
row "  initial load / schema floor" "" "$(ratio "$load" "$floor")" "" "" ""
row "  initial load / peer" "" "$(ratio "$load" "$peer")" "<= 0.7x" 0.7 ""
m=$(median "${ident_s[@]}")
row "identical reload (s) / initial load" "$m" "$(ratio "$m" "$load")" "<= 0.01x" 0.01 "${ident_s[*]}"
hfloor=$(median "${hash_s[@]}")
row "reload floor: check and hash every record (s)" "$hfloor" "$(ratio "$hfloor" "$load")" "(0.01x)" "" "${hash_s[*]}"
m=$(median "${churn_all_s[@]}")
row "churn 1%/1%/1%, all 12 scopes (s) / initial" "$m" "$(ratio "$m" "$load")" "<= 0.20x" 0.20 "${churn_all_s[*]}"
m=$(median "${churn_k_s[@]}")
row "churn 1%/1%/1%, $kscopes of 12 scopes (s) / initial" "$m" "$(ratio "$m" "$load")" "<= 0.05x" 0.05 "${churn_k_s[*]}"
while IFS='|' read -r name med target all server; do
	row "read: $name (ms)" "$med" "" "${target:+<= $target ms}" "$target" "$all (server $server)"
done <"$reads"
echo "(churn in $kscopes scope(s): the mutation restricted to the $churn_k_inst instances of the first $kscopes of the 12 scopes = $(ratio "$((100 * kscopes))" 12)% of the fleet, 1% of them renamed, 1% deleted, 1% new; peak RSS of the initial load $rss KiB; reads: $read_n instances, $read_runs runs x 1% renamed, client = psql timing, server = EXPLAIN ANALYZE)"
echo
nok=0
for c in "${checks[@]}"; do
	IFS='|' read -r what got want v <<<"$c"
	if [ "$v" = ok ]; then
		nok=$((nok + 1))
	else
		printf "FAIL  %s: got %s, expected %s\n" "$what" "$got" "$want"
	fi
done
echo "correctness: $nok of ${#checks[@]} checks ok; wall time $(($(date +%s) - t_start)) s"
if [ $fail = 1 ]; then
	echo "loader-bench: counts differ from the expectation" >&2
	exit 1
fi
