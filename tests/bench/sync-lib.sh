# What the two whole-sync benchmarks (sync-bench.sh, scopes-bench.sh) share,
# sourced after they set `root` (the source tree):
#
#   sync_world_up NAME
#       a work directory /tmp/aifleet-NAME.XXXXXX, the dependencies
#       (scripts/install-deps.sh), aifleet and aifleet-sim built in
#       $BUILD_DIR (default $root/build-bench), and a throwaway PostgreSQL;
#       sets build, work and dsn (its conninfo, dbname=postgres). An EXIT
#       trap stops the simulator (sim-lib.sh) and the server and removes the
#       directory.
#   sync_once LABEL
#       one `aifleet sync --config $work/aifleet.ini`: its output in
#       $work/out.LABEL, "wall-s peak-rss-KiB user-s sys-s" in
#       $work/time.LABEL. A failed sync prints its stderr and exits 1.
#   summary LABEL REGEX
#       the first capture of REGEX in that sync's output.

. "$root/scripts/sim-lib.sh"

sync_world_down() {
	sim_stop
	"$root/scripts/pg.sh" stop "$work/pg" || true
	rm -rf "$work"
}

sync_world_up() {
	build=${BUILD_DIR:-$root/build-bench}
	work=$(mktemp -d "/tmp/aifleet-$1.XXXXXX")
	chmod 755 "$work"
	trap sync_world_down EXIT
	"$root/scripts/install-deps.sh"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DAIFLEET_TESTS=ON >/dev/null
	cmake --build "$build" -j "$(nproc)" --target aifleet aifleet-sim >/dev/null
	dsn=$("$root/scripts/pg.sh" start "$work/pg")
}

sync_once() {
	/usr/bin/time -f '%e %M %U %S' -o "$work/time.$1" \
		"$build/src/cli/aifleet" --config "$work/aifleet.ini" --log-level warn \
		--no-progress sync >"$work/out.$1" 2>"$work/err.$1" || {
		cat "$work/err.$1" >&2
		exit 1
	}
}

summary() {
	sed -nE "s/.*$2.*/\\1/p" "$work/out.$1" | head -1
}
