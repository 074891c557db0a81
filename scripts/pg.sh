#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, benchmarks and the quick start.
#
#   scripts/pg.sh start DIR   initdb into DIR, start on a free port, print the
#                             conninfo and write it to DIR/dsn
#   scripts/pg.sh stop DIR    stop the server and remove DIR
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# unprivileged 'postgres' user (created by Debian's server package).
# The server listens on 127.0.0.1 and a socket inside DIR; auth is 'trust'
# because nothing but this machine's tests can reach it.
set -euo pipefail

pg_bindir() {
	local d
	for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
		if [ -n "$d" ] && [ -x "$d/initdb" ]; then
			echo "$d"
			return
		fi
	done
	echo "pg.sh: initdb not found; run scripts/install-deps.sh" >&2
	exit 1
}

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A port nothing listens on, below the kernel's range of ephemeral ports:
# a port in that range can be taken by any outgoing connection (the tests
# make many) between this check and the server's bind.
free_port() {
	local port low=32768
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
		read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	fi
	[ "$low" -gt 20100 ] || low=32768
	for port in $(seq 20000 $((low - 1)) | shuf -n 200); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	echo "pg.sh: no free port" >&2
	exit 1
}

start() {
	local dir=$1 bin port
	bin=$(pg_bindir)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dir"
		chmod 755 "$dir"
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U aifleet -A trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	# Settings for a throwaway server: no durability, modest memory.
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_wal_size = 4GB
max_connections = 100
CONF
	# The port is given at start, so that a port taken between the check
	# and the bind costs one more try, not the run.
	for attempt in 1 2 3; do
		port=$(free_port)
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port" -w -t 60 \
			start >/dev/null; then
			break
		fi
		if [ "$attempt" -eq 3 ] || ! grep -q 'Address already in use' "$dir/server.log"; then
			cat "$dir/server.log" >&2
			exit 1
		fi
	done
	echo "host=127.0.0.1 port=$port user=aifleet dbname=postgres" | as_owner tee "$dir/dsn" >/dev/null
	cat "$dir/dsn"
}

stop() {
	local dir=$1 bin
	[ -d "$dir" ] || return 0
	# Only ever remove a directory that `pg.sh start` made.
	if [ ! -f "$dir/dsn" ] && [ ! -f "$dir/data/PG_VERSION" ] && [ ! -f "$dir/initdb.log" ]; then
		echo "pg.sh: $dir was not made by 'pg.sh start'; not touching it" >&2
		return 1
	fi
	bin=$(pg_bindir)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

case "${1:-}" in
start) start "${2:?usage: pg.sh start DIR}" ;;
stop) stop "${2:?usage: pg.sh stop DIR}" ;;
*) echo "usage: pg.sh start|stop DIR" >&2; exit 2 ;;
esac
