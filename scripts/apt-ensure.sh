#!/usr/bin/env bash
# Installs with apt those of the named Debian packages that are missing; asks apt nothing when
# all are there. Shared by install-deps.sh, fuzz.sh and package.sh.
# Usage: scripts/apt-ensure.sh LABEL PACKAGE...   (LABEL prefixes the one line it prints)
set -euo pipefail
label=$1
shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "$label: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
