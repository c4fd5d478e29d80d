// What the CPU kernels share: GCC vector types with unaligned loads and stores, lane shuffles
// and four-way horizontal sums, and the choice of the kernel version (x86-64 level) this
// machine runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

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

// The halves of the L lanes of v (L even), and a and b as one vector of twice their lanes.
template <int kHalf, typename V, size_t... I>
DCNV3_INLINE auto half_lanes(const V& v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (I + kHalf * sizeof...(I))...);
}
template <typename V, size_t... I>
DCNV3_INLINE auto concat_lanes(const V& a, const V& b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, I...);
}

// The four sums {sum(a), sum(b), sum(c), sum(d)} of W-wide vectors (W a multiple of 4),
// stored to out[0..3]: one transposing shuffle-add tree within each block of four lanes (in-lane
// shuffles: AVX2's and AVX-512's lane-crossing permutes cost 3 cycles) leaves, per block, the
// block's four partial sums of a, b, c and d; the blocks are then folded by halves, ending in
// one 4-wide store (lane-by-lane sums would take W - 1 scalar extracts and adds per vector;
// folding each vector to 8 lanes first took 5 more instructions at W = 16).
template <typename T, int W>
struct Sum4 {
  using V = typename Vec<T, W>::type;
  // ab = [a0+a2, b0+b2, a1+a3, b1+b3] per block of four (index >= W: the second vector's)
  static constexpr int pair_index(int j, int shift) {
    return (j % 4 % 2 ? W : 0) + j / 4 * 4 + j % 4 / 2 + shift;
  }
  // x = [sum(a), sum(b), sum(c), sum(d)] of each block, from ab and cd
  static constexpr int quad_index(int j, int shift) {
    return (j % 4 >= 2 ? W : 0) + j / 4 * 4 + j % 2 + shift;
  }
  template <size_t... J>
  static DCNV3_INLINE V pairs(const V& a, const V& b, std::index_sequence<J...>) {
    return __builtin_shufflevector(a, b, pair_index(J, 0)...) +
           __builtin_shufflevector(a, b, pair_index(J, 2)...);
  }
  template <size_t... J>
  static DCNV3_INLINE V quads(const V& ab, const V& cd, std::index_sequence<J...>) {
    return __builtin_shufflevector(ab, cd, quad_index(J, 0)...) +
           __builtin_shufflevector(ab, cd, quad_index(J, 2)...);
  }
  // the sum of the two halves of an N-lane vector, down to 4 lanes
  template <int N>
  static DCNV3_INLINE typename Vec<T, 4>::type fold(const typename Vec<T, N>::type& x) {
    if constexpr (N == 4) {
      return x;
    } else {
      constexpr auto lanes = std::make_index_sequence<N / 2>();
      return fold<N / 2>(half_lanes<0>(x, lanes) + half_lanes<1>(x, lanes));
    }
  }
  static DCNV3_INLINE void run(const V& a, const V& b, const V& c, const V& d, T out[4]) {
    constexpr auto lanes = std::make_index_sequence<W>();
    store(out, fold<W>(quads(pairs(a, b, lanes), pairs(c, d, lanes), lanes)));
  }
};

// 2 lanes (double on baseline x86-64): two 2-wide sums.
template <typename T>
struct Sum4<T, 2> {
  using V = typename Vec<T, 2>::type;
  static DCNV3_INLINE void run(const V& a, const V& b, const V& c, const V& d, T out[4]) {
    store(out, __builtin_shufflevector(a, b, 0, 2) + __builtin_shufflevector(a, b, 1, 3));
    store(out + 2, __builtin_shufflevector(c, d, 0, 2) + __builtin_shufflevector(c, d, 1, 3));
  }
};

}  // namespace dcnv3
