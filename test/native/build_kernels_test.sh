#!/usr/bin/env bash
# Builds the kernel test program (test/native/kernels_test.cpp and its checks in test/native/kernels/).
#   test/native/build_kernels_test.sh            -> build/test/kernels_test (ASan+UBSan, -O1 -g)
#   test/native/build_kernels_test.sh --plain    -> build/test/kernels_test_plain (-O1 -g, no sanitizers; for valgrind)
#   test/native/build_kernels_test.sh --release  -> build/test/kernels_test_release (-O3; for --bench numbers)
# Run: build/test/kernels_test [--seed=N]; build/test/kernels_test_release --bench;
#      MOE_UNDER_VALGRIND=1 valgrind --error-exitcode=9 build/test/kernels_test_plain
# Every build uses -ffp-contract=off as binding.gyp does: g++ contracts a * b + c into an FMA in C++ by
# default, which changes scalar tails in the SIMD files and breaks their bit-exact checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/test
SRCS=(native/kernels/*.cpp native/core/dtype.cpp native/core/common.cpp native/core/bandwidth.cpp test/native/kernels_test.cpp test/native/kernels/*.cpp)
case "${1:-}" in
  "")
    g++ -std=c++17 -pthread -ffp-contract=off -Inative -O1 -g -Wall -Wextra -fsanitize=address,undefined -fno-omit-frame-pointer "${SRCS[@]}" -o build/test/kernels_test
    echo "built build/test/kernels_test" ;;
  --plain)
    g++ -std=c++17 -pthread -ffp-contract=off -Inative -O1 -g -Wall -Wextra "${SRCS[@]}" -o build/test/kernels_test_plain
    echo "built build/test/kernels_test_plain" ;;
  --release)
    g++ -std=c++17 -pthread -ffp-contract=off -Inative -O3 -Wall -Wextra "${SRCS[@]}" -o build/test/kernels_test_release
    echo "built build/test/kernels_test_release" ;;
  *) echo "usage: $0 [--plain|--release]" >&2; exit 2 ;;
esac
