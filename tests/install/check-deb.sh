#!/usr/bin/env bash
# The `package` CTest: builds the Debian package of this build (`cmake --build BUILD --target
# package`, CPack's DEB generator; seconds once the programs are built, as they are for the
# other tests), or checks the .deb given, and reads it back with dpkg-deb: the programs in
# /usr/bin and nothing else there, the unit in systemd's folder, /etc/turnout/turnout.toml
# as a conffile, the three man pages, a Depends line from dpkg-shlibdeps, and a postinst that
# starts nothing (run against stand-ins of systemctl and deb-systemd-invoke that record calls).
# The release .deb (hardening flags, lintian) is scripts/package.sh's, which runs this check
# on it too.
# Usage: tests/install/check-deb.sh --build BUILD_DIR [CMAKE]   |   tests/install/check-deb.sh DEB
set -euo pipefail
fail() { echo "package test: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ${1:-} == --build ]]; then
  build=$(realpath "$2")
  cmake=${3:-cmake}
  rm -f "$build"/turnout_*.deb
  "$cmake" --build "$build" --target package >"$tmp/package.log" 2>&1 ||
    { cat "$tmp/package.log" >&2; fail "cmake --build $build --target package failed"; }
  debs=("$build"/turnout_*.deb)
  [[ ${#debs[@]} == 1 && -f ${debs[0]} ]] || fail "expected one turnout_*.deb in $build, found: ${debs[*]}"
  deb=${debs[0]}
else
  deb=${1:?usage: check-deb.sh --build BUILD_DIR [CMAKE] | check-deb.sh DEB}
fi
[[ $(basename "$deb") =~ ^turnout_[0-9][^_]*_[a-z0-9]+\.deb$ ]] || fail "$deb is not named turnout_<version>_<arch>.deb"

# Contents: "./usr/bin/turnout" and the like, one path a line.
dpkg-deb --contents "$deb" | awk '{print $NF}' | sed 's|^\./|/|; s|/$||' >"$tmp/contents"
for f in /usr/bin/turnout /usr/bin/turnoutctl /lib/systemd/system/turnout.service /etc/turnout/turnout.toml \
         /usr/share/man/man8/turnout.8.gz /usr/share/man/man8/turnoutctl.8.gz /usr/share/man/man5/turnout.toml.5.gz \
         /usr/libexec/turnout/turnout-epoll; do
  grep -qxF "$f" "$tmp/contents" || fail "$deb lacks $f (it has: $(tr '\n' ' ' <"$tmp/contents"))"
done
extra=$(grep -E '^/usr/bin/.' "$tmp/contents" | grep -vxE '/usr/bin/turnout|/usr/bin/turnoutctl' || true)
[[ -z $extra ]] || fail "unexpected programs in the package: $extra"
dpkg-deb --contents "$deb" | awk '$NF ~ /usr\/(bin\/turnout(ctl)?|libexec\/turnout\/turnout-epoll)$/ {print $1}' | while read -r mode; do
  [[ $mode == -rwxr-xr-x ]] || fail "a program is not mode 755 in the package: $mode"
done

# Control: name, version, architecture, a Depends line (dpkg-shlibdeps: libc6 at least).
dpkg-deb --field "$deb" Package Version Architecture Depends >"$tmp/control"
grep -qx 'Package: turnout' "$tmp/control" || fail "Package is not turnout: $(cat "$tmp/control")"
grep -qE '^Version: [0-9]' "$tmp/control" || fail "no Version"
grep -qE '^Architecture: [a-z0-9]+$' "$tmp/control" || fail "no Architecture"
grep -qE '^Depends: .*libc6' "$tmp/control" || fail "no Depends line naming libc6: $(cat "$tmp/control")"

# Maintainer files: the configuration is a conffile (dpkg keeps the operator's edits).
mkdir "$tmp/control.d"
dpkg-deb --control "$deb" "$tmp/control.d"
grep -qx '/etc/turnout/turnout.toml' "$tmp/control.d/conffiles" || fail "/etc/turnout/turnout.toml is not a conffile"

# postinst starts nothing: run it (fresh install, then upgrade with the service running) with
# systemd "running" (its folder a stand-in) and systemctl/deb-systemd-invoke recording calls.
postinst="$tmp/control.d/postinst"
[[ -x $postinst ]] || fail "no executable postinst"
mkdir -p "$tmp/bin" "$tmp/run-systemd"
for tool in systemctl deb-systemd-invoke invoke-rc.d service deb-systemd-helper; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 0\n' "$tool" "$tmp/calls" >"$tmp/bin/$tool"
  chmod +x "$tmp/bin/$tool"
done
sed "s|/run/systemd/system|$tmp/run-systemd|g" "$postinst" >"$tmp/postinst"
grep -q "$tmp/run-systemd" "$tmp/postinst" || fail "postinst no longer asks whether systemd runs; update this test"
: >"$tmp/calls"
PATH="$tmp/bin:$PATH" sh "$tmp/postinst" configure >"$tmp/out1" 2>&1 || fail "postinst configure failed: $(cat "$tmp/out1")"
PATH="$tmp/bin:$PATH" sh "$tmp/postinst" configure 0.0.1 >"$tmp/out2" 2>&1 || fail "postinst upgrade failed: $(cat "$tmp/out2")"
grep -q 'daemon-reload' "$tmp/calls" || fail "postinst did not reload systemd's units (calls: $(cat "$tmp/calls"))"
started=$(grep -E '(^| )(start|restart|reload-or-restart|try-restart|enable)( |$)' "$tmp/calls" || true)
[[ -z $started ]] || fail "postinst starts or enables the service: $started"

echo "package test: $deb ok ($(grep -c . "$tmp/contents") entries; $(grep '^Depends:' "$tmp/control"))"
