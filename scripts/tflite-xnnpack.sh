#!/usr/bin/env bash
# tflite-xnnpack.sh [ARCH]
#
# Builds TensorFlow Lite 2.14.1 with the XNNPACK delegate from Debian's own
# packages only, and prints the sysroot that holds it (one line, the path).
#
#   1. debootstrap a Debian sid chroot (buildd variant, cmake, ninja);
#   2. install tensorflow's build dependencies plus libxnnpack-dev, and the
#      packages edgeinfer links against (libtensorflow-lite-dev for the C API
#      headers, libturbojpeg0-dev);
#   3. apt-get source tensorflow, apply Debian's patches, configure
#      tensorflow/lite with CMake as debian/rules does but with XNNPACK on
#      (uint8 and int8 kernels enabled), build libtensorflow-lite.so;
#   4. install that library over the packaged one inside the chroot, which
#      then serves as the sysroot edgeinfer links against (sid's glibc).
#
# The result is cached outside the work tree, keyed by the versions:
#   ${EDGEINFER_CACHE:-~/.cache/edgeinfer}/tflite-2.14.1-xnnpack-ARCH
# A second run finds the stamp and only prints the path. Needs root (for
# debootstrap and chroot) and debootstrap; exits 3 when either is missing so
# callers can fall back to the prebuilt library. Only amd64 is built natively
# here; DESIGN.md describes the cross build for arm64 and armhf.
set -euo pipefail

arch=${1:-$(dpkg --print-architecture 2>/dev/null || echo amd64)}
mirror=${EDGEINFER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${EDGEINFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeinfer}
tf_version=2.14.1
# Bump when the recipe below changes, so caches rebuild.
recipe=2
dir=$cache/tflite-$tf_version-xnnpack-$arch
root=$dir/root
stamp=$dir/complete
key="tensorflow-lite $tf_version xnnpack recipe $recipe $arch"

log() { echo "tflite-xnnpack: $*" >&2; }

if [[ -f $stamp && $(head -n1 "$stamp") == "$key" ]]; then
  echo "$root"
  exit 0
fi

host=$(dpkg --print-architecture 2>/dev/null || echo amd64)
if [[ $arch != "$host" ]]; then
  log "only native builds ($host) are scripted; $arch needs the cross build in DESIGN.md"
  exit 3
fi
if [[ $(id -u) != 0 ]]; then
  log "needs root (debootstrap, chroot)"
  exit 3
fi
if ! command -v debootstrap >/dev/null; then
  log "needs debootstrap (apt-get install debootstrap)"
  exit 3
fi

case $arch in
  amd64) triplet=x86_64-linux-gnu ;;
  arm64) triplet=aarch64-linux-gnu ;;
  armhf) triplet=arm-linux-gnueabihf ;;
  *) log "unknown architecture $arch"; exit 2 ;;
esac

mkdir -p "$dir"
exec 9>"$dir/lock"
flock 9
# Another build may have finished while we waited for the lock.
if [[ -f $stamp && $(head -n1 "$stamp") == "$key" ]]; then
  echo "$root"
  exit 0
fi

cleanup() {
  umount "$root/proc" 2>/dev/null || true
}
trap cleanup EXIT

in_chroot() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

start=$SECONDS
if [[ ! -f $dir/bootstrapped ]]; then
  rm -rf "$root"
  log "debootstrap sid into $root (about a minute)"
  debootstrap --variant=buildd --arch="$arch" --include=cmake,ninja-build,ca-certificates \
    sid "$root" "$mirror" >"$dir/debootstrap.log" 2>&1 || {
      tail -n 20 "$dir/debootstrap.log" >&2; log "debootstrap failed (log: $dir/debootstrap.log)"; exit 1; }
  touch "$dir/bootstrapped"
fi
mount -t proc proc "$root/proc" 2>/dev/null || log "could not mount proc in the chroot; going on without"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror sid main
deb-src $mirror sid main
EOF
echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99edgeinfer"
echo 'APT::Install-Recommends "false";' >>"$root/etc/apt/apt.conf.d/99edgeinfer"

build_deps=(libabsl-dev libcpuinfo-dev libeigen3-dev libfarmhash-dev libfft2d-dev
  libflatbuffers-dev libfp16-dev libgemmlowp-dev libneon-2-sse-dev libpthreadpool-dev
  libruy-dev libxnnpack-dev opencl-c-headers libegl-dev libgles-dev libvulkan-dev
  flatbuffers-compiler)
link_deps=(libtensorflow-lite-dev libturbojpeg0-dev libc6-dev)
log "installing build dependencies in the chroot"
in_chroot apt-get -qq update
in_chroot apt-get -qq install -y "${build_deps[@]}" "${link_deps[@]}" >"$dir/apt.log" 2>&1 || {
  tail -n 20 "$dir/apt.log" >&2; log "apt-get install failed (log: $dir/apt.log)"; exit 1; }

src=/build/tensorflow
if [[ ! -f $root$src/.patched ]]; then
  log "fetching and patching tensorflow's Debian source"
  rm -rf "$root/build"
  mkdir -p "$root/build/dl" "$root$src"
  # The .dsc may answer 404 while both tarballs arrive: judge by the tarballs.
  in_chroot sh -c "cd /build/dl && apt-get source --download-only tensorflow" >"$dir/source.log" 2>&1 || true
  # (|| true: with nothing to list, pipefail would end the script before
  # the message below)
  orig=$(cd "$root/build/dl" && ls tensorflow_*.orig.tar.* 2>/dev/null | head -n1) || true
  deb=$(cd "$root/build/dl" && ls tensorflow_*.debian.tar.* 2>/dev/null | head -n1) || true
  if [[ -z $orig || -z $deb ]]; then
    tail -n 20 "$dir/source.log" >&2; log "tensorflow source tarballs missing"; exit 1
  fi
  tar -xf "$root/build/dl/$orig" -C "$root$src" --strip-components=1
  tar -xf "$root/build/dl/$deb" -C "$root$src"
  while read -r p; do
    [[ -z $p || $p == \#* ]] && continue
    patch -d "$root$src" -p1 -s <"$root$src/debian/patches/${p%% *}"
  done <"$root$src/debian/patches/series"
  touch "$root$src/.patched"
fi

# CMake package configs the -dev packages lack: XNNPACK as an imported
# shared library (else TFLite's FindXNNPACK downloads it), fp16 headers.
shims=/build/cmake-shims
mkdir -p "$root$shims/XNNPACK" "$root$shims/fp16_headers"
cat >"$root$shims/XNNPACK/XNNPACKConfig.cmake" <<EOF
if(NOT TARGET XNNPACK)
  add_library(XNNPACK SHARED IMPORTED)
  set_target_properties(XNNPACK PROPERTIES
    IMPORTED_LOCATION /usr/lib/$triplet/libXNNPACK.so
    INTERFACE_INCLUDE_DIRECTORIES /usr/include)
endif()
set(XNNPACK_FOUND TRUE)
EOF
echo 'set(fp16_headers_FOUND TRUE)' >"$root$shims/fp16_headers/fp16_headersConfig.cmake"

# debian/rules' configuration, with XNNPACK switched on.
log "configuring tensorflow/lite with XNNPACK"
qflags="-DXNNPACK_DELEGATE_ENABLE_QS8 -DXNNPACK_DELEGATE_ENABLE_QU8"
in_chroot cmake -S $src/tensorflow/lite -B /build/out -G Ninja -Wno-dev \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS="-O2 $qflags" -DCMAKE_CXX_FLAGS="-O2 $qflags" \
  -DBUILD_SHARED_LIBS=ON \
  -DTFLITE_ENABLE_INSTALL=OFF \
  -DTFLITE_ENABLE_GPU=OFF \
  -DTFLITE_ENABLE_NNAPI=OFF \
  -DTFLITE_ENABLE_RESOURCE=ON \
  -DTFLITE_ENABLE_RUY=ON \
  -DTFLITE_ENABLE_XNNPACK=ON \
  -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON \
  -DSYSTEM_FARMHASH=ON \
  -DSYSTEM_PTHREADPOOL=ON \
  -Dabsl_DIR=/usr/lib/$triplet/cmake/absl/ \
  -Dcpuinfo_DIR=/usr/lib/$triplet/cmake/cpuinfo/ \
  -DEigen3_DIR=/usr/share/eigen3/cmake/ \
  -Dfft2d_DIR=/usr/lib/$triplet/cmake/fft2d/ \
  -DFlatBuffers_DIR=/usr/lib/$triplet/cmake/flatbuffers/ \
  -DGEMMLOWP_SOURCE_DIR=/usr/include/gemmlowp \
  -DML_DTYPES_SOURCE_DIR=/usr/include/ml_dtypes \
  -DNEON_2_SSE_DIR=/usr/lib/cmake/NEON_2_SSE/ \
  -DXNNPACK_DIR=$shims/XNNPACK -Dfp16_headers_DIR=$shims/fp16_headers \
  -DFETCHCONTENT_FULLY_DISCONNECTED=ON \
  >"$dir/cmake.log" 2>&1 || { tail -n 30 "$dir/cmake.log" >&2; log "cmake failed (log: $dir/cmake.log)"; exit 1; }

log "compiling (about 4 minutes on 2 cores)"
in_chroot ninja -C /build/out tensorflow-lite >"$dir/ninja.log" 2>&1 || {
  tail -n 30 "$dir/ninja.log" >&2; log "ninja failed (log: $dir/ninja.log)"; exit 1; }

L=$root/usr/lib/$triplet
shopt -s nullglob
libs=("$root"/build/out/libtensorflow-lite.so.*)
[[ ${#libs[@]} -gt 0 ]] || { log "no libtensorflow-lite.so produced"; exit 1; }
built=$(basename "$(printf '%s\n' "${libs[@]}" | sort -V | tail -n1)")
# (grep -c reads everything: grep -q would end nm with SIGPIPE under pipefail)
if [[ $(nm -D --defined-only "$root/build/out/$built" | grep -c ' TfLiteXNNPackDelegateCreate$') != 1 ]]; then
  log "built library does not export TfLiteXNNPackDelegateCreate"; exit 1
fi
packaged=("$L"/libtensorflow-lite.so.*)
[[ ${#packaged[@]} -gt 0 ]] || { log "no packaged libtensorflow-lite.so in $L"; exit 1; }
so=$(basename "$(printf '%s\n' "${packaged[@]}" | sort -V | tail -n1)")
install -m 0644 "$root/build/out/$built" "$L/$so"
ln -sf "$so" "$L/libtensorflowlite_c.so"
install -D -m 0644 "$root$src/tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h" \
  "$root/usr/include/tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h"

{
  echo "$key"
  in_chroot dpkg-query -W -f='${Package} ${Version}\n' libxnnpack0.20241108 libtensorflow-lite-dev libc6 2>/dev/null || true
  echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s"
} >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
log "ready: $root ($((SECONDS - start)) s)"
echo "$root"
