#!/usr/bin/env bash
# test_package.sh BUILD_DIR VERSION
#
# The Debian package, end to end: `cpack -G DEB` for BUILD_DIR into a
# temporary directory, then the package's name, control fields (Depends from
# dpkg-shlibdeps) and contents; then `dpkg -i` into a private root (its own
# empty dpkg database: the machine's is never touched, and no root is
# needed), the installed aifleet, man page and units; then `dpkg --purge`,
# which must leave no file of the package behind. Everything lives in one
# temporary directory, removed however the test ends.
#
# Needs cpack (cmake), dpkg-deb and dpkg, dpkg-shlibdeps (dpkg-dev), man
# (man-db), groff (groff-base), readelf (binutils), and fakeroot when not
# run as root: scripts/install-deps.sh installs them.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR VERSION" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
version=$2
cpack=${CPACK:-cpack}

fail() {
	echo "test_package: FAIL: $*" >&2
	exit 1
}
note() { echo "test_package: $*"; }

for tool in "$cpack" dpkg dpkg-deb dpkg-shlibdeps man groff readelf ldd gzip; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "'$tool' is not installed (run scripts/install-deps.sh)"
done
[ -f "$build/CPackConfig.cmake" ] || fail "$build/CPackConfig.cmake is missing: configure the build first"

# dpkg as root, or under fakeroot (files then belong to the caller).
# ldconfig and start-stop-daemon, which dpkg looks for, are in /sbin.
export PATH="$PATH:/usr/sbin:/sbin"
dpkg_run=(dpkg)
if [ "$(id -u)" -ne 0 ]; then
	command -v fakeroot >/dev/null 2>&1 ||
		fail "not root and 'fakeroot' is not installed (run scripts/install-deps.sh)"
	dpkg_run=(fakeroot dpkg --force-not-root)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aifleet-package.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

# --- build the package ----------------------------------------------------
note "cpack -G DEB for $build"
if ! "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1; then
	cat "$tmp/cpack.log" >&2
	fail "cpack -G DEB failed"
fi
arch=$(dpkg --print-architecture)
deb="$tmp/out/aifleet_${version}_${arch}.deb"
debs=$(cd "$tmp/out" && ls -- *.deb 2>/dev/null || true)
[ "$debs" = "aifleet_${version}_${arch}.deb" ] ||
	fail "expected exactly aifleet_${version}_${arch}.deb, cpack wrote: ${debs:-nothing}"
note "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# --- control fields -------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = aifleet ] || fail "Package is '$(field Package)', not aifleet"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', not $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture is '$(field Architecture)', not $arch"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
depends=$(field Depends)
note "Depends: $depends"
case ",$depends" in
*[,\ ]libasan*) note "a sanitizer build: Depends has its runtime (libasan, libubsan); not a package to ship" ;;
esac
[ -n "$depends" ] || fail "Depends is empty: dpkg-shlibdeps did not run (CPACK_DEBIAN_PACKAGE_SHLIBDEPS)"
# The package names in Depends, one a line.
dep_names=$(printf '%s\n' "$depends" | tr ',|' '\n\n' | sed -e 's/(.*)//' -e 's/:.*//' -e 's/[[:space:]]//g' | grep . | sort -u)

# --- contents -------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/contents"
if grep -q '^/usr/local' "$tmp/contents"; then
	grep '^/usr/local' "$tmp/contents" >&2
	fail "the package has files under /usr/local"
fi
if grep -qF "$build" "$tmp/contents"; then
	fail "the package has paths of the build directory"
fi
for f in /usr/bin/aifleet /usr/bin/aifleet-sim /usr/share/man/man1/aifleet.1.gz \
	/lib/systemd/system/aifleet-sync.service /lib/systemd/system/aifleet-sync.timer \
	/usr/share/doc/aifleet/README.md /usr/share/doc/aifleet/examples/aifleet.example.ini; do
	grep -qx -- "$f" "$tmp/contents" || fail "the package lacks $f"
done

# --- install into a private root ------------------------------------------
# dpkg --root=DIR uses DIR/var/lib/dpkg as its database: an empty one knows
# no libraries, hence --force-depends. --path-include='*' undoes any
# path-exclude of the machine's dpkg.cfg.d (container images drop man pages).
root="$tmp/root"
admin="$root/var/lib/dpkg"
mkdir -p "$admin/updates" "$admin/info"
: >"$admin/status"
: >"$admin/available"
dpkg_root() {
	"${dpkg_run[@]}" --root="$root" --log="$tmp/dpkg.log" "$@"
}
note "dpkg -i into $root"
if ! dpkg_root --force-depends --path-include='*' -i "$deb" >"$tmp/dpkg-i.log" 2>&1; then
	cat "$tmp/dpkg-i.log" >&2
	fail "dpkg -i failed"
fi
status=$(dpkg_root -s aifleet 2>/dev/null | sed -n 's/^Status: //p')
[ "$status" = "install ok installed" ] || fail "after dpkg -i, aifleet's status is '$status'"

aifleet="$root/usr/bin/aifleet"
sim="$root/usr/bin/aifleet-sim"
[ -x "$aifleet" ] && [ -x "$sim" ] || fail "aifleet or aifleet-sim is not installed in $root/usr/bin"

# Depends has the package of every shared library the binaries need.
for bin in "$aifleet" "$sim"; do
	if readelf -d "$bin" | grep -qE '\((RPATH|RUNPATH)\)'; then
		fail "$bin has an RPATH: $(readelf -d "$bin" | grep -E '\((RPATH|RUNPATH)\)')"
	fi
	ldd "$bin" >"$tmp/ldd" || fail "ldd $bin failed"
	for soname in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path=$(awk -v s="$soname" '$1 == s && $2 == "=>" { print $3 }' "$tmp/ldd")
		[ -n "$path" ] && [ "$path" != "not" ] || fail "$bin needs $soname, which is not found"
		pkg=""
		for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
			pkg=$(dpkg -S "$p" 2>/dev/null | head -1 | sed 's/[:,].*//') && [ -n "$pkg" ] && break
		done
		[ -n "$pkg" ] || fail "$soname ($path) is in no Debian package, so no shlibs name it"
		printf '%s\n' "$dep_names" | grep -qx -- "$pkg" ||
			fail "$(basename "$bin") needs $soname of $pkg, but Depends lacks $pkg: $depends"
	done
done
note "Depends names the package of every NEEDED library of aifleet and aifleet-sim"

# The installed binary.
out=$("$aifleet" --version) || fail "aifleet --version exited $?"
printf '%s\n' "$out" | head -1 | grep -qE "^aifleet ${version//./\\.}( |\$)" ||
	fail "aifleet --version printed '$out', not 'aifleet $version ...'"
note "installed: $(printf '%s\n' "$out" | head -1 | cut -c1-60)"
"$aifleet" help >"$tmp/help" || fail "aifleet help exited $?"
grep -q '^Usage: aifleet' "$tmp/help" || fail "aifleet help printed no usage"
"$sim" --help >/dev/null || fail "aifleet-sim --help exited $?"

# The example configuration parses with the installed binary (the example
# accounts' keys are not in this clean environment: exit 78, or 0).
example="$root/usr/share/doc/aifleet/examples/aifleet.example.ini"
rc=0
env -i PATH=/usr/bin:/bin HOME="$tmp" "$aifleet" --config "$example" check-config \
	>"$tmp/check.out" 2>"$tmp/check.err" || rc=$?
if { [ $rc -ne 0 ] && [ $rc -ne 78 ]; } || ! grep -q 'prod-alibaba' "$tmp/check.out"; then
	cat "$tmp/check.out" "$tmp/check.err" >&2
	fail "aifleet check-config on the installed example configuration exited $rc"
fi

# The man page: found by man, renders without a groff warning, and has
# every command and option of --help.
manpage=$(env -u MANPATH -u MANOPT man -M "$root/usr/share/man" -w aifleet 2>&1) ||
	fail "man -w aifleet: $manpage"
[ "$manpage" = "$root/usr/share/man/man1/aifleet.1.gz" ] ||
	fail "man -w aifleet found '$manpage', not $root/usr/share/man/man1/aifleet.1.gz"
gzip -t "$manpage" || fail "$manpage is not gzip"
gzip -dc "$manpage" >"$tmp/aifleet.1"
warnings=$(groff -man -Tutf8 -ww -z "$tmp/aifleet.1" 2>&1) || fail "groff failed: $warnings"
[ -z "$warnings" ] || fail "groff warns about the man page: $warnings"
MANWIDTH=80 env -u MANOPT man -l "$manpage" 2>/dev/null | sed "s/.\x08//g" >"$tmp/aifleet.txt" || true
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS CONFIGURATION CREDENTIALS \
	'EXIT STATUS' ENVIRONMENT FILES EXAMPLES 'SEE ALSO'; do
	grep -qx -- "$section" "$tmp/aifleet.txt" || fail "the rendered man page has no $section section"
done
missing=()
while read -r opt; do
	grep -qF -- "${opt//-/\\-}" "$tmp/aifleet.1" || missing+=("$opt")
done < <(grep -oE '(^|[ ,])--?[a-zA-Z][a-z-]*' "$tmp/help" | sed 's/^[ ,]*//' | grep -vx -- '-' | sort -u)
while read -r cmd; do
	grep -qE "^\.B ${cmd//-/\\\\-}\$" "$tmp/aifleet.1" || missing+=("command $cmd")
done < <(sed -n '/^Commands:/,/^$/p' "$tmp/help" | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p')
while read -r product; do
	grep -qF -- "$product" "$tmp/aifleet.1" || missing+=("product $product")
done < <(sed -n '/^Products/,/^$/p' "$tmp/help" | sed -n 's/^  \([a-z_]*\) .*/\1/p')
[ ${#missing[@]} -eq 0 ] ||
	fail "docs/aifleet.1 lacks what 'aifleet --help' lists: ${missing[*]}"
note "man -w aifleet: $manpage; every command, option and product of --help is in it"

# The systemd units name the installed binary and documentation.
unit="$root/lib/systemd/system/aifleet-sync.service"
[ -f "$unit" ] && [ -f "$root/lib/systemd/system/aifleet-sync.timer" ] ||
	fail "the units are not in $root/lib/systemd/system"
grep -qx 'ExecStart=/usr/bin/aifleet .* sync' "$unit" ||
	fail "aifleet-sync.service does not run /usr/bin/aifleet: $(grep ExecStart "$unit")"
grep -q '^Documentation=.*file:///usr/share/doc/aifleet/README.md' "$unit" ||
	fail "aifleet-sync.service does not point at /usr/share/doc/aifleet/README.md"
if grep -n '@' "$unit"; then
	fail "aifleet-sync.service has a template variable left"
fi

# --- remove ---------------------------------------------------------------
note "dpkg --purge aifleet"
if ! dpkg_root --purge aifleet >"$tmp/dpkg-r.log" 2>&1; then
	cat "$tmp/dpkg-r.log" >&2
	fail "dpkg --purge failed"
fi
status=$(dpkg_root -s aifleet 2>/dev/null | sed -n 's/^Status: //p' || true)
[ -z "$status" ] || [ "$status" = "unknown ok not-installed" ] ||
	fail "after dpkg --purge, aifleet's status is '$status'"
left=$(cd "$root" && find . ! -type d ! -path './var/lib/dpkg/*' | sed 's|^\.||')
[ -z "$left" ] || fail "dpkg --purge left files behind: $left"
while read -r f; do
	[ "$f" = / ] && continue
	if [ -e "$root$f" ] && ! [ -d "$root$f" ]; then
		fail "dpkg --purge left $f"
	fi
done <"$tmp/contents"
left=$(cd "$root" && find . -mindepth 1 -type d ! -path ./var ! -path ./var/lib ! -path './var/lib/dpkg' ! -path './var/lib/dpkg/*')
[ -z "$left" ] || fail "dpkg --purge left directories of the package: $left"

note "ok: $(basename "$deb") built, installed, checked and purged"
