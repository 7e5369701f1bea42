#!/usr/bin/env bash
# Unpack Debian's exim4 (daemon-light, base, config) privately under a
# prefix, without installing or starting it: the reference Exim for
# bench/peers.sh and for the side-by-side tests (crates/oxim/tests/exim_compat.rs).
# Also installs the shared libraries the binary needs and creates the
# Debian-exim user its build looks up at start-up. Needs root.
#
# usage: bench/get-exim.sh [--no-install] [PREFIX]   (PREFIX: /var/tmp/oxim-peers-exim)
# Prints the path of the exim4 binary.
set -euo pipefail

install=1
if [[ ${1-} == --no-install ]]; then
	install=0
	shift
fi
prefix=${1:-/var/tmp/oxim-peers-exim}

say() { printf '[get-exim] %s\n' "$*" >&2; }
die() { printf '[get-exim] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (apt-get, dpkg -x, useradd)"

apt_install() {
	((install)) || die "missing $*; rerun without --no-install or install them"
	say "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

exim=$prefix/usr/sbin/exim4
if [[ ! -x $exim ]]; then
	((install)) || die "no Exim under $prefix (rerun without --no-install)"
	dl=$(mktemp -d)
	trap 'rm -rf "$dl"' EXIT
	say "unpacking exim4-daemon-light into $prefix"
	(cd "$dl" && apt-get download -q exim4-daemon-light exim4-base exim4-config >/dev/null 2>&1) ||
		{ apt-get update -q >/dev/null && (cd "$dl" && apt-get download -q exim4-daemon-light exim4-base exim4-config >/dev/null); }
	mkdir -p "$prefix"
	for deb in "$dl"/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
[[ -x $exim ]] || die "no $exim after unpacking"
# The unpacked binary still needs its shared libraries (e.g. libidn12).
if ldd "$exim" | grep -q 'not found'; then
	mapfile -t libs < <(apt-cache depends exim4-daemon-light 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^lib/ {print $2}' | sort -u)
	apt_install "${libs[@]}"
	! ldd "$exim" | grep 'not found' || die "exim4 still misses libraries"
fi
# Debian's build looks its user up by name at start-up.
if ! getent passwd Debian-exim >/dev/null; then
	((install)) || die "user Debian-exim (compiled into Debian's exim4) is missing"
	say "creating system user Debian-exim for the private Exim"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin Debian-exim
fi
echo "$exim"
