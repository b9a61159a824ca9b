#!/usr/bin/env bash
# GPU verification of the native library, for a machine with an NVIDIA GPU, nvcc and CMake (no
# Node needed): builds native/ with the CUDA backend, runs ctest (the CUDA-vs-CPU comparisons
# must pass, not skip), compute-sanitizer memcheck and racecheck on the CUDA tests, and the C++
# benchmark at the issue's sizes against the 2-thread CPU path. Output goes to ${OUT:-build/gpu}.
#   bash scripts/verify-gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build/gpu}"
mkdir -p "$out"
build=build/native-gpu
nvidia-smi | tee "$out/nvidia-smi.txt"
cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DNFP_CUDA=ON -DNFP_BUILD_TESTS=ON -DNFP_BUILD_BENCH=ON \
  2>&1 | tee "$out/configure.txt"
cmake --build "$build" --parallel "$(nproc)" 2>&1 | tee "$out/build.txt"
# Exit code 77 from test_cuda means "skipped": on a GPU machine that is a failure.
"$build/tests/test_cuda" 2>&1 | tee "$out/test_cuda.txt"
ctest --test-dir "$build" --output-on-failure 2>&1 | tee "$out/ctest.txt"
if command -v compute-sanitizer > /dev/null; then
  compute-sanitizer --tool memcheck --leak-check full --error-exitcode 1 "$build/tests/test_cuda" 2>&1 | tee "$out/memcheck.txt"
  compute-sanitizer --tool racecheck --error-exitcode 1 "$build/tests/test_cuda" 2>&1 | tee "$out/racecheck.txt"
else
  echo "compute-sanitizer not found" | tee "$out/memcheck.txt"
fi
for threads in 2 0; do
  "$build/bench/bench_kernels" --threads "$threads" | tee -a "$out/bench.jsonl"
done
