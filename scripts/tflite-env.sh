#!/usr/bin/env bash
# tflite-env.sh ARCH
#
# Prints the cgo environment (as Makefile assignments) that links edgeinfer
# against TensorFlow Lite's C library:
#   - the system's library when one is installed (header
#     tensorflow/lite/c/c_api.h plus libtensorflowlite_c.so or Debian's
#     libtensorflow-lite.so), as on a board with the package installed;
#   - otherwise the fast engine: TensorFlow Lite with XNNPACK, built from
#     Debian's sources by tflite-xnnpack.sh in a sid chroot that serves as
#     the sysroot (cached under ~/.cache/edgeinfer; built when missing if
#     this runs as root with debootstrap installed);
#   - otherwise a private sysroot holding sid's prebuilt library (without
#     XNNPACK), made by tflite-sysroot.sh.
# Either way libjpeg-turbo's TurboJPEG (turbojpeg.h, -lturbojpeg) comes from
# the same place: the system's libturbojpeg0-dev, or the sysroot.
# EDGEINFER_TFLITE=system, =xnnpack or =prebuilt forces one (sysroot is an
# old name for prebuilt).
set -euo pipefail
arch=${1:-amd64}
here=$(cd "$(dirname "$0")/.." && pwd)
mode=${EDGEINFER_TFLITE:-auto}

case $arch in
  amd64) triplet=x86_64-linux-gnu; loader=ld-linux-x86-64.so.2; cc=gcc ;;
  arm64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1; cc=aarch64-linux-gnu-gcc ;;
  armhf) triplet=arm-linux-gnueabihf; loader=ld-linux-armhf.so.3; cc=arm-linux-gnueabihf-gcc ;;
  *) echo "tflite-env: unknown architecture $arch" >&2; exit 2 ;;
esac
host=$(dpkg --print-architecture 2>/dev/null || echo amd64)

system_lib() {
  [[ $arch == "$host" && -f /usr/include/tensorflow/lite/c/c_api.h ]] || return 1
  local d
  for d in /usr/lib/$triplet /usr/local/lib /usr/lib; do
    if [[ -e $d/libtensorflowlite_c.so ]]; then echo "$d"; return 0; fi
    if [[ -e $d/libtensorflow-lite.so ]]; then echo "link:$d/libtensorflow-lite.so"; return 0; fi
  done
  return 1
}

[[ $mode == sysroot ]] && mode=prebuilt
case $mode in auto|system|xnnpack|prebuilt) ;; *)
  echo "tflite-env: EDGEINFER_TFLITE=$mode: want auto, system, xnnpack or prebuilt" >&2; exit 2 ;;
esac

if [[ $mode == auto || $mode == system ]] && sys=$(system_lib); then
  # edge/jpegturbo links libjpeg-turbo's TurboJPEG from the same place.
  if [[ ! -f /usr/include/turbojpeg.h ]]; then
    echo "tflite-env: system TensorFlow Lite found, but not turbojpeg.h: install libturbojpeg0-dev (or set EDGEINFER_TFLITE=sysroot)" >&2
    exit 1
  fi
  if [[ $sys == link:* ]]; then
    # Debian's package names the library libtensorflow-lite.so; go-tflite
    # links -ltensorflowlite_c. A private link name bridges the two.
    links=$here/.deps/system-links
    mkdir -p "$links"
    ln -sf "${sys#link:}" "$links/libtensorflowlite_c.so"
    echo "TFLITE_KIND := system"
    echo "TFLITE_ENV := CGO_ENABLED=1 CGO_LDFLAGS=\"-L$links\""
  else
    echo "TFLITE_KIND := system"
    echo "TFLITE_ENV := CGO_ENABLED=1"
  fi
  exit 0
fi
if [[ $mode == system ]]; then
  echo "tflite-env: EDGEINFER_TFLITE=system but no system TensorFlow Lite C library found" >&2
  exit 1
fi

kind=prebuilt
if [[ $mode == auto || $mode == xnnpack ]]; then
  rc=0
  R=$("$here/scripts/tflite-xnnpack.sh" "$arch") || rc=$?
  # tflite-xnnpack.sh exits 3 when it cannot build here (not root, no
  # debootstrap), anything else non-zero when a build failed.
  case $rc in
    0) kind=xnnpack ;;
    *) if [[ $mode == xnnpack ]]; then
         echo "tflite-env: EDGEINFER_TFLITE=xnnpack but the XNNPACK engine is not there (see above)" >&2
         exit 1
       fi
       if [[ $rc == 3 ]]; then
         echo "tflite-env: the fast engine (XNNPACK) is not available; using Debian's prebuilt TensorFlow Lite (about 3x slower, see make bench). Run 'make engine' as root with debootstrap installed to build it." >&2
       else
         echo "tflite-env: building the fast engine (XNNPACK) FAILED (see above and its logs); using Debian's prebuilt TensorFlow Lite for now (about 3x slower). Fix the cause and run 'make engine'." >&2
       fi ;;
  esac
fi
if [[ $kind == prebuilt ]]; then
  R=$here/.deps/sysroot-$arch
  "$here/scripts/tflite-sysroot.sh" "$arch" "$R"
fi
L=$R/usr/lib/$triplet
# The compiler as one executable: go test -asan runs "$CC --version", which
# a command with arguments defeats.
wrapper=$here/.deps/cc-$arch-$kind
mkdir -p "$here/.deps"
printf '#!/bin/sh\n# Written by scripts/tflite-env.sh: %s against the %s sysroot.\nexec %q --sysroot=%q -B%q "$@"\n' \
  "$cc" "$kind" "$cc" "$R" "$L" >"$wrapper.tmp"
chmod +x "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
echo "TFLITE_KIND := $kind $R"
# External linking for every binary, tests of pure-Go packages included:
# Go's internal linker would pair the sysroot-compiled runtime/cgo (sid's
# glibc) with the host's dynamic linker and glibc, which aborts with
# "stack smashing detected" (seen with -race and with go-built tools).
echo "TFLITE_ENV := GOFLAGS=-ldflags=-linkmode=external CGO_ENABLED=1 GOARCH=$( [[ $arch == armhf ]] && echo arm GOARM=7 || echo "${arch}") CC=$wrapper CGO_LDFLAGS=\"-L$L -Wl,--disable-new-dtags -Wl,-rpath,$L -Wl,--dynamic-linker=$L/$loader\""
