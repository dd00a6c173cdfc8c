#pragma once
// A compile-time notice when grokalign is compiled for x86-64 without AVX2 and FMA. Eigen
// then vectorises with SSE2 only, and a training step of the paper's MLP runs 2-2.7x
// slower than with AVX2+FMA or AVX-512 (docs/performance.md); nothing else would tell. Printed
// once per translation unit (this header is included once, by core/tensor.hpp).
// Define GROKALIGN_NO_ARCH_NOTICE to silence it, e.g. when building for older CPUs on
// purpose.
#if !defined(GROKALIGN_NO_ARCH_NOTICE) && (defined(__x86_64__) || defined(_M_X64)) && \
    !(defined(__AVX2__) && (defined(__FMA__) || defined(_MSC_VER)))
#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#pragma message(                                                                                 \
    "grokalign: compiled without AVX2/FMA, so Eigen uses SSE2 and training runs 2-2.7x slower. " \
    "Link grokalign::native in CMake (or compile with -march=native, or -march=x86-64-v3); "     \
    "define GROKALIGN_NO_ARCH_NOTICE to silence this.")
#endif
#endif
