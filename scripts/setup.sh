#!/usr/bin/env bash
# Sets Kiln up on a fresh Debian machine, and does nothing that is already done:
# the Debian packages it needs, npm ci, and the BPF object.
# With --test, also what the test suite needs: the CPython roots (3.9, 3.13,
# 3.14 from Debian), C headers for the layout checks, chromium, and golang-go
# (go tool pprof reads Kiln's pprof in the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=""
[ "${1:-}" = "--test" ] && with_tests=1

pkgs=(clang bpftool libbpf-dev make gcc libc6-dev python3.11)
[ -n "$with_tests" ] && pkgs+=(python3.11-dev debootstrap chromium util-linux mount golang-go)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci wipes node_modules (chdb alone is ~550 MB): only when the lock file changed
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

make -s -C bpf
npm run -s build:ui

if [ -n "$with_tests" ]; then
  bash test/setup-pythons.sh
fi
echo "setup: ready"
