#!/usr/bin/env bash
# Installs everything turnout needs to build, test and benchmark on a fresh Debian 12 machine.
# Idempotent and quick when everything is already there: apt is only asked when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libssl-dev libxxhash-dev libtomlplusplus-dev
  libspdlog-dev doctest-dev node-llhttp
  nodejs npm curl openssl
  nginx-light haproxy wrk
  etcd-server etcd-client
  libc-ares-dev liburing-dev
  dpkg-dev fakeroot file
)

# nodejs/npm may come from elsewhere on some images: only ask apt for them when absent.
command -v node >/dev/null && packages=("${packages[@]/nodejs}")
command -v npm >/dev/null && packages=("${packages[@]/npm}")
read -r -a packages <<<"${packages[*]}"
# etcd-server's postinst would start a system etcd on :2379; the tests run their own on free
# loopback ports. A temporary policy-rc.d (exit 101: "action forbidden") keeps invoke-rc.d from
# starting any packaged service during the install; an existing one is left as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy && $(id -u) == 0 ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
scripts/apt-ensure.sh install-deps "${packages[@]}"

# The Debian nginx/haproxy packages may start system services; turnout's benchmark runs its own
# instances on loopback, so make sure the packaged ones don't hold ports.
for svc in nginx haproxy; do
  pkill -F "/run/$svc.pid" 2>/dev/null || true
done
# etcd (Debian's unit runs it without a pid file): stop the packaged service if one runs anyway.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi

# Node packages for integration tests (official MCP SDK) — pinned by package-lock.json.
if [[ ! -d tests/integration/node_modules/@modelcontextprotocol/sdk ]] ||
   [[ tests/integration/package-lock.json -nt tests/integration/node_modules/.package-lock.json ]]; then
  (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
fi
