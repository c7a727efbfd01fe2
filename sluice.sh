#!/usr/bin/env bash
# sluice.sh — set up, build and run sluice on a fresh Debian 12 machine.
#
#   ./sluice.sh run [sluice run options]   install deps, build, run the main job
#   ./sluice.sh test                       install deps, build, run every test suite
#   ./sluice.sh build | deps               just build / just install dependencies
#
# Dependencies come from Debian's packages only. Installing needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")"

PKGS=(build-essential meson ninja-build pkg-config gcc g++ clang
      liburing-dev libhwloc-dev hwloc libnuma-dev libcmocka-dev libbenchmark-dev
      libxxhash-dev libzstd-dev libssl-dev libjson-c-dev
      gnuplot-nox iproute2 binutils)
BUILD=${SLUICE_BUILD_DIR:-build}

deps() {
	local missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "sluice.sh: installing ${missing[*]}" >&2
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
	local opts=()
	# CI builds with warnings as errors; a developer's build does too on Debian 12's gcc.
	[ "${CI:-}" = "true" ] && opts+=(--werror)
	if [ ! -f "$BUILD/build.ninja" ]; then
		meson setup "$BUILD" "${opts[@]}" >/dev/null
	fi
	meson compile -C "$BUILD" >/dev/null || meson compile -C "$BUILD"
}

cmd=${1:-help}
shift || true
case "$cmd" in
deps) deps ;;
build) deps; build ;;
run) deps; build; exec "$BUILD/engine/sluice" run "$@" ;;
test) deps; build; exec meson test -C "$BUILD" --print-errorlogs "$@" ;;
*) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; [ "$cmd" = help ] || exit 2 ;;
esac
