#!/usr/bin/env bash
# Builds the Debian roots whose interpreters the tests run under (see
# kit/pythons.ts): 3.9 from bullseye, 3.13 from trixie, 3.14 from sid, each a
# minbase debootstrap plus python3.X-minimal and python3.X-dev (the headers that
# test/layouts.test.ts compiles offsetof() programs against).
#
# Idempotent: a root with .kiln-ready is only checked and has /proc mounted
# (workloads write /proc/self/task/TID/comm; mounts do not survive a reboot).
# A root without .kiln-ready is a leftover of a failed run and is rebuilt.
# Needs root. Usage: bash test/setup-pythons.sh
set -euo pipefail

ROOTS="${KILN_PYTHONS:-/var/cache/kiln/pythons}"
# version:suite pairs; the versions are the ones kit/pythons.ts requires
TARGETS=("3.9:bullseye" "3.13:trixie" "3.14:sid")

if [[ $EUID -ne 0 ]]; then
  echo "setup-pythons: must run as root (debootstrap, chroot, mount)" >&2
  exit 1
fi

mkdir -p "$ROOTS"
# Two runs at once would debootstrap into the same directories.
exec 9>"$ROOTS/.lock"
if ! flock -n 9; then
  echo "setup-pythons: another run holds $ROOTS/.lock; waiting"
  flock 9
fi

ensure_proc() {
  local root=$1
  mkdir -p "$root/proc"
  if ! mountpoint -q "$root/proc"; then
    mount -t proc proc "$root/proc"
    echo "  mounted /proc in $root"
  fi
}

# Mounts left under a root by an interrupted debootstrap must go before rm -rf,
# or it would walk into the host's /proc and /sys.
unmount_all_under() {
  local root=$1 m
  while read -r m; do
    umount -l "$m" || true
  done < <(awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

works() {
  local root=$1 ver=$2
  # sys.version of 3.9 spans two lines; print it as one
  chroot "$root" "python$ver" -c 'import sys; print(" ".join(sys.version.split()))'
}

build() {
  local ver=$1 suite=$2 root="$ROOTS/$1"
  unmount_all_under "$root"
  rm -rf "$root"
  debootstrap --variant=minbase --include="python$ver-minimal,python$ver-dev" "$suite" "$root" "$MIRROR"
  ensure_proc "$root"
  works "$root" "$ver"
  touch "$root/.kiln-ready"
}

pending=()
for t in "${TARGETS[@]}"; do
  ver=${t%%:*}
  root="$ROOTS/$ver"
  if [[ -f "$root/.kiln-ready" ]]; then
    ensure_proc "$root"
    echo "python $ver: ready in $root: $(works "$root" "$ver")"
  else
    pending+=("$t")
  fi
done

if [[ ${#pending[@]} -eq 0 ]]; then
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  echo "setup-pythons: installing debootstrap"
  apt-get update -q
  apt-get install -y -q debootstrap
fi
# The host's own Debian mirror: the one the machine is allowed to reach.
MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
if [[ -z "$MIRROR" ]]; then
  echo "setup-pythons: no URIs: line in /etc/apt/sources.list.d/debian.sources" >&2
  exit 1
fi

# The three roots download and unpack independently; in parallel they take
# about as long as the slowest one.
declare -A pids=()
for t in "${pending[@]}"; do
  ver=${t%%:*} suite=${t#*:}
  echo "python $ver: debootstrap $suite from $MIRROR into $ROOTS/$ver (log: $ROOTS/$ver.log)"
  build "$ver" "$suite" >"$ROOTS/$ver.log" 2>&1 &
  pids[$ver]=$!
done

failed=0
for t in "${pending[@]}"; do
  ver=${t%%:*}
  if wait "${pids[$ver]}"; then
    echo "python $ver: built $ROOTS/$ver: $(tail -1 "$ROOTS/$ver.log")"
  else
    echo "python $ver: FAILED, last lines of $ROOTS/$ver.log:" >&2
    tail -15 "$ROOTS/$ver.log" >&2
    failed=1
  fi
done
exit $failed
