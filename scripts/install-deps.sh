#!/usr/bin/env bash
# Install every Debian package aifleet needs to build, test and run its
# quick start. Idempotent: packages already present are skipped, and
# apt-get is not touched at all when nothing is missing.
set -euo pipefail

packages=(
	build-essential cmake pkg-config git
	libcurl4-openssl-dev libjson-c-dev libpq-dev libssl-dev
	libinih-dev libcmocka-dev libmicrohttpd-dev zlib1g-dev
	postgresql postgresql-contrib postgresql-client
	time bc
	prometheus              # promtool: the metrics file and alert rules (tests)
	# The Debian package (cpack -G DEB) and its test (tests/package):
	dpkg-dev                # dpkg-shlibdeps: the package's Depends
	man-db groff-base       # man, groff: the man page found and checked
	binutils                # readelf: the binaries' NEEDED libraries
	fakeroot                # dpkg into a private root when not run as root
)

# Node.js and npm: tests/kubernetes (npm ci of pinned packages, then node).
# Only when the commands are missing: a machine's own Node.js (NodeSource's
# nodejs provides npm and conflicts with Debian's npm package) is kept.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
