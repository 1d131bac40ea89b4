#!/usr/bin/env bash
# The `install` CTest: `cmake --install` into temporary prefixes (no root needed), then checks
# that every file is where a user and systemd look for it, that nothing else (test, mock and
# benchmark programs) is installed, that the unit names the installed binary and config, and
# that the installed turnout accepts the installed configuration.
# Usage: tests/install/check-install.sh BUILD_DIR [CMAKE]
set -euo pipefail
build=$(realpath "$1")
cmake=${2:-cmake}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install test: $*" >&2; exit 1; }

for t in turnout turnoutctl; do
  [[ -x "$build/$t" ]] || fail "$build/$t is not built"
done

# 1. A plain prefix: everything under it.
p="$tmp/opt"
"$cmake" --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
expect=(
  bin/turnout bin/turnoutctl
  lib/systemd/system/turnout.service
  etc/turnout/turnout.toml
  share/man/man8/turnout.8.gz share/man/man8/turnoutctl.8.gz share/man/man5/turnout.toml.5.gz
)
for f in "${expect[@]}"; do
  [[ -f "$p/$f" ]] || fail "missing $p/$f"
done
for f in bin/turnout bin/turnoutctl; do
  [[ -x "$p/$f" ]] || fail "$p/$f is not executable"
done
# Only the two programs go to bin.
extra=$(cd "$p/bin" && ls | grep -vxE 'turnout|turnoutctl' || true)
[[ -z "$extra" ]] || fail "unexpected programs installed: $extra"

# A build on io_uring installs turnout-epoll where turnout looks for it (../libexec/turnout from
# its own folder), and turnout becomes it when the configuration asks for epoll.
if [[ -x "$build/turnout-epoll" ]]; then
  epoll="$p/libexec/turnout/turnout-epoll"
  [[ -x "$epoll" ]] || fail "missing $epoll"
  cat >"$tmp/epoll.toml" <<EOF
[proxy]
workers = 1
io_backend = "epoll"
[[listen]]
address = "127.0.0.1:0"
[[upstream]]
name = "u"
  [[upstream.pool]]
  name = "p"
  weight = 100
  backends = ["127.0.0.1:9"]
EOF
  "$p/bin/turnout" -c "$tmp/epoll.toml" >"$tmp/epoll.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do grep -q "running with" "$tmp/epoll.log" && break; sleep 0.1; done
  exe=$(readlink "/proc/$pid/exe" || true)
  kill "$pid" 2>/dev/null || true
  wait "$pid" || true
  [[ "$exe" == "$epoll" ]] || fail "with io_backend = \"epoll\" the installed turnout runs $exe, not $epoll: $(cat "$tmp/epoll.log")"
  grep -q "running with 1 worker(s) as pid $pid on epoll" "$tmp/epoll.log" || fail "turnout-epoll did not say so: $(cat "$tmp/epoll.log")"
fi

# The man pages are gzip files that man can render without warnings.
for page in man8/turnout.8 man8/turnoutctl.8 man5/turnout.toml.5; do
  gzip -t "$p/share/man/$page.gz" || fail "$page.gz is not a gzip file"
  if command -v man >/dev/null; then
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p/share/man/$page.gz" 2>&1 >/dev/null || true)
    [[ -z "$warnings" ]] || fail "$page: $warnings"
  fi
done

# The unit starts the installed binary on the installed configuration.
unit="$p/lib/systemd/system/turnout.service"
grep -qxF "ExecStart=$p/bin/turnout -c $p/etc/turnout/turnout.toml" "$unit" || fail "ExecStart of $unit: $(grep ExecStart= "$unit")"
grep -qxF "ExecStartPre=$p/bin/turnout -t -c $p/etc/turnout/turnout.toml" "$unit" || fail "ExecStartPre of $unit"

# The installed turnout accepts the installed configuration (-t needs no writable paths).
out=$("$p/bin/turnout" -t -c "$p/etc/turnout/turnout.toml" 2>&1) || fail "turnout -t rejected the installed config: $out"
[[ "$out" == "configuration ok" ]] || fail "turnout -t said: $out"
"$p/bin/turnoutctl" --version >/dev/null || fail "installed turnoutctl --version failed"

# An operator's configuration survives a second install.
echo "# mine" >>"$p/etc/turnout/turnout.toml"
"$cmake" --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 || fail "second cmake --install failed"
tail -1 "$p/etc/turnout/turnout.toml" | grep -qxF "# mine" || fail "a second install overwrote etc/turnout/turnout.toml"

# 2. The package layout: prefix /usr staged with DESTDIR puts the config in /etc and the unit in
# systemd's folder, and the unit names /usr/bin/turnout.
d="$tmp/stage"
DESTDIR="$d" "$cmake" --install "$build" --prefix /usr >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "staged install failed"; }
[[ -x "$d/usr/bin/turnout" && -x "$d/usr/bin/turnoutctl" ]] || fail "staged: no $d/usr/bin/turnout{,ctl}"
[[ -f "$d/etc/turnout/turnout.toml" ]] || fail "staged: no $d/etc/turnout/turnout.toml"
[[ ! -e "$d/usr/etc" ]] || fail "staged: prefix /usr must not get usr/etc"
staged_unit=$(find "$d" -path '*/systemd/system/turnout.service' | head -1)
[[ -n "$staged_unit" ]] || fail "staged: no systemd/system/turnout.service"
grep -qxF "ExecStart=/usr/bin/turnout -c /etc/turnout/turnout.toml" "$staged_unit" || fail "staged ExecStart: $(grep ExecStart= "$staged_unit")"
[[ -f "$d/usr/share/man/man8/turnout.8.gz" ]] || fail "staged: no man page"

echo "install test: ok ($p, $d)"
