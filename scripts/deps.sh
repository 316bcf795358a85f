#!/usr/bin/env bash
# Install the Debian 12 packages tsync's build, tests, benchmarks and demo need,
# but only those that are missing. Run as root (or with sudo available).
set -euo pipefail
pkgs=(cmake make g++ clang lld libclang-rt-14-dev pkg-config catch2 libbenchmark-dev libeigen3-dev gnuplot-nox trace-cmd
      python3 qemu-system-x86 busybox-static cpio libtracecmd-dev libtraceevent-dev libtracefs-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tsync: installing missing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
