#!/usr/bin/env bash
# tflite-sysroot.sh ARCH [DIR]
#
# Builds a private sysroot holding Debian sid's TensorFlow Lite C library
# (libtensorflow-lite-dev) and the sid glibc it needs, for a Debian 12 host
# whose own glibc is too old for that library, plus libjpeg-turbo's TurboJPEG
# (libturbojpeg0-dev, for edge/jpegturbo). Only Debian's package archive
# is contacted. The result is cached: a second run with the same package set
# does nothing. See DESIGN.md, "Verified facts about the platform".
#
#   ARCH  Debian architecture: amd64 (default), arm64 or armhf
#   DIR   sysroot directory (default .deps/sysroot-ARCH)
set -euo pipefail

arch=${1:-amd64}
root=${2:-.deps/sysroot-$arch}
mirror=${EDGEINFER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(libtensorflow-lite-dev libc6-dev libturbojpeg0-dev)

case $arch in
  amd64) triplet=x86_64-linux-gnu; loader=ld-linux-x86-64.so.2 ;;
  arm64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1 ;;
  armhf) triplet=arm-linux-gnueabihf; loader=ld-linux-armhf.so.3 ;;
  *) echo "tflite-sysroot: unknown architecture $arch (amd64, arm64, armhf)" >&2; exit 2 ;;
esac

mkdir -p "$root"
root=$(cd "$root" && pwd)
stamp="$root/.complete"
want="${packages[*]} $arch $mirror"
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/tflite-apt.XXXXXX")
trap 'rm -rf "$state"' EXIT
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc"
: >"$state/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" >"$state/etc/sources.list"

apt_opts=(
  -o "Dir::Etc::SourceList=$state/etc/sources.list"
  -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State=$state"
  -o "Dir::State::Lists=$state/lists"
  -o "Dir::State::status=$state/status"
  -o "Dir::Cache=$state/cache"
  -o "APT::Architecture=$arch"
  -o "APT::Architectures=$arch"
  -o Debug::NoLocking=1
  -o APT::Sandbox::User=root
  -o Acquire::Languages=none
  -o APT::Install-Recommends=0
)

echo "tflite-sysroot: resolving ${packages[*]} for $arch from Debian sid" >&2
apt-get "${apt_opts[@]}" -qq update
apt-get "${apt_opts[@]}" -qq install --download-only -y "${packages[@]}" >/dev/null

rm -rf "$root"
mkdir -p "$root"
for deb in "$state"/cache/archives/*.deb; do
  dpkg-deb -x "$deb" "$root"
done

L=$root/usr/lib/$triplet
# Merged-/usr layout: linker scripts in libc6-dev name /lib/... and /lib64/...
for d in lib lib64; do
  [[ -e $root/$d || ! -d $root/usr/$d ]] || ln -s "usr/$d" "$root/$d"
done
so=$(cd "$L" && ls libtensorflow-lite.so.* | sort -V | tail -n1)
ln -sf "$so" "$L/libtensorflowlite_c.so"
[[ -e $L/$loader ]] || { echo "tflite-sysroot: $loader missing in $L" >&2; exit 1; }
[[ -f $root/usr/include/tensorflow/lite/c/c_api.h ]] || { echo "tflite-sysroot: c_api.h missing" >&2; exit 1; }
[[ -f $root/usr/include/turbojpeg.h && -e $L/libturbojpeg.so ]] || { echo "tflite-sysroot: turbojpeg.h or libturbojpeg.so missing" >&2; exit 1; }

echo "$want" >"$stamp"
echo "tflite-sysroot: $root ready ($so)" >&2
