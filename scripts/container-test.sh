#!/usr/bin/env bash
# Build the container image (Containerfile) without registry access and test
# it: no docker.io, no quay.io, only the Debian mirror.
#
#   1. install podman, runc and debootstrap with apt-get if missing,
#   2. make a bookworm base with debootstrap (minbase, slimmed like Debian's
#      -slim images; cached), import it, and find what podman needs here to
#      run a container (a containers.conf with runtime = "runc",
#      default_ulimits = [], ...: printed),
#   3. podman build the Containerfile with that base as BUILD_BASE and RUN_BASE,
#   4. in the image: aifleet --version, the user (uid 10001), CA certificates,
#      a read-only root,
#   5. one aifleet sync from inside the container (--read-only --tmpfs /tmp,
#      --network host) against aifleet-sim and a throwaway PostgreSQL on the
#      host, then checks that aifleet.instance has rows.
#
# Everything is removed at the end: containers, images and podman's storage
# (a private one, under the work directory), the database, the simulator.
# (podman still records blob digests in its system-wide blob-info cache,
# /var/lib/containers/cache as root; the containers use --network host or
# none, so no CNI bridge is set up.)
# Kept: the base tarball in the cache directory ($AIFLEET_CONTAINER_CACHE,
# default ${XDG_CACHE_HOME:-~/.cache}/aifleet-container; rebuilt when older
# than 7 days) and the simulator's build directory (build-container/).
#
#   scripts/container-test.sh [--keep-image] [--rebuild-base]
#
#   --keep-image    copy the tested image into podman's default storage as
#                   localhost/aifleet:VERSION (and :latest)
#   --rebuild-base  debootstrap the base again even if a cached one is fresh
#
# Runs as root (debootstrap, rootful podman). Not part of the ctest suite.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-container}
cache=${AIFLEET_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aifleet-container}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
jobs=${JOBS:-$(nproc)}
suite=bookworm
keep_image=false
rebuild_base=false

while [ $# -gt 0 ]; do
	case "$1" in
	--keep-image) keep_image=true ;;
	--rebuild-base) rebuild_base=true ;;
	-h | --help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "container-test.sh: unknown option $1" >&2; exit 64 ;;
	esac
	shift
done

if [ "$(id -u)" -ne 0 ]; then
	echo "container-test.sh: run as root (debootstrap and rootful podman): sudo $0" >&2
	exit 1
fi

version=$(sed -n 's/^project(aifleet VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
arch=$(dpkg --print-architecture)
base_tar=$cache/debian-$suite-minbase-slim-$arch.tar.gz
base_image=localhost/aifleet-base:$suite
image=localhost/aifleet:$version
started=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/aifleet-container.XXXXXX")
chmod 755 "$work"
. "$root/scripts/sim-lib.sh"
pg_started=false
podman_ok=false

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
took() { echo "(${1}: $((SECONDS - $2)) s)"; }
die() { echo "container-test.sh: $*" >&2; exit 1; }

# podman on a private storage, run and tmp directory under $work: nothing of
# the machine's own podman storage is read or changed, and removing $work
# removes every image and layer this script made.
pm() {
	TMPDIR=$work/tmp podman --root "$work/storage" --runroot "$work/run" \
		--tmpdir "$work/libpod" ${storage_driver:+--storage-driver "$storage_driver"} "$@"
}
storage_driver=

# Run a noisy command with its output in a log; show the end of the log if
# it fails.
logged() {
	local log=$work/$1.log
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "container-test.sh: failed: $*" >&2
		tail -n 40 "$log" >&2
		return 1
	fi
}

cleanup() {
	local rc=$?
	set +e
	sim_stop
	$pg_started && "$root/scripts/pg.sh" stop "$work/pg"
	if $podman_ok; then
		pm rm --all --force --time 0 >/dev/null 2>&1
		pm rmi --all --force >/dev/null 2>&1
	fi
	# Whatever podman left mounted under $work (overlay layers, shm).
	findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do
		umount -l "$m"
	done
	rm -rf "$work"
	echo
	echo "container-test.sh: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - started)) s"
	exit "$rc"
}
trap cleanup EXIT

say "Packages: podman, runc, debootstrap (apt-get, from the Debian mirror, if missing)"
t=$SECONDS
missing=()
command -v podman >/dev/null || missing+=(podman)
for p in runc debootstrap; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	logged apt-update apt-get update -qq
	logged apt-install apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# As root, podman needs neither uidmap, slirp4netns nor fuse-overlayfs here:
# no user namespace, --network host, the kernel's overlayfs.
echo "$(podman --version), $(runc --version | head -n 1), debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
took packages "$t"

say "podman: storage"
mkdir -p "$work/tmp"
storage_driver=overlay
if pm info >"$work/info.log" 2>&1; then
	echo "storage driver overlay works (a private storage in $work/storage)"
else
	echo "podman info failed with the overlay storage driver:"
	sed 's/^/  /' "$work/info.log" | tail -n 5
	rm -rf "$work/storage" "$work/run"
	storage_driver=vfs
	pm info >"$work/info.log" 2>&1 ||
		{ sed 's/^/  /' "$work/info.log"; die "podman info fails with the vfs driver too"; }
	echo "needed: storage driver vfs (overlay does not work here)"
fi
podman_ok=true
echo "cgroups $(pm info --format '{{.Host.CgroupsVersion}}'), cgroup manager $(pm info --format '{{.Host.CgroupManager}}'), events $(pm info --format '{{.Host.EventLogger}}'), runtime $(pm info --format '{{.Host.OCIRuntime.Name}}')"

say "Base image: Debian $suite minbase from $mirror"
t=$SECONDS
if ! $rebuild_base && [ -s "$base_tar" ] && [ -z "$(find "$base_tar" -mtime +7)" ]; then
	echo "cached: $base_tar ($(du -h "$base_tar" | cut -f1), $(date -r "$base_tar" '+%Y-%m-%d %H:%M'))"
else
	echo "debootstrap --variant=minbase $suite (a minute or so)"
	rootfs=$work/rootfs
	logged debootstrap debootstrap --variant=minbase "$suite" "$rootfs" "$mirror"
	# Like Debian's official images (debuerreotype): the suite, its updates
	# and security; no host name or resolver of this machine; and, like
	# -slim, no documentation, manual pages or translations, now or later.
	rm -f "$rootfs/etc/apt/sources.list"
	cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
// As in Debian's official images: no downloaded packages or caches left in a layer.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# As in Debian's official -slim images.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
	find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
	find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
	rm -rf "$rootfs"/usr/share/{man,info,lintian,linda}/*
	find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/dpkg/*-old \
		"$rootfs"/var/cache/debconf/*-old
	find "$rootfs/var/log" -type f -delete
	for f in etc/hostname etc/resolv.conf; do
		: >"$rootfs/$f"
		chmod 644 "$rootfs/$f"
	done
	mkdir -p "$cache"
	tar -C "$rootfs" --numeric-owner -cf - . | gzip -1 >"$base_tar.tmp"
	mv "$base_tar.tmp" "$base_tar"
	rm -rf "$rootfs"
	echo "made $base_tar ($(du -h "$base_tar" | cut -f1))"
fi
logged import pm import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--change 'CMD ["bash"]' "$base_tar" "$base_image"
echo "imported as $base_image"
took base "$t"

say "podman: what it takes to run a container here"
# Each setting a containers.conf (CONTAINERS_CONF) may need on a machine
# like this one, in the order tried when the error names none of them.
declare -A setting=(
	[ulimits]='[containers]|default_ulimits = []'
	[runtime]='[engine]|runtime = "runc"'
	[cgroups]='[engine]|cgroup_manager = "cgroupfs"'
	[events]='[engine]|events_logger = "file"'
)
order=(ulimits runtime cgroups events)
needed=()
declare -A because=()
write_conf() {
	local section k
	: >"$work/containers.conf"
	for section in '[containers]' '[engine]'; do
		echo "$section" >>"$work/containers.conf"
		for k in "${needed[@]}"; do
			[ "${setting[$k]%%|*}" = "$section" ] && echo "${setting[$k]#*|}" >>"$work/containers.conf"
		done
	done
	export CONTAINERS_CONF=$work/containers.conf
}
has() { local k; for k in "${needed[@]}"; do [ "$k" = "$1" ] && return 0; done; return 1; }
can_run=false
for _ in 1 2 3 4 5; do
	if pm run --rm --network host "$base_image" true 2>"$work/probe.err"; then
		can_run=true
		break
	fi
	err=$(tail -n 3 "$work/probe.err")
	next=
	if grep -qiE 'rlimit|ulimit' <<<"$err" && ! has ulimits; then next=ulimits
	elif grep -qi 'crun' <<<"$err" && ! has runtime; then next=runtime
	elif grep -qiE 'cgroup|systemd|dbus' <<<"$err" && ! has cgroups; then next=cgroups
	elif grep -qiE 'journal' <<<"$err" && ! has events; then next=events
	else
		for k in "${order[@]}"; do has "$k" || { next=$k; break; }; done
	fi
	[ -n "$next" ] || break
	needed+=("$next")
	because[$next]=$err
	write_conf
done
if $can_run; then
	if [ ${#needed[@]} -eq 0 ]; then
		echo "podman runs containers here with its defaults"
	else
		echo "podman runs containers here with CONTAINERS_CONF=<file> containing:"
		for k in "${needed[@]}"; do
			echo "  ${setting[$k]#*|}"
			echo "      without it: $(tail -n 1 <<<"${because[$k]}" | sed 's/^Error: //')"
		done
	fi
	if has ulimits; then
		caps=$(awk '/^CapEff/ {print $2}' /proc/self/status)
		echo "  (unless containers.conf sets ulimits, podman as root gives a container an open-files" \
			"limit, RLIMIT_NOFILE, of 1048576: above this machine's hard limit, $(ulimit -Hn), and root" \
			"here $( (((0x$caps >> 24) & 1)) && echo has || echo lacks) CAP_SYS_RESOURCE, which raising it takes)"
	fi
	echo "no network setup needed: the build and the containers use --network host"
else
	echo "podman cannot run a container here, with its defaults nor with a containers.conf of:"
	for k in "${needed[@]}"; do echo "  ${setting[$k]#*|}"; done
	echo "the last error:"
	sed 's/^/  /' "$work/probe.err"
	echo "user namespaces: max $(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo '?');" \
		"cgroup file system: $(stat -fc %T /sys/fs/cgroup 2>/dev/null) (cgroup2fs: v2; tmpfs: v1);" \
		"open files hard limit: $(ulimit -Hn)"
	echo "building the image all the same; the tests that run it are skipped"
fi

say "Building the image ($image) from $root/Containerfile"
t=$SECONDS
logged build pm build --pull=never --network host \
	--build-arg BUILD_BASE="$base_image" --build-arg RUN_BASE="$base_image" --build-arg JOBS="$jobs" \
	-f "$root/Containerfile" -t "$image" "$root"
grep -E '^(\[[0-9]+/[0-9]+\] )?(STEP|COMMIT|Successfully)' "$work/build.log"
pm images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -F "$image"
pm image inspect --format 'User={{.Config.User}} WorkingDir={{.Config.WorkingDir}} Entrypoint={{.Config.Entrypoint}} Cmd={{.Config.Cmd}} Env={{.Config.Env}}' "$image"
took build "$t"

$can_run || die "the image is built, but podman cannot run containers here (see above)"

say "In the image: version, user, CA certificates, read-only root"
out=$(pm run --rm --network none "$image" --version)
echo "\$ aifleet --version"
echo "$out"
grep -qE "^aifleet $version " <<<"$out" || die "expected 'aifleet $version ...'"
out=$(pm run --rm --network none --entrypoint id "$image")
echo "\$ id"
echo "$out"
grep -q '^uid=10001(aifleet) gid=10001(aifleet)' <<<"$out" || die "expected uid=10001(aifleet)"
pm run --rm --network none --entrypoint test "$image" -s /etc/ssl/certs/ca-certificates.crt ||
	die "no /etc/ssl/certs/ca-certificates.crt in the image"
echo "CA bundle: /etc/ssl/certs/ca-certificates.crt"
if pm run --rm --network none --read-only --tmpfs /tmp --entrypoint sh "$image" -c 'touch /usr/local/bin/x' 2>/dev/null; then
	die "--read-only: the root file system is writable"
fi
echo "--read-only: the root file system refuses writes"

say "Host: throwaway PostgreSQL and aifleet-sim (built in $build)"
t=$SECONDS
logged install-deps "$root/scripts/install-deps.sh"
logged cmake cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIFLEET_TESTS=OFF
logged make cmake --build "$build" -j "$jobs" --target aifleet-sim
pg_started=true
dsn=$("$root/scripts/pg.sh" start "$work/pg")
sim_start "$build/src/sim/aifleet-sim" "$work" --items 50 || die "aifleet-sim did not start"
port=$sim_port
echo "PostgreSQL: $dsn"
echo "simulator:  http://127.0.0.1:$port"
# The configuration as it would be deployed: owned by the container's user,
# readable by it alone, mounted read-only.
mkdir -m 755 "$work/etc"
sed -e "s|@PORT@|$port|g" -e "s|@CONNINFO@|$dsn|g" "$root/deploy/demo.ini.in" >"$work/etc/aifleet.ini"
chown 10001:10001 "$work/etc/aifleet.ini"
chmod 400 "$work/etc/aifleet.ini"
took host "$t"

say "aifleet sync inside the container (--read-only --tmpfs /tmp --network host)"
# The simulator's fake demo keys, passed by name so that their values are
# on no command line.
. "$root/scripts/demo-keys.sh"
env_args=()
for v in "${demo_key_names[@]}"; do
	env_args+=(-e "$v")
done
echo "\$ podman run --rm --read-only --tmpfs /tmp --network host -v .../aifleet.ini:/etc/aifleet/aifleet.ini:ro -e DEMO_... $image --config /etc/aifleet/aifleet.ini sync"
rc=0
pm run --rm --name "aifleet-test-sync-$$" --read-only --tmpfs /tmp --network host \
	-v "$work/etc/aifleet.ini:/etc/aifleet/aifleet.ini:ro" "${env_args[@]}" \
	"$image" --config /etc/aifleet/aifleet.ini sync || rc=$?
[ "$rc" -eq 0 ] || die "aifleet sync in the container exited $rc, expected 0"
rows=$(psql "$dsn" -X -At -c 'SELECT count(*) FROM aifleet.instance')
echo "aifleet.instance: $rows rows"
psql "$dsn" -X -q -P pager=off -c \
	"SELECT provider, product, count(*) AS instances FROM aifleet.instance GROUP BY 1, 2 ORDER BY 1, 2"
[ "$rows" -gt 0 ] || die "aifleet.instance is empty after the sync"

if $keep_image; then
	say "Keeping the image"
	logged save pm save --format oci-archive -o "$work/image.tar" "$image"
	logged load podman load -i "$work/image.tar"
	podman tag "$image" localhost/aifleet:latest
	echo "$image and localhost/aifleet:latest are in podman's default storage" \
		"(remove: podman rmi $image localhost/aifleet:latest)"
	if [ ${#needed[@]} -gt 0 ]; then
		echo "to run it on this machine, point CONTAINERS_CONF at a file with:"
		cat "$work/containers.conf"
	fi
fi
