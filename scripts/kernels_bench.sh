#!/usr/bin/env bash
# Builds scripts/kernels_bench.cpp with the addon's flags (-O3, baseline x86-64: each kernel file
# enables its own ISA) into build/bench/kernels_bench and runs it; arguments go to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
g++ -std=c++17 -Inative -O3 -Wall -Wextra -pthread native/kernels/*.cpp native/core/dtype.cpp native/core/common.cpp \
  scripts/kernels_bench.cpp -o build/bench/kernels_bench
exec build/bench/kernels_bench "$@"
