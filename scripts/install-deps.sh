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
)

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
