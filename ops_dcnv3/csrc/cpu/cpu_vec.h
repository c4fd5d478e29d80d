// What the CPU kernels share: GCC vector types with unaligned loads and stores, and the choice
// of the kernel version (x86-64 level) this machine runs.
#pragma once

#include <cstdint>
#include <type_traits>

// The entry points are compiled for AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and baseline x86-64,
// each with its own vector width, and picked at run time. DCNV3_NO_CLONES compiles one version
// for the -march given (development builds: a third of the build time; use -march=x86-64-v4 to
// time the AVX-512 version).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(DCNV3_NO_CLONES)
#define DCNV3_X86_VERSIONS 1
#define DCNV3_X86_V4 __attribute__((target("arch=x86-64-v4")))
#define DCNV3_X86_V3 __attribute__((target("arch=x86-64-v3")))
#endif
#define DCNV3_INLINE inline __attribute__((always_inline))

namespace dcnv3 {

#ifndef DCNV3_X86_VERSIONS
// One version, for the compiler's target: its vector width in bytes.
#if defined(__AVX512F__)
constexpr int kNativeVecBytes = 64;
#elif defined(__AVX__)
constexpr int kNativeVecBytes = 32;
#else
constexpr int kNativeVecBytes = 16;
#endif
#endif

// The kernel version this machine runs: 4 (x86-64-v4), 3 (x86-64-v3) or 1 (baseline x86-64),
// the highest the CPU supports unless DCNV3_CPU_ISA names a lower one (tests run every
// version); 0 in a one-version build. Raises (TORCH_CHECK) for a bad DCNV3_CPU_ISA.
int cpu_x86_level();

// Every kernel version of an entry point: DEFINE(SUFFIX, TARGET, VEC_BYTES) once per version
// (SUFFIX v4, v3, base; or `one` in a one-version build), and DCNV3_THIS_VERSION(NAME) the
// address of NAME_<SUFFIX> for the version this machine runs.
#ifdef DCNV3_X86_VERSIONS
#define DCNV3_FOR_EACH_VERSION(DEFINE) \
  DEFINE(v4, DCNV3_X86_V4, 64) DEFINE(v3, DCNV3_X86_V3, 32) DEFINE(base, , 16)
#define DCNV3_THIS_VERSION(NAME)                             \
  (::dcnv3::cpu_x86_level() == 4   ? &NAME##_v4              \
   : ::dcnv3::cpu_x86_level() == 3 ? &NAME##_v3              \
                                   : &NAME##_base)
#else
#define DCNV3_FOR_EACH_VERSION(DEFINE) DEFINE(one, , ::dcnv3::kNativeVecBytes)
#define DCNV3_THIS_VERSION(NAME) (&NAME##_one)
#endif

// A GC-wide vector of T (GCC vector extension) and unaligned load/store of one.
template <typename T, int GC>
struct Vec {
  typedef T type __attribute__((vector_size(GC * sizeof(T))));
};
// The integer vector of T's lane width: what a compare of two Vec<T, L> gives (a lane mask) and
// what a shuffle of them takes as indices.
template <typename T, int L>
using LaneMask = typename Vec<std::conditional_t<sizeof(T) == 4, int32_t, int64_t>, L>::type;
template <typename V, typename T>
DCNV3_INLINE V load(const T* ptr) {
  V v;
  __builtin_memcpy(&v, ptr, sizeof(V));
  return v;
}
template <typename V, typename T>
DCNV3_INLINE void store(T* ptr, const V& v) {
  __builtin_memcpy(ptr, &v, sizeof(V));
}

}  // namespace dcnv3
