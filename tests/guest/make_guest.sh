#!/usr/bin/env bash
# Prepare a bootable test guest for tsync in a cache directory:
#   CACHE/vmlinuz            a Debian 12 kernel (apt-get download linux-image-*-amd64)
#   CACHE/initramfs.cpio.gz  busybox-static, a static `tsync`, `tsync-mark`, the
#                            virtio_console modules and tests/guest/init
#   CACHE/guest.env          what was built (kernel version, tsync binary, ...)
# The kernel .deb and the static build are kept and reused; the initramfs is
# rebuilt on every run (a few seconds).
#
# usage: make_guest.sh --cache DIR [--source DIR] [--tsync BIN] [--script FILE]
#                      [--kernel-package NAME] [--jobs N]
#   --source DIR          tsync source tree (default: this script's ../..)
#   --tsync BIN           use this static tsync instead of building one
#   --script FILE         run FILE in the guest (as /etc/guest.sh) instead of
#                         tests/guest/guest.sh (starts tsync-mark and the agent)
#   --kernel-package P    e.g. linux-image-6.1.0-50-amd64 (default: the newest
#                         linux-image-<abi>-amd64 apt-cache offers; or set
#                         TSYNC_GUEST_KERNEL_DEB=/path/to/linux-image.deb)
# Exit status: 0 ready, 77 cannot be prepared here (reason on stderr), 1 error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
cache=""
tsync_bin=""
script="$here/guest.sh"
kernel_pkg=""
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=$2; shift 2 ;;
    --source) source_dir=$(cd "$2" && pwd); shift 2 ;;
    --tsync) tsync_bin=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --kernel-package) kernel_pkg=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "make_guest.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
done
[ -n "$cache" ] || { echo "make_guest.sh: --cache DIR is required" >&2; exit 1; }
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

skip() { echo "make_guest.sh: SKIP: $*" >&2; exit 77; }
say() { echo "make_guest.sh: $*" >&2; }

# ---- tools ----
busybox=""
for b in /bin/busybox /usr/bin/busybox; do
  [ -x "$b" ] && { busybox=$b; break; }
done
[ -n "$busybox" ] || skip "busybox not found (Debian: apt-get install busybox-static)"
if command -v readelf >/dev/null && readelf -l "$busybox" 2>/dev/null | grep -q 'INTERP'; then
  skip "$busybox is dynamically linked (Debian: apt-get install busybox-static)"
fi
command -v cpio >/dev/null || skip "cpio not found (Debian: apt-get install cpio)"
command -v dpkg-deb >/dev/null || skip "dpkg-deb not found (a Debian system is needed to fetch the kernel)"

# ---- kernel ----
kdir="$cache/kernel"
mkdir -p "$kdir"
deb="${TSYNC_GUEST_KERNEL_DEB:-}"
if [ -z "$deb" ]; then
  deb=$(ls "$kdir"/linux-image-*.deb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$kernel_pkg" ] && [ -n "$deb" ] && [[ "$(basename "$deb")" != "${kernel_pkg}_"* ]]; then deb=""; fi
fi
if [ -z "$deb" ]; then
  command -v apt-get >/dev/null || skip "no apt-get to download a kernel package"
  if [ -z "$kernel_pkg" ]; then
    kernel_pkg=$(apt-cache search --names-only '^linux-image-[0-9][0-9.]*-[0-9]+-amd64$' 2>/dev/null |
                 awk '{print $1}' | sort -V | tail -n 1 || true)
    [ -n "$kernel_pkg" ] || skip "apt-cache offers no linux-image-<abi>-amd64 package (run apt-get update?)"
  fi
  say "downloading $kernel_pkg"
  if ! (cd "$kdir" && apt-get download "$kernel_pkg" >"$kdir/download.log" 2>&1); then
    skip "apt-get download $kernel_pkg failed (no network or apt lists?): $(tail -n 1 "$kdir/download.log")"
  fi
  deb=$(ls "$kdir"/"$kernel_pkg"_*.deb 2>/dev/null | tail -n 1 || true)
  [ -n "$deb" ] || skip "apt-get download $kernel_pkg left no .deb"
fi
# Only what the guest needs is kept from the package (the unpacked tree is ~400 MB):
# KSTAGE/vmlinuz, KSTAGE/version, KSTAGE/modules/*.ko and KSTAGE/modules/load.order.
kstage="$kdir/$(basename "$deb" .deb)"
if [ ! -s "$kstage/version" ]; then
  say "extracting $(basename "$deb")"
  kroot=$(mktemp -d "$kdir/unpack.XXXXXX")
  trap 'rm -rf "$kroot"' EXIT
  dpkg-deb -x "$deb" "$kroot" || skip "cannot extract $deb"
  vmlinuz=$(ls "$kroot"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
  [ -n "$vmlinuz" ] || skip "$(basename "$deb") has no /boot/vmlinuz-*"
  kver=${vmlinuz##*/vmlinuz-}
  moddir=$(ls -d "$kroot"/lib/modules/"$kver" "$kroot"/usr/lib/modules/"$kver" 2>/dev/null | head -n 1 || true)
  config="$kroot/boot/config-$kver"

  # virtio_console and the virtio PCI transport (q35: virtio-serial-pci), unless
  # built in. The .deb has no modules.dep (depmod runs at install); each .ko
  # names its dependencies in its .modinfo "depends=" string. Load order:
  # dependencies first.
  declare -a load_order=()
  declare -A seen=()
  find_ko() { find "$moddir" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -n 1; }
  ko_text() {
    case "$1" in
      *.xz) xz -dc "$1" ;;
      *.zst) zstd -dc "$1" ;;
      *.gz) gzip -dc "$1" ;;
      *) cat "$1" ;;
    esac
  }
  ko_depends() { ko_text "$1" 2>/dev/null | tr '\0' '\n' | grep -a '^depends=' | head -n 1 | cut -d= -f2 | tr ',' ' ' || true; }
  add_module() {
    local m=$1 f d
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1
    f=$(find_ko "$m")
    [ -n "$f" ] || { say "module $m: no .ko in $(basename "$deb")"; return 1; }
    for d in $(ko_depends "$f"); do add_module "$d"; done
    load_order+=("$m")
  }
  rm -rf "$kstage.tmp"
  mkdir -p "$kstage.tmp/modules"
  for opt in VIRTIO_CONSOLE:virtio_console VIRTIO_PCI:virtio_pci; do
    grep -q "^CONFIG_${opt%%:*}=y" "$config" 2>/dev/null && continue
    grep -q "^CONFIG_${opt%%:*}=m" "$config" 2>/dev/null && [ -n "$moddir" ] ||
      skip "kernel $kver has ${opt#*:} neither built in nor as a module"
    add_module "${opt#*:}" || skip "kernel $kver: cannot resolve module ${opt#*:}"
  done
  : >"$kstage.tmp/modules/load.order"
  for m in "${load_order[@]}"; do
    ko_text "$(find_ko "$m")" >"$kstage.tmp/modules/$m.ko"
    echo "$m" >>"$kstage.tmp/modules/load.order"
  done
  cp "$vmlinuz" "$kstage.tmp/vmlinuz"
  echo "$kver" >"$kstage.tmp/version"
  rm -rf "$kstage"
  mv "$kstage.tmp" "$kstage"
  rm -rf "$kroot"
  trap - EXIT
fi
kver=$(cat "$kstage/version")
cp "$kstage/vmlinuz" "$cache/vmlinuz"
modules=$(tr '\n' ' ' <"$kstage/modules/load.order" | sed 's/ $//')

# ---- static tsync and tsync-mark ----
# The static build tree is configured even with --tsync: tsync-mark includes
# the library's clock header, which needs the tree's generated headers.
bdir="$cache/tsync-static"
# No -march=native: the guest CPU is qemu64 under TCG.
"${CMAKE:-cmake}" -S "$source_dir" -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-O2 \
      -DCMAKE_EXE_LINKER_FLAGS=-static -DTSYNC_BUILD_TESTS=OFF -DTSYNC_BUILD_BENCHMARKS=OFF \
      -DTSYNC_BUILD_EXAMPLES=ON -DTSYNC_WITH_TRACECMD=OFF >"$cache/tsync-static.configure.log" 2>&1 ||
  { tail -n 20 "$cache/tsync-static.configure.log" >&2; exit 1; }
if [ -z "$tsync_bin" ]; then
  say "building a static, portable tsync in $bdir"
  "${CMAKE:-cmake}" --build "$bdir" --target tsync_cli -j "$jobs" >"$cache/tsync-static.build.log" 2>&1 ||
    { tail -n 30 "$cache/tsync-static.build.log" >&2; exit 1; }
  tsync_bin="$bdir/examples/tsync"
fi
[ -x "$tsync_bin" ] || { echo "make_guest.sh: no executable tsync at $tsync_bin" >&2; exit 1; }
if command -v readelf >/dev/null && readelf -l "$tsync_bin" | grep -q INTERP; then
  echo "make_guest.sh: $tsync_bin is dynamically linked; the guest has no libc (build with -static)" >&2
  exit 1
fi
mark_bin="$cache/tsync-mark"
if [ ! -x "$mark_bin" ] || [ "$here/guest_mark.cpp" -nt "$mark_bin" ] || [ "$tsync_bin" -nt "$mark_bin" ]; then
  ${CXX:-c++} -std=c++20 -O2 -static -I "$source_dir/include" -I "$bdir/generated/include" \
    -o "$mark_bin.tmp" "$here/guest_mark.cpp"
  mv "$mark_bin.tmp" "$mark_bin"
fi

# ---- initramfs ----
stage="$cache/initramfs.d"
rm -rf "$stage"
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,run,etc,lib/modules}
cp "$busybox" "$stage/bin/busybox"
cp "$tsync_bin" "$stage/bin/tsync"
cp "$mark_bin" "$stage/bin/tsync-mark"
cp "$here/init" "$stage/init"
cp "$script" "$stage/etc/guest.sh"
chmod 755 "$stage/init" "$stage/etc/guest.sh" "$stage/bin/"*
cp "$kstage"/modules/* "$stage/lib/modules/"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 >"$cache/initramfs.cpio.gz.tmp")
mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"

cat >"$cache/guest.env" <<EOF
kernel_package=$(basename "$deb")
kernel_version=$kver
modules=$modules
tsync=$tsync_bin
vmlinuz=$cache/vmlinuz
initramfs=$cache/initramfs.cpio.gz
EOF
say "guest ready: kernel $kver, modules: ${modules:-(built in)}, initramfs $(du -h "$cache/initramfs.cpio.gz" | cut -f1)"
