# Starting and stopping the cloud simulator (aifleet-sim) from a script:
# scripts/demo.sh, scripts/container-test.sh and the sync benchmarks in
# tests/bench/ (through sync-lib.sh) source this file. Sourced, not run: the simulator must be the
# calling script's own child, so that its cleanup can wait for it.
#
#   sim_start BIN DIR [ARG...]
#       runs BIN --listen 127.0.0.1:0 --port-file DIR/sim.port ARG... in the
#       background, its output in DIR/sim.log, and waits (20 s at most) for
#       the port it chose: then sets sim_pid and sim_port. If it exits or
#       writes no port in time, prints its log, stops it and returns 1.
#   sim_stop
#       stops it, if one runs, and waits for it; always returns 0, so an
#       EXIT trap under set -e can call it.

sim_pid=
sim_port=

sim_start() {
	local bin=$1 dir=$2 _
	shift 2
	rm -f "$dir/sim.port"
	"$bin" --listen 127.0.0.1:0 --port-file "$dir/sim.port" "$@" >"$dir/sim.log" 2>&1 &
	sim_pid=$!
	for _ in $(seq 400); do
		[ -s "$dir/sim.port" ] && break
		kill -0 "$sim_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$dir/sim.port" ]; then
		echo "aifleet-sim did not start; its log ($dir/sim.log):" >&2
		cat "$dir/sim.log" >&2
		sim_stop
		return 1
	fi
	sim_port=$(cat "$dir/sim.port")
}

sim_stop() {
	if [ -n "$sim_pid" ]; then
		kill "$sim_pid" 2>/dev/null || true
		wait "$sim_pid" 2>/dev/null || true
		sim_pid=
	fi
	return 0
}
