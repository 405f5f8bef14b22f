#!/usr/bin/env bash
# Checks the wgpu backend on a real GPU. It runs the kernel conformance
# suite and the wgpu backend tests on the GPU, then the kernel benchmark
# (4096^3 fp32 matmul, the memory-bound kernels and the device copy
# bandwidth), and writes the benchmark table to a file.
#
# Usage: scripts/gpu-check.sh [--build-only] [--out FILE]
#
#   --build-only  build the test and benchmark binaries into
#                 target-gpu-check/bin and stop, for a machine with a GPU
#                 but without network access or a Rust toolchain: copy the
#                 repository with that folder there and run this script.
#   --out FILE    where the benchmark table goes
#                 (default: gpu-check.md in the build folder).
#
# Environment: DEVICE (default `gpu`; `software` checks the script on
# lavapipe, or give an adapter name substring), KERNEL_BENCH_FILTER (time
# only ops whose name contains it), CARGO_TARGET_DIR (build folder instead
# of target-gpu-check).
#
# Needs no network: with a Rust toolchain it builds with `cargo --offline`,
# so the crates must already be in cargo's cache (run `cargo fetch` once
# where there is network); without one it runs the binaries that
# --build-only left in target-gpu-check/bin. The binaries load the Vulkan
# loader (libvulkan.so.1) and the GPU's Vulkan driver at run time.
#
# Time: the checks take well under a minute on a discrete GPU and the
# benchmark one to three minutes; each step has a time limit so that the
# whole script ends within 8 minutes even when a step hangs.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-target-gpu-check}"
bin_dir="$target_dir/bin"
out="$target_dir/gpu-check.md"
build_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=true ;;
    --out) out="$2"; shift ;;
    *) echo "gpu-check: unknown argument '$1'; usage: $0 [--build-only] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
device="${DEVICE:-gpu}"

# Prints the executables of a `cargo ... --no-run --message-format=json` run.
executables() {
  grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/'
}

build() {
  echo "gpu-check: building release test and benchmark binaries (cargo --offline)"
  mkdir -p "$bin_dir"
  local tests bench
  tests=$(CARGO_TARGET_DIR="$target_dir" timeout 1200 cargo test --offline --release \
    -p flywheel-kernels --test conformance_wgpu --test wgpu_backend \
    --no-run --message-format=json | executables)
  bench=$(CARGO_TARGET_DIR="$target_dir" timeout 1200 cargo bench --offline \
    -p flywheel-kernels --bench kernels --no-run --message-format=json | executables)
  for path in $tests $bench; do
    # Drop cargo's hash suffix: conformance_wgpu-0123abcd -> conformance_wgpu.
    cp "$path" "$bin_dir/$(basename "$path" | sed 's/-[0-9a-f]*$//')"
  done
  ls "$bin_dir"
}

if [ "$build_only" = true ]; then
  build
  exit 0
fi
if command -v cargo >/dev/null 2>&1; then
  build
elif [ ! -x "$bin_dir/conformance_wgpu" ]; then
  echo "gpu-check: no cargo on PATH and no prebuilt binaries in $bin_dir;" \
       "install a Rust toolchain or run '$0 --build-only' on another machine and copy $bin_dir here" >&2
  exit 1
fi

if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  echo "gpu-check: the Vulkan loader libvulkan.so.1 is missing;" \
       "install it (Debian/Ubuntu: apt-get install libvulkan1) along with the GPU's Vulkan driver" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
start=$(date +%s)
# CI=true turns a missing adapter into a failure instead of a skip.
echo "gpu-check: conformance suite and wgpu backend tests on device '$device'"
for test in conformance_wgpu wgpu_backend; do
  FLYWHEEL_TEST_DEVICE="$device" CI=true timeout 150 "$bin_dir/$test" --test-threads=2
done

echo "gpu-check: kernel benchmark on device '$device' (table in $out)"
{
  echo "Command: scripts/gpu-check.sh (kernels bench --device $device${KERNEL_BENCH_FILTER:+, KERNEL_BENCH_FILTER=$KERNEL_BENCH_FILTER}), $(date -u +%Y-%m-%d)"
  echo "Host: $(uname -srm), $(nproc) CPUs"
  echo
  timeout 300 "$bin_dir/kernels" --device "$device" --bench
} | tee "$out"
echo "gpu-check: done in $(( $(date +%s) - start )) s after the build; table in $out"
