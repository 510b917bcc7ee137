#!/bin/sh
# Compiles one of the project's native kernels: build.sh SOURCE OUTPUT JAVA_HOME.
# Sources may include the headers next to this script (tg_pool.h).
# Never fails the build: without a C compiler, or off Linux x86-64, it says so and writes nothing
# (the kernel's libtorch twin then runs instead).
src="$1"; out="$2"; jhome="$3"
here="$(cd "$(dirname "$0")" && pwd)"
name="$(basename "$out")"
rm -f "$out"
if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  echo "[native] $name not built: Linux x86-64 only ($(uname -s) $(uname -m))"; exit 0
fi
cc="${CC:-cc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "[native] $name not built: no C compiler ($cc)"; exit 0
fi
inc="$jhome/include"
[ -f "$inc/jni.h" ] || inc="$jhome/../include"
if [ ! -f "$inc/jni.h" ]; then
  echo "[native] $name not built: no jni.h under $jhome"; exit 0
fi
mkdir -p "$(dirname "$out")"
if ! "$cc" -O3 -mavx2 -mfma -mf16c -fPIC -shared -pthread -Wall -I"$here" -I"$inc" -I"$inc/linux" "$src" -o "$out.tmp" -lmvec -lm; then
  rm -f "$out.tmp"
  echo "[native] $name not built: $cc failed"; exit 0
fi
mv "$out.tmp" "$out"
