#!/usr/bin/env bash
# Builds the Debian package turnout_<version>_<arch>.deb (CPack's DEB generator) from a Release
# build in build-deb/, checks it with lintian (fails on errors, prints warnings) and prints the
# path of the .deb. Installs what it needs (the build dependencies, dpkg-dev, fakeroot,
# lintian) with apt when missing. Usage: scripts/package.sh   then   apt install ./turnout_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/apt-ensure.sh package dpkg-dev fakeroot lintian file

# Same ccache settings as scripts/build.sh, so a fresh checkout reuses earlier compilations.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime

# Debian's hardening flags (fortify, stack protector, relro + bindnow), as dpkg-buildflags gives
# them to every Debian package. Warnings stay warnings here: a new compiler's opinion should not
# stop a release build (scripts/build.sh and the tests keep -Werror).
dir=build-deb
if [[ ! -f "$dir/build.ninja" ]]; then
  export DEB_BUILD_MAINT_OPTIONS=hardening=+all
  CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  CXXFLAGS="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DTURNOUT_WERROR=OFF >/dev/null
fi
cmake --build "$dir" -j"$(nproc)" --target turnout turnout-epoll turnoutctl
rm -f "$dir"/turnout_*.deb
# fakeroot: root-owned files in the archive even when this runs as a normal user.
(cd "$dir" && fakeroot cpack -G DEB >cpack.log 2>&1) || { cat "$dir/cpack.log" >&2; exit 1; }
deb=$(ls "$dir"/turnout_*.deb)

echo "package: contents of $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"

# lintian: errors fail the build; warnings and info are shown. (Run as root, lintian only warns
# that it should not be; --allow-root says we know.)
lintian_args=(--display-level '>=info' --fail-on error)
[[ $(id -u) == 0 ]] && lintian_args+=(--allow-root)
if ! lintian "${lintian_args[@]}" "$deb"; then
  echo "package: lintian found errors in $deb" >&2
  exit 1
fi
echo "package: lintian: no errors"
tests/install/check-deb.sh "$deb" # the layout, the conffile, Depends, a postinst that starts nothing
echo "$(realpath "$deb")"
