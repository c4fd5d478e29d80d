// DCNv3 CPU kernels (float32, float64): forward and backward, multi-threaded with
// at::parallel_for.
//
// Per output pixel the work is split in two passes:
//  1. setup: sampling location, bilinear weights and clamped corner positions of all G*P points,
//     a branch-free loop (dcnv3_math.h) that the compiler vectorises across points;
//  2. gather: per group, the four corner rows of every point are combined into the group's
//     channels (channels-last, contiguous), with the channel count a compile-time constant for
//     the common group widths so the accumulator stays in vector registers.
// The entry points are compiled for AVX-512 (x86-64-v4), AVX2 (x86-64-v3) and baseline x86-64,
// each with its own vector width, and picked at run time, so one wheel is fast on every x86-64
// machine.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "../dcnv3.h"
#include "cpu_vec.h"

namespace dcnv3 {
namespace {

// Work per parallel chunk that amortises thread start-up (in multiply-adds).
constexpr int64_t kGrainWork = 32768;
// Table entries (sampling points) set up together: small enough for the tables to stay in L1
// (1024 was ~5% slower in the forward at InternImage-T stage 1, the same in the backward).
constexpr int kRunEntries = 256;
// A point table's corner offsets and weights are one array each, corner c at
// [c * kTableEntries + k]: with a compile-time stride the per-point loops address
// all four corners from one pointer (with one pointer per corner the forward's loop ran out
// of registers), and the backward reads the arrays the setup wrote. 4 KB + 64 B, not 4 KB:
// arrays a multiple of 4 KB apart share L1 sets (the forward took 1.07x the time).
constexpr int kTableEntries = 1040;
// Lanes of the widest vector a kernel version uses (16 floats, AVX-512).
constexpr int kMaxLanes = 16;
// Entries a point table holds: the setup writes whole vectors, up to kMaxLanes - 1 lanes past
// the last entry, which must not reach the next corner's array.
constexpr int kTableCapacity = kTableEntries - kMaxLanes;

// The lanes of parity kParity (0: even, 1: odd) of the 2L values a, b: x[k] = src[2k + kParity]
// for src = a, b (two shuffles on AVX2; the compiler's own code for a stride-2 load is element
// by element, and so is its code for a shuffle of vectors wider than the instruction set's).
template <typename T, int L, int kParity>
DCNV3_INLINE typename Vec<T, L>::type deinterleave_lanes(const typename Vec<T, L>::type& a,
                                                         const typename Vec<T, L>::type& b) {
  using I = LaneMask<T, L>;
  I index;
  for (int i = 0; i < L; ++i) index[i] = 2 * i + kParity;
  return __builtin_shuffle(a, b, index);
}

// x[k] = src[2k], y[k] = src[2k + 1], one native vector (kVecBytes) of each at a time.
template <typename T, int kVecBytes>
DCNV3_INLINE void deinterleave(const T* __restrict src, T* __restrict x, T* __restrict y, int n) {
  constexpr int L = kVecBytes / sizeof(T);
  using V = typename Vec<T, L>::type;
  int k = 0;
  for (; k + L <= n; k += L) {
    const V a = load<V>(src + 2 * k);
    const V b = load<V>(src + 2 * k + L);
    store(x + k, deinterleave_lanes<T, L, 0>(a, b));
    store(y + k, deinterleave_lanes<T, L, 1>(a, b));
  }
  for (; k < n; ++k) {
    x[k] = src[2 * k];
    y[k] = src[2 * k + 1];
  }
}

// dst[2k] = x[k], dst[2k + 1] = y[k] (the inverse of deinterleave).
template <typename T, int kVecBytes>
DCNV3_INLINE void interleave(const T* __restrict x, const T* __restrict y, T* __restrict dst,
                             int n) {
  constexpr int L = kVecBytes / sizeof(T);
  using V = typename Vec<T, L>::type;
  using I = LaneMask<T, L>;
  I lo, hi;
  for (int i = 0; i < L; ++i) {
    lo[i] = (i % 2 ? L : 0) + i / 2;
    hi[i] = (i % 2 ? L : 0) + L / 2 + i / 2;
  }
  int k = 0;
  for (; k + L <= n; k += L) {
    const V a = load<V>(x + k);
    const V b = load<V>(y + k);
    store(dst + 2 * k, __builtin_shuffle(a, b, lo));
    store(dst + 2 * k + L, __builtin_shuffle(a, b, hi));
  }
  for (; k < n; ++k) {
    dst[2 * k] = x[k];
    dst[2 * k + 1] = y[k];
  }
}

// Pixels per run in the forward: about 96 table entries, at least two pixels. Measured on a
// 2-core AVX2 EPYC (one thread, forward time against runs of up to 256 entries): InternImage-T
// stage 1 (36 entries a pixel) 0.90x with two pixels a run instead of seven, every other
// stage shape of InternImage-T and -H within 1% (one pixel a run at H stage 1 was 1.03x).
DCNV3_INLINE int forward_run_pixels(const Params& p) {
  return std::max(2, 96 / (p.group * p.num_points));
}

// Table of the sampling points of a run of pixels, up to `groups` groups each (all groups in
// the forward, a block of groups in the owner-mode backward; fewer where they would not fit
// kTableCapacity, the callers then taking the groups in blocks), one array per field and
// corner so the setup loop stores with unit stride.
template <typename T>
struct PointTable {
  int groups, points;
  int run;  // pixels per run
  // Per entry k of a run of `grid_groups` groups a pixel: the point's regular-grid
  // displacement, and the column step (pixel index in the run times stride_w), so the setup
  // computes each entry's base, float(centre) + grid, without a pass that stores it.
  std::vector<T> grid_h, grid_w;
  std::vector<int32_t> column_step;
  int grid_groups = 0;
  std::vector<T> off_w, off_h;    // offsets (dx, dy) de-interleaved into unit-stride arrays
  std::vector<T> msk;             // masks gathered per pixel, or their softmax from logits
  // at [c * kTableEntries + k] for corner c (00, 01, 10, 11) of entry k:
  std::vector<int32_t> corner;  // element offset (y * W + x) * C of the clamped corner
  std::vector<T> weight;        // corner weight times the mask
  std::vector<T> ly, lx, mask;     // fractional parts and mask (backward)
  // 0 outside; inside, 1 in the forward (all its gather needs) and in the backward 1 + the
  // valid corners as bits (1: 00, 2: 01, 4: 10, 8: 11), so 16 when all four corners lie in
  // the image (most points)
  std::vector<T> inside;
  std::vector<T> dot;  // backward: <grad_out, corner c> at [4 * entry + c] (0 if outside)
  std::vector<T> gmask, goff_w, goff_h;  // backward: gradients per entry before scattering

  // run_: pixels per run (0: as many as fit kRunEntries, at least one); at most as many as
  // fit kTableCapacity (check_cpu_limits: one group's points always do)
  PointTable(const Params& p, int groups_, int run_ = 0)
      : groups(std::min(groups_, kTableCapacity / p.num_points)), points(p.num_points),
        run(std::min(run_ > 0 ? run_ : std::max(1, kRunEntries / (groups * points)),
                     kTableCapacity / (groups * points))) {
    const int k = run * groups * points;
    for (auto* v : {&gmask, &goff_w, &goff_h}) v->resize(k);
    // the setup reads and writes whole vectors, up to kMaxLanes - 1 entries past the run
    for (auto* v : {&grid_h, &grid_w, &off_w, &off_h, &msk, &ly, &lx, &mask, &inside})
      v->resize(k + kMaxLanes);
    column_step.resize(k + kMaxLanes);
    dot.resize(4 * k);
    corner.resize(4 * kTableEntries);
    weight.resize(4 * kTableEntries);
  }

  // grid_h, grid_w and column_step for runs of `ng` groups a pixel (rebuilt only when a block
  // of groups has another size than the last).
  void set_grid(const Params& p, int ng) {
    if (ng == grid_groups) return;
    grid_groups = ng;
    const int e = ng * points;
    for (int k = 0; k < run * e; ++k) {
      int i, j;
      point_ij(p, k % points, &i, &j);
      grid_h[k] = grid_dh<T>(p, j);
      grid_w[k] = grid_dw<T>(p, i);
      column_step[k] = (k / e) * p.stride_w;
    }
  }
};

// x > y ? a : 0 and the like, lane by lane: the bits of x where the lane mask m is set.
template <typename V, typename M>
DCNV3_INLINE V select_lanes(const M& m, const V& x) {
  M bits;
  __builtin_memcpy(&bits, &x, sizeof(x));
  bits &= m;
  V r;
  __builtin_memcpy(&r, &bits, sizeof(r));
  return r;
}

// floor(x) lane by lane, for |x| < 2^31. With AVX (kVecBytes >= 32) the compiler turns the
// per-lane floor into one rounding instruction; baseline x86-64 has none (a library call per
// lane), so there it is truncation, minus one where that rounded up.
template <typename T, int L, int kVecBytes>
DCNV3_INLINE typename Vec<T, L>::type floor_lanes(const typename Vec<T, L>::type& x) {
  using V = typename Vec<T, L>::type;
  V r;
  if constexpr (kVecBytes >= 32) {
    for (int i = 0; i < L; ++i) r[i] = floor_(x[i]);
  } else {
    using I = LaneMask<T, L>;
    const V t = __builtin_convertvector(__builtin_convertvector(x, I), V);
    r = t - select_lanes(t > x, V{} + T(1));
  }
  return r;
}

// Lanes where -1 < h < height and -1 < w < width (0 where h or w is NaN): a point's support,
// as Bilinear's `inside`. Vectors wider than 32 bytes are compared by halves: GCC parses these
// templates for baseline x86-64, and a compare of 64-byte vectors parsed there is done lane by
// lane in the AVX-512 version (~10x the time).
template <typename T, int L>
DCNV3_INLINE LaneMask<T, L> support_lanes(const typename Vec<T, L>::type& h,
                                          const typename Vec<T, L>::type& w, T height, T width) {
  if constexpr (L * sizeof(T) > 32) {
    constexpr auto lanes = std::make_index_sequence<L / 2>();
    return concat_lanes(support_lanes<T, L / 2>(half_lanes<0>(h, lanes), half_lanes<0>(w, lanes),
                                                height, width),
                        support_lanes<T, L / 2>(half_lanes<1>(h, lanes), half_lanes<1>(w, lanes),
                                                height, width),
                        std::make_index_sequence<L>());
  } else {
    return (h > T(-1)) & (w > T(-1)) & (h < height) & (w < width);
  }
}

// The setup's arithmetic for L entries at once (GCC vector extension: the compiler's own
// vectorisation of the scalar loop spilled to the stack and took ~1.5x the instructions):
// Bilinear's rule with validity as lane masks, the support tested by float compares and the
// rest from the sign bits of integers (64-byte vectors have no compares here: see
// support_lanes). Locations (h, w) and masks m in; out, the entries' corner offsets and weights
// (corner c at [c * kTableEntries]), flag and (backward) fractional parts and mask.
template <typename T, int L, int kVecBytes, bool kBackward>
struct SetupLanes {
  using V = typename Vec<T, L>::type;
  using M = LaneMask<T, L>;
  using I = typename Vec<int32_t, L>::type;
  T height, width;
  I row_elems, pixel_elems, max_y, max_x;  // W * C, C, H - 1, W - 1

  DCNV3_INLINE explicit SetupLanes(const Params& p)
      : height(T(p.height_in)), width(T(p.width_in)),
        row_elems(I{} + p.width_in * p.channels()), pixel_elems(I{} + p.channels()),
        max_y(I{} + (p.height_in - 1)), max_x(I{} + (p.width_in - 1)) {}

  // an int32 lane mask as a mask of T's lanes
  static DCNV3_INLINE M widen(const I& x) {
    if constexpr (sizeof(T) == 4) {
      return x;
    } else {
      return __builtin_convertvector(x, M);
    }
  }

  DCNV3_INLINE void run(V h, V w, const V& m, int32_t* __restrict corner, T* __restrict weight,
                        T* __restrict flag, T* __restrict ly, T* __restrict lx,
                        T* __restrict mk) const {
    const V one = V{} + T(1);
    const M in = support_lanes<T, L>(h, w, height, width);
    // Outside points are moved to (0, 0) so every later computation stays finite and in range.
    h = select_lanes(in, h);
    w = select_lanes(in, w);
    const V fy = floor_lanes<T, L, kVecBytes>(h), fx = floor_lanes<T, L, kVecBytes>(w);
    const V fly = h - fy, flx = w - fx;
    // y0 in [-1, H - 1], x0 in [-1, W - 1]: the validity of the rows y0, y0 + 1 and of the
    // columns x0, x0 + 1 is a sign bit, and the clamped corner max(y0, 0) is y0 & valid(y0).
    const I y0 = __builtin_convertvector(fy, I), x0 = __builtin_convertvector(fx, I);
    const I iy0 = ~(y0 >> 31), iy1 = (y0 - max_y) >> 31;
    const I ix0 = ~(x0 >> 31), ix1 = (x0 - max_x) >> 31;
    const I r0 = (y0 & iy0) * row_elems, c0 = (x0 & ix0) * pixel_elems;
    // the second row (column) is the first's neighbour unless one of the two is clamped
    const I r1 = r0 + (row_elems & iy0 & iy1), c1 = c0 + (pixel_elems & ix0 & ix1);
    store(corner, r0 + c0);
    store(corner + kTableEntries, r0 + c1);
    store(corner + 2 * kTableEntries, r1 + c0);
    store(corner + 3 * kTableEntries, r1 + c1);
    // validity of the rows (and of the point) and of the columns, as lane masks of T
    const M vy0 = widen(iy0) & in, vy1 = widen(iy1) & in, vx0 = widen(ix0), vx1 = widen(ix1);
    const V top = select_lanes(vy0, one - fly) * m, bottom = select_lanes(vy1, fly) * m;
    const V left = select_lanes(vx0, one - flx), right = select_lanes(vx1, flx);
    store(weight, top * left);
    store(weight + kTableEntries, top * right);
    store(weight + 2 * kTableEntries, bottom * left);
    store(weight + 3 * kTableEntries, bottom * right);
    if constexpr (kBackward) {
      const M bits = (vy0 & vx0 & 1) | (vy0 & vx1 & 2) | (vy1 & vx0 & 4) | (vy1 & vx1 & 8);
      store(flag, __builtin_convertvector((bits + 1) & in, V));
      store(ly, fly);
      store(lx, flx);
      store(mk, m);
    } else {
      store(flag, select_lanes(in, one));
    }
  }
};

// Pass 1 for the run of pixels [pix0, pix0 + npix), `ng * t.points` entries each, whose
// masks are contiguous at `mask` and interleaved (dx, dy) offsets at `offset` (nullptr: already
// de-interleaved into t.off_w / t.off_h). The run is taken in pieces that lie in one output
// row: there an entry's centre is the first pixel's plus its column step. Each piece is set up
// in whole vectors: the lanes past its end are set up too (and set up again by the next piece,
// or never read), reading up to kMaxLanes - 1 entries past the run's offsets and masks where
// `overread` says they are in memory, else (the last pixels of the tensor) through padded copies.
template <typename T, int kVecBytes, bool kBackward>
DCNV3_INLINE void setup_points(const Params& p, PointTable<T>& t, int64_t pix0, int npix, int ng,
                               const T* __restrict offset, const T* __restrict mask,
                               bool overread) {
  constexpr int L = kVecBytes / sizeof(T);
  using V = typename Vec<T, L>::type;
  using I = typename Vec<int32_t, L>::type;
  const SetupLanes<T, L, kVecBytes, kBackward> lanes(p);
  t.set_grid(p, ng);
  const V s = V{} + static_cast<T>(p.offset_scale);
  const int e = ng * t.points;
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  const T* __restrict gh = t.grid_h.data();
  const T* __restrict gw = t.grid_w.data();
  const int32_t* __restrict cs = t.column_step.data();
  if (offset == nullptr) overread = true;  // the table's own arrays, padded
  for (int l = 0; l < npix;) {
    const int64_t q = (pix0 + l) % plane;
    const int row = static_cast<int>(q / p.width_out), col = static_cast<int>(q % p.width_out);
    const int len = std::min(npix - l, p.width_out - col);  // pixels left in this row
    const V ch = V{} + static_cast<T>(centre_h(p, row));
    const I cw0 = I{} + (centre_w(p, col) - l * p.stride_w);
    // entries [k, k + L): (dx, dy) interleaved at `offs` (or de-interleaved in the table when
    // nullptr), masks at m
    auto entries = [&](int k, const T* offs, const T* m) __attribute__((always_inline)) {
      V dx, dy;
      if (offs != nullptr) {
        const V a = load<V>(offs), b = load<V>(offs + L);
        dx = deinterleave_lanes<T, L, 0>(a, b);
        dy = deinterleave_lanes<T, L, 1>(a, b);
      } else {
        dx = load<V>(t.off_w.data() + k);
        dy = load<V>(t.off_h.data() + k);
      }
      const V h = (ch + load<V>(gh + k)) + dy * s;
      const V w = (__builtin_convertvector(cw0 + load<I>(cs + k), V) + load<V>(gw + k)) + dx * s;
      lanes.run(h, w, load<V>(m), t.corner.data() + k, t.weight.data() + k, t.inside.data() + k,
                t.ly.data() + k, t.lx.data() + k, t.mask.data() + k);
    };
    const int k1 = (l + len) * e;
    int k = l * e;
    for (; k < k1 && (overread || k + L <= k1); k += L)
      entries(k, offset != nullptr ? offset + 2 * k : nullptr, mask + k);
    if (k < k1) {  // the last entries of the tensor (offset != nullptr here)
      T offs[2 * L] = {}, m[L] = {};
      std::copy_n(offset + 2 * k, 2 * (k1 - k), offs);
      std::copy_n(mask + k, k1 - k, m);
      entries(k, offs, m);
    }
    l += len;
  }
}

// Pass 2 of the forward for one group: out[c] = sum_k sum_corners w * x[corner, c] over the
// table entries [k0, k0 + points). GC > 0: compile-time group width (the accumulator lives in
// registers, vectors of kVecBytes); GC == 0: runtime width `gc`, accumulating in `out`.
template <typename T, int GC, int kVecBytes>
DCNV3_INLINE void gather_group(const T* __restrict image_g, const PointTable<T>& t, int k0,
                               int points, int gc, T* __restrict out) {
  const T* __restrict inside = t.inside.data();
  const int32_t* __restrict e = t.corner.data();
  const T* __restrict w = t.weight.data();
  constexpr int S = kTableEntries;
  if constexpr (GC > 0) {
    // The accumulator as NV vectors of the instruction set's width (GCC vector extension). A
    // wider vector type is no register type: as a loop-carried variable it lived on the stack
    // (the AVX2 forward at InternImage-T stage 1 took 2.1x the time).
    constexpr int L = std::min<int>(GC, kVecBytes / sizeof(T));
    constexpr int NV = GC / L;
    using V = typename Vec<T, L>::type;
    V acc[NV] = {};
    for (int k = k0; k < k0 + points; ++k) {
      if (inside[k] == T(0)) continue;
      const T *r0 = image_g + e[k], *r1 = image_g + e[S + k], *r2 = image_g + e[2 * S + k],
              *r3 = image_g + e[3 * S + k];
      const T a0 = w[k], a1 = w[S + k], a2 = w[2 * S + k], a3 = w[3 * S + k];
#pragma GCC unroll 16
      for (int j = 0; j < NV; ++j)
        acc[j] += a0 * load<V>(r0 + j * L) + a1 * load<V>(r1 + j * L) +
                  a2 * load<V>(r2 + j * L) + a3 * load<V>(r3 + j * L);
    }
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) store(out + j * L, acc[j]);
  } else {
    for (int c = 0; c < gc; ++c) out[c] = T(0);
    for (int k = k0; k < k0 + points; ++k) {
      if (inside[k] == T(0)) continue;
      const T *r0 = image_g + e[k], *r1 = image_g + e[S + k], *r2 = image_g + e[2 * S + k],
              *r3 = image_g + e[3 * S + k];
      const T a0 = w[k], a1 = w[S + k], a2 = w[2 * S + k], a3 = w[3 * S + k];
#pragma omp simd
      for (int c = 0; c < gc; ++c) out[c] += a0 * r0[c] + a1 * r1[c] + a2 * r2[c] + a3 * r3[c];
    }
  }
}

// exp of the L floats of x at once (GCC vector extension; L * 4 bytes at most the instruction
// set's width, and at most 32: see support_lanes), for x <= 80: x = n ln2 + r with
// n = trunc(x / ln2), |r| < ln2, exp(r) from its degree-9 Taylor polynomial (truncation error
// < 1e-8 relative), 2^n from the exponent bits. Below -87 (where float32's normal range ends)
// it returns 0, an absolute error < 2e-38.
template <int L>
DCNV3_INLINE typename Vec<float, L>::type exp_bounded(typename Vec<float, L>::type x) {
  using Floats = typename Vec<float, L>::type;
  using Ints = typename Vec<int32_t, L>::type;
  const Floats floor87 = Floats{} - 87.0f;
  const Floats xc = x < floor87 ? floor87 : x;
  const Ints n = __builtin_convertvector(xc * 1.44269504f, Ints);
  const Floats nf = __builtin_convertvector(n, Floats);
  const Floats r = (xc - nf * 0.693359375f) - nf * -2.12194440e-4f;  // ln2 in two parts
  Floats q = Floats{} + 1.0f / 362880.0f;
  for (const float c : {1.0f / 40320.0f, 1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f,
                        1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f})
    q = q * r + c;
  const Ints bits = (n + 127) << 23;
  Floats scale;
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  return x < floor87 ? Floats{} : q * scale;
}

// x = exp(x) in place for `count` floats, all <= 80.
template <int kVecBytes>
DCNV3_INLINE void exp_inplace(float* x, int count) {
  constexpr int L = std::min(kVecBytes, 32) / sizeof(float);  // see support_lanes
  using Floats = typename Vec<float, L>::type;
  int k = 0;
  for (; k + L <= count; k += L) store(x + k, exp_bounded<L>(load<Floats>(x + k)));
  if (k < count) {
    float tail[L] = {};
    std::copy(x + k, x + count, tail);
    store(tail, exp_bounded<L>(load<Floats>(tail)));
    std::copy(tail, tail + (count - k), x + k);
  }
}
template <int kVecBytes>
DCNV3_INLINE void exp_inplace(double* x, int count) {
  for (int k = 0; k < count; ++k) x[k] = std::exp(x[k]);
}

// Whether every one of `count` values lies in [lo, hi] (false for NaN).
template <typename T, int kVecBytes>
DCNV3_INLINE bool all_within(const T* x, int count, T lo, T hi) {
  constexpr int L = std::min(kVecBytes, 32) / sizeof(T);  // see support_lanes
  using V = typename Vec<T, L>::type;
  int k = 0;
  // lanes stay all-ones while every value seen is in range; reduced once at the end
  auto acc = V{} == V{};  // all lanes true
  for (; k + L <= count; k += L) {
    const V v = load<V>(x + k);
    acc &= (v >= lo) & (v <= hi);
  }
  bool ok = true;
  for (int i = 0; i < L; ++i) ok &= acc[i] != 0;
  for (; k < count; ++k) ok &= x[k] >= lo && x[k] <= hi;
  return ok;
}

// x = softmax over each of the `rows` rows of `points` values, in place (InternImage's mask
// normalisation, paper eq. 4).
template <typename T, int kVecBytes>
DCNV3_INLINE void softmax_rows(T* __restrict x, int rows, int points) {
  const int count = rows * points;
  // Softmax is invariant to a shift. In [-80, 80] none is needed: every exp is a normal float
  // and no sum overflows. Otherwise each row is shifted by its max.
  if (!all_within<T, kVecBytes>(x, count, T(-80), T(80))) {
    for (int r = 0; r < rows; ++r) {
      T* y = x + r * points;
      T m = y[0];
      for (int q = 1; q < points; ++q) m = y[q] > m ? y[q] : m;
      for (int q = 0; q < points; ++q) y[q] -= m;
    }
  }
  exp_inplace<kVecBytes>(x, count);
  for (int r = 0; r < rows; ++r) {
    T* y = x + r * points;
    T s = T(0);
    for (int q = 0; q < points; ++q) s += y[q];
    const T inv = T(1) / s;
    for (int q = 0; q < points; ++q) y[q] *= inv;
  }
}

// g = y * (g - <y, g>) per row of `points`: the gradient of softmax logits from the gradient
// of its outputs y, in place.
template <typename T>
DCNV3_INLINE void softmax_backward_rows(T* __restrict g, const T* __restrict y, int rows,
                                        int points) {
  for (int r = 0; r < rows; ++r) {
    T* gr = g + r * points;
    const T* yr = y + r * points;
    T s = T(0);
    for (int q = 0; q < points; ++q) s += yr[q] * gr[q];
    for (int q = 0; q < points; ++q) gr[q] = yr[q] * (gr[q] - s);
  }
}

// Where each pixel's offsets and masks (or their gradients) live. Separate tensors: the
// G*P (dx, dy) pairs of a pixel, then (mask tensor) its G*P masks. mask == nullptr: one
// combined tensor, per pixel the G*P*2 offsets followed by the G*P mask logits (the offset
// and mask projections as one GEMM), softmax-normalised per group by the kernels.
template <typename U>
struct PixelRows {
  U* offset;
  U* mask;
  int64_t offset_stride, mask_stride;  // elements from one pixel to the next
  bool logits;
  PixelRows(const Params& p, U* offset_, U* mask_)
      : offset(offset_), logits(mask_ == nullptr) {
    const int64_t E = static_cast<int64_t>(p.group) * p.num_points;  // entries per pixel
    mask = logits ? offset_ + 2 * E : mask_;
    offset_stride = logits ? 3 * E : 2 * E;
    mask_stride = logits ? 3 * E : E;
  }
  // the (dx, dy) pairs and the masks of groups [g0, ...) of pixel `pix`
  U* offsets_at(int64_t pix, int g0, int points) const {
    return offset + pix * offset_stride + int64_t{g0} * 2 * points;
  }
  U* masks_at(int64_t pix, int g0, int points) const {
    return mask + pix * mask_stride + int64_t{g0} * points;
  }
};

// Pass 1 for the groups [g0, g0 + ng) of the run of pixels [pix0, pix0 + npix). Mask logits
// are softmax-normalised here, so the mask is never written to memory.
template <typename T, int kVecBytes, bool kBackward>
DCNV3_INLINE void setup_run(const Params& p, PointTable<T>& t, const PixelRows<const T>& in,
                            int64_t pix0, int npix, int g0, int ng) {
  const int P = p.num_points;
  if (!in.logits && ng == p.group) {  // the run's offsets and masks are contiguous
    // the setup may read kMaxLanes entries past the run where later pixels' rows follow
    const int64_t pixels_after = p.batch * p.height_out * p.width_out - (pix0 + npix);
    setup_points<T, kVecBytes, kBackward>(p, t, pix0, npix, ng, in.offsets_at(pix0, 0, P),
                                          in.masks_at(pix0, 0, P),
                                          pixels_after * ng * P >= kMaxLanes);
    return;
  }
  const int e = ng * P;
  for (int l = 0; l < npix; ++l) {  // gather the groups' slices of each pixel
    deinterleave<T, kVecBytes>(in.offsets_at(pix0 + l, g0, P), t.off_w.data() + l * e,
                               t.off_h.data() + l * e, e);
    std::copy_n(in.masks_at(pix0 + l, g0, P), e, t.msk.data() + l * e);
  }
  if (in.logits) softmax_rows<T, kVecBytes>(t.msk.data(), npix * ng, P);
  setup_points<T, kVecBytes, kBackward>(p, t, pix0, npix, ng, nullptr, t.msk.data(), true);
}

// mask == nullptr: `offset` holds the offsets and mask logits (see PixelRows).
template <typename T, int GC, int kVecBytes>
DCNV3_INLINE void forward_range(const T* input, const T* offset, const T* mask, T* output,
                                const Params& p, int64_t begin, int64_t end) {
  const int gc = p.group_channels;
  const int64_t C = p.channels();
  const int P = p.num_points;
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;
  PointTable<T> table(p, p.group, forward_run_pixels(p));
  const PixelRows<const T> in(p, offset, mask);
  for (int g0 = 0; g0 < p.group; g0 += table.groups) {  // one block unless too many groups
    const int ng = std::min(table.groups, p.group - g0);
    const int e = ng * P;  // entries per pixel
    for (int64_t pix0 = begin; pix0 < end; pix0 += table.run) {
      const int npix = static_cast<int>(std::min<int64_t>(table.run, end - pix0));
      setup_run<T, kVecBytes, false>(p, table, in, pix0, npix, g0, ng);
      for (int l = 0; l < npix; ++l) {
        const int64_t pix = pix0 + l;
        const T* image = input + (pix / plane) * image_stride;
        for (int g = g0; g < g0 + ng; ++g)
          gather_group<T, GC, kVecBytes>(image + g * gc, table, l * e + (g - g0) * P, P, gc,
                                         output + pix * C + g * gc);
      }
    }
  }
}

// Backward of the table entries [k0, k0 + points) of one (pixel, group): stores the corner
// dot products d_ij = <grad_out, corner_ij> in the table (0 for outside points and invalid
// corners) and scatters mask * w_ij * grad_out into the valid corners' grad_input rows.
template <typename T, int GC, int kVecBytes, bool kAtomic>
DCNV3_INLINE void backward_group(const T* __restrict image_g, T* grad_image_g,
                                 const T* __restrict go, PointTable<T>& t, int k0, int points,
                                 int gc) {
  const T* __restrict inside = t.inside.data();
  const int32_t* __restrict e = t.corner.data();
  const T* __restrict w = t.weight.data();
  constexpr int S = kTableEntries;
  T* __restrict dot = t.dot.data();
  if constexpr (GC > 0 && !kAtomic) {
    // grad_out as NV vectors of the instruction set's width, in registers for all points.
    constexpr int L = std::min<int>(GC, kVecBytes / sizeof(T));
    constexpr int NV = GC / L;
    using V = typename Vec<T, L>::type;
    V g[NV];
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) g[j] = load<V>(go + j * L);
    for (int k = k0; k < k0 + points; ++k) {
      T* __restrict d = dot + 4 * k;
      const T flag = inside[k];
      if (flag == T(0)) {  // zero gradients
        d[0] = d[1] = d[2] = d[3] = T(0);
        continue;
      }
      // From the entry's pointer, so the compiler addresses the corners with constant
      // displacements; 64-bit offsets become the loads' index registers (int32 ones and
      // 32-bit index sums cost extensions and, out of registers, stack spills: 1.05x).
      const int32_t* __restrict ek = e + k;
      const int64_t o0 = ek[0], o1 = ek[S], o2 = ek[2 * S], o3 = ek[3 * S];
      {
        const T *r0 = image_g + o0, *r1 = image_g + o1, *r2 = image_g + o2, *r3 = image_g + o3;
        V p0 = g[0] * load<V>(r0), p1 = g[0] * load<V>(r1), p2 = g[0] * load<V>(r2),
          p3 = g[0] * load<V>(r3);
#pragma GCC unroll 16
        for (int j = 1; j < NV; ++j) {
          p0 += g[j] * load<V>(r0 + j * L);
          p1 += g[j] * load<V>(r1 + j * L);
          p2 += g[j] * load<V>(r2 + j * L);
          p3 += g[j] * load<V>(r3 + j * L);
        }
        Sum4<T, L>::run(p0, p1, p2, p3, d);
      }
      // mask * bilinear weight
      const T* __restrict wk = w + k;
      const T a0 = wk[0], a1 = wk[S], a2 = wk[2 * S], a3 = wk[3 * S];
      T *q0 = grad_image_g + o0, *q1 = grad_image_g + o1, *q2 = grad_image_g + o2,
        *q3 = grad_image_g + o3;
      // Corners may alias each other (clamped): one read-modify-write at a time.
      if (flag == T(16)) {  // all four corners in the image (most points)
#pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) store(q0 + j * L, load<V>(q0 + j * L) + a0 * g[j]);
#pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) store(q1 + j * L, load<V>(q1 + j * L) + a1 * g[j]);
#pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) store(q2 + j * L, load<V>(q2 + j * L) + a2 * g[j]);
#pragma GCC unroll 16
        for (int j = 0; j < NV; ++j) store(q3 + j * L, load<V>(q3 + j * L) + a3 * g[j]);
        continue;
      }
      // Only corners inside the image receive a gradient (an invalid corner's clamped position
      // belongs to another corner), as in the reference: adding its 0 * grad_output would turn
      // an inf there into NaN. Their dot products (read at the clamped position) are dropped.
      const int valid = static_cast<int>(flag) - 1;
      T* qs[4] = {q0, q1, q2, q3};
      const T as[4] = {a0, a1, a2, a3};
      for (int c = 0; c < 4; ++c) {
        if (((valid >> c) & 1) == 0) {
          d[c] = T(0);
          continue;
        }
#pragma GCC unroll 16
        for (int j = 0; j < NV; ++j)
          store(qs[c] + j * L, load<V>(qs[c] + j * L) + as[c] * g[j]);
      }
    }
    return;
  }
  const int n = GC > 0 ? GC : gc;
  for (int k = k0; k < k0 + points; ++k) {
    T* __restrict d = dot + 4 * k;
    if (inside[k] == T(0)) {  // zero gradients
      d[0] = d[1] = d[2] = d[3] = T(0);
      continue;
    }
    const int32_t o0 = e[k], o1 = e[S + k], o2 = e[2 * S + k], o3 = e[3 * S + k];
    const T *r0 = image_g + o0, *r1 = image_g + o1, *r2 = image_g + o2, *r3 = image_g + o3;
    T d0 = T(0), d1 = T(0), d2 = T(0), d3 = T(0);
#pragma omp simd reduction(+ : d0, d1, d2, d3)
    for (int c = 0; c < n; ++c) {
      d0 += go[c] * r0[c];
      d1 += go[c] * r1[c];
      d2 += go[c] * r2[c];
      d3 += go[c] * r3[c];
    }
    // mask * bilinear weight
    const T a0 = w[k], a1 = w[S + k], a2 = w[2 * S + k], a3 = w[3 * S + k];
    T *g0 = grad_image_g + o0, *g1 = grad_image_g + o1, *g2 = grad_image_g + o2,
      *g3 = grad_image_g + o3;
    // See above: only valid corners count, in the dot products and the scatter.
    const int valid = static_cast<int>(inside[k]) - 1;
    const bool u0 = valid & 1, u1 = valid & 2, u2 = valid & 4, u3 = valid & 8;
    d[0] = u0 ? d0 : T(0);
    d[1] = u1 ? d1 : T(0);
    d[2] = u2 ? d2 : T(0);
    d[3] = u3 ? d3 : T(0);
    if (kAtomic) {
      for (int c = 0; c < n; ++c) {
        if (u0) std::atomic_ref<T>(g0[c]).fetch_add(a0 * go[c], std::memory_order_relaxed);
        if (u1) std::atomic_ref<T>(g1[c]).fetch_add(a1 * go[c], std::memory_order_relaxed);
        if (u2) std::atomic_ref<T>(g2[c]).fetch_add(a2 * go[c], std::memory_order_relaxed);
        if (u3) std::atomic_ref<T>(g3[c]).fetch_add(a3 * go[c], std::memory_order_relaxed);
      }
    } else {
      // Corners may alias each other (clamped), so no __restrict and one corner at a time.
      if (u0) {
#pragma omp simd
        for (int c = 0; c < n; ++c) g0[c] += a0 * go[c];
      }
      if (u1) {
#pragma omp simd
        for (int c = 0; c < n; ++c) g1[c] += a1 * go[c];
      }
      if (u2) {
#pragma omp simd
        for (int c = 0; c < n; ++c) g2[c] += a2 * go[c];
      }
      if (u3) {
#pragma omp simd
        for (int c = 0; c < n; ++c) g3[c] += a3 * go[c];
      }
    }
  }
}

// L values (L a multiple of 4) from L / 4 groups of four at p, p + 16, p + 32, ...: the
// groups of four of every fourth entry of a [4 * k + c] table (loads of 4-wide vectors,
// concatenated; assigning lanes one by one is lowered element by element).
template <typename T, int L>
struct Quads {
  using V = typename Vec<T, L>::type;
  template <size_t... I>
  static DCNV3_INLINE V concat(const typename Vec<T, L / 2>::type& a,
                               const typename Vec<T, L / 2>::type& b, std::index_sequence<I...>) {
    return __builtin_shufflevector(a, b, I...);
  }
  static DCNV3_INLINE V load(const T* p) {
    return concat(Quads<T, L / 2>::load(p), Quads<T, L / 2>::load(p + 2 * L),
                  std::make_index_sequence<L>());
  }
};
template <typename T>
struct Quads<T, 4> {
  static DCNV3_INLINE typename Vec<T, 4>::type load(const T* p) {
    return ::dcnv3::load<typename Vec<T, 4>::type>(p);
  }
};

// The point pass's arithmetic for one entry or L at once (T a scalar or a vector type): the
// mask and offset gradients from the four corner dot products (invalid corners' are 0 already,
// see backward_group), by Bilinear's derivatives with every corner valid.
template <typename T>
DCNV3_INLINE void point_gradient(T ly, T lx, T m, T d0, T d1, T d2, T d3, T s, T* gm, T* gw,
                                 T* gh) {
  Bilinear<T> b;
  b.ly = ly;
  b.lx = lx;
  b.hy = 1 - ly;
  b.hx = 1 - lx;
  b.v00 = b.v01 = b.v10 = b.v11 = 1 + T{};
  *gm = b.w00() * d0 + b.w01() * d1 + b.w10() * d2 + b.w11() * d3;
  *gw = b.dw(d0, d1, d2, d3) * m * s;
  *gh = b.dh(d0, d1, d2, d3) * m * s;
}

// Gradients of the mask and the offsets of `count` table entries from their dot products
// (d(value)/dh and d(value)/dw of Bilinear, times mask and offset_scale). The dot products are
// stored per entry ([4 * k + c], as the per-point loop computes them); L entries at a time are
// turned into four vectors of one corner each by in-lane 4x4 transposes (the compiler's code
// for a loop with stride-4 loads permutes across lanes: the backward took 1.05x the time at
// InternImage-T stage 1).
template <typename T, int kVecBytes>
DCNV3_INLINE void point_gradients(PointTable<T>& t, int count, T s) {
  const T* __restrict dot = t.dot.data();
  const T* __restrict ly = t.ly.data();
  const T* __restrict lx = t.lx.data();
  const T* __restrict mk = t.mask.data();
  T* __restrict gm = t.gmask.data();
  T* __restrict gw = t.goff_w.data();
  T* __restrict gh = t.goff_h.data();
  constexpr int L = kVecBytes / sizeof(T);
  int k = 0;
  if constexpr (L >= 4 && L % 4 == 0) {
    using V = typename Vec<T, L>::type;
    using I = LaneMask<T, L>;
    // per 4-lane segment b: unpack low/high pairs, then move low/high halves
    I lo, hi, ml, mh;
    for (int i = 0; i < L; ++i) {
      const int b = i & ~3, j = i & 3;
      lo[i] = b + j / 2 + (j % 2 ? L : 0);
      hi[i] = b + 2 + j / 2 + (j % 2 ? L : 0);
      ml[i] = b + j % 2 + (j >= 2 ? L : 0);
      mh[i] = b + 2 + j % 2 + (j >= 2 ? L : 0);
    }
    for (; k + L <= count; k += L) {
      // r[j] lane 4m + c: corner c of entry k + 4m + j
      V r[4];
      for (int j = 0; j < 4; ++j) r[j] = Quads<T, L>::load(dot + 4 * (k + j));
      const V t0 = __builtin_shuffle(r[0], r[1], lo), t1 = __builtin_shuffle(r[0], r[1], hi);
      const V t2 = __builtin_shuffle(r[2], r[3], lo), t3 = __builtin_shuffle(r[2], r[3], hi);
      V g_m, g_w, g_h;
      point_gradient<V>(load<V>(ly + k), load<V>(lx + k), load<V>(mk + k),
                        __builtin_shuffle(t0, t2, ml), __builtin_shuffle(t0, t2, mh),
                        __builtin_shuffle(t1, t3, ml), __builtin_shuffle(t1, t3, mh), s + V{},
                        &g_m, &g_w, &g_h);
      store(gm + k, g_m);
      store(gw + k, g_w);
      store(gh + k, g_h);
    }
  }
  for (; k < count; ++k)
    point_gradient<T>(ly[k], lx[k], mk[k], dot[4 * k], dot[4 * k + 1], dot[4 * k + 2],
                      dot[4 * k + 3], s, gm + k, gw + k, gh + k);
}

// The zeroing of the grad_input slice an owner task scatters into (channels [c0, c0 + cn) of
// one image), done just ahead of the scatter, in pixel order, instead of a pass over the whole
// tensor before the kernel: each line is written while it is in cache, not fetched from memory
// again (InternImage-H stage 1, a 33 MB grad_input: backward 0.79x the time).
template <typename T>
struct LazyZero {
  T* image;  // the image's grad_input
  int64_t channels, c0, cn, pixels;
  int64_t done = 0;  // pixels [0, done) are zeroed
  // zero pixels [done, end)
  void upto(int64_t end) {
    end = std::min(end, pixels);
    if (end <= done) return;
    if (cn == channels) {
      std::fill(image + done * channels, image + end * channels, T(0));
    } else {
      for (int64_t q = done; q < end; ++q) std::fill_n(image + q * channels + c0, cn, T(0));
    }
    done = end;
  }
};

// Whether a backward's tasks zero their slice of grad_input just ahead of the scatter
// (LazyZero): owner tasks (blocks of groups, one band) scatter into grad_input itself, each into
// its own slice. Replica bands and atomic adds (blocks == 0) scatter into buffers zeroed before
// the kernel. The one rule for backward_impl (which zeroes the others) and backward_range.
DCNV3_INLINE bool zeroes_lazily(int blocks, int bands) { return blocks > 0 && bands == 1; }

// The backward of pixels [begin, end) for groups [g_begin, g_end). Without kAtomic the caller
// owns the grad_input slice of these groups in every image the pixels touch. mask == nullptr:
// fused softmax, `offset` is the offset + mask-logit tensor (see PixelRows) and `grad_offset`
// its gradient (grad_mask nullptr).
template <typename T, int GC, int kVecBytes, bool kAtomic>
DCNV3_INLINE void backward_pixels(PointTable<T>& table, const T* grad_out, const T* input,
                                  const T* offset, const T* mask, T* grad_input, T* grad_offset,
                                  T* grad_mask, const Params& p, int64_t begin, int64_t end,
                                  int g_begin, int g_end, LazyZero<T>* zero) {
  const int gc = p.group_channels;
  const int64_t C = p.channels();
  const int P = p.num_points;
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;
  const T s = static_cast<T>(p.offset_scale);
  const PixelRows<const T> in(p, offset, mask);
  const PixelRows<T> out(p, grad_offset, grad_mask);
  // the groups in blocks of table.groups (one block unless they do not fit the table)
  for (int g0 = g_begin; g0 < g_end; g0 += table.groups) {
    const int g1 = std::min(g_end, g0 + table.groups);
    const int ng = g1 - g0;
    const int e = ng * P;
    for (int64_t pix0 = begin; pix0 < end; pix0 += table.run) {
      const int npix = static_cast<int>(std::min<int64_t>(table.run, end - pix0));
      setup_run<T, kVecBytes, true>(p, table, in, pix0, npix, g0, ng);
      if (zero != nullptr) {
        // A point's last corner (bottom right, clamped) has the largest offset of its four.
        const int32_t* __restrict e3 = table.corner.data() + 3 * kTableEntries;
        int32_t last = 0;
        for (int k = 0; k < npix * e; ++k) last = std::max(last, e3[k]);
        zero->upto(last / C + 1);
      }
      for (int l = 0; l < npix; ++l) {
        const int64_t pix = pix0 + l;
        const int64_t image_base = (pix / plane) * image_stride;
        for (int g = g0; g < g1; ++g) {
          const int64_t base = image_base + g * gc;
          backward_group<T, GC, kVecBytes, kAtomic>(input + base, grad_input + base,
                                                    grad_out + pix * C + g * gc, table,
                                                    l * e + (g - g0) * P, P, gc);
        }
      }
      point_gradients<T, kVecBytes>(table, npix * e, s);
      if (out.logits) softmax_backward_rows(table.gmask.data(), table.mask.data(), npix * ng, P);
      for (int l = 0; l < npix; ++l) {
        interleave<T, kVecBytes>(table.goff_w.data() + l * e, table.goff_h.data() + l * e,
                                 out.offsets_at(pix0 + l, g0, P), e);
        std::copy_n(table.gmask.data() + l * e, e, out.masks_at(pix0 + l, g0, P));
      }
    }
  }
}

// A chunk of the backward with one point table (its buffers are set up once per chunk, not per
// task). kAtomic: [begin, end) are output pixels, all groups each; else they are owner tasks,
// task t = (image, block of the groups, band of output rows) with the band fastest and the
// image slowest; the task owns that block's slice of its band's grad_input copy,
// buffers[band] (one band: the grad_input itself). kAtomic scatters into buffers[0].
template <typename T, int GC, int kVecBytes, bool kAtomic>
DCNV3_INLINE void backward_range(const T* grad_out, const T* input, const T* offset,
                                 const T* mask, T* grad_offset, T* grad_mask,
                                 const Params& p, int64_t begin, int64_t end, int blocks,
                                 int bands, T* const* buffers) {
  if (kAtomic) {
    PointTable<T> table(p, p.group);
    backward_pixels<T, GC, kVecBytes, true>(table, grad_out, input, offset, mask, buffers[0],
                                            grad_offset, grad_mask, p, begin, end, 0, p.group,
                                            nullptr);
    return;
  }
  PointTable<T> table(p, (p.group + blocks - 1) / blocks);
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  for (int64_t t = begin; t < end; ++t) {
    const int r = static_cast<int>(t % bands);
    const int64_t n = t / bands / blocks;
    const int b = static_cast<int>(t / bands % blocks);
    const int64_t row0 = static_cast<int64_t>(r) * p.height_out / bands;
    const int64_t row1 = static_cast<int64_t>(r + 1) * p.height_out / bands;
    const int g0 = b * p.group / blocks, g1 = (b + 1) * p.group / blocks;
    const int64_t pixels_in = static_cast<int64_t>(p.height_in) * p.width_in;
    LazyZero<T> zero{buffers[0] + n * pixels_in * p.channels(), p.channels(),
                     int64_t{g0} * p.group_channels, int64_t{g1 - g0} * p.group_channels,
                     pixels_in};
    const bool lazy = zeroes_lazily(blocks, bands);
    backward_pixels<T, GC, kVecBytes, false>(table, grad_out, input, offset, mask, buffers[r],
                                             grad_offset, grad_mask, p,
                                             n * plane + row0 * p.width_out,
                                             n * plane + row1 * p.width_out, g0, g1,
                                             lazy ? &zero : nullptr);
    if (lazy) zero.upto(pixels_in);
  }
}

// The group width as a compile-time constant for the common widths (0 = runtime width).
#define DCNV3_GC_SWITCH(gc, CALL) \
  switch (gc) {                   \
    case 8: CALL(8); break;       \
    case 16: CALL(16); break;     \
    case 32: CALL(32); break;     \
    case 64: CALL(64); break;     \
    default: CALL(0); break;      \
  }

// Entry points compiled once per instruction set, with that set's vector width in bytes; the
// always-inline templates are compiled into each. Plain switches, no lambdas: a lambda body
// would be a separate, baseline-ISA function.
#define DCNV3_DEFINE_CPU_ENTRY_POINTS(T, SUFFIX, TARGET, VEC_BYTES)                             \
  TARGET void forward_chunk_##SUFFIX(const T* input, const T* offset, const T* mask, T* output, \
                                     const Params& p, int64_t begin, int64_t end) {            \
    using scalar_t = T;                                                                         \
    constexpr int kVecBytes = VEC_BYTES;                                                        \
    DCNV3_GC_SWITCH(p.group_channels, DCNV3_FWD_CALL)                                           \
  }                                                                                             \
  TARGET void backward_chunk_##SUFFIX(const T* grad_out, const T* input, const T* offset,      \
                                      const T* mask, T* grad_offset, T* grad_mask,              \
                                      const Params& p, int64_t begin, int64_t end, int blocks,  \
                                      int bands, T* const* buffers) {                           \
    using scalar_t = T;                                                                         \
    constexpr int kVecBytes = VEC_BYTES;                                                        \
    if (blocks == 0) {                                                                          \
      DCNV3_GC_SWITCH(p.group_channels, DCNV3_BWD_ATOMIC_CALL)                                  \
    } else {                                                                                    \
      DCNV3_GC_SWITCH(p.group_channels, DCNV3_BWD_OWNER_CALL)                                   \
    }                                                                                           \
  }

#define DCNV3_FWD_CALL(GC) \
  forward_range<scalar_t, GC, kVecBytes>(input, offset, mask, output, p, begin, end)
#define DCNV3_BWD_ATOMIC_CALL(GC)                                                              \
  backward_range<scalar_t, GC, kVecBytes, true>(grad_out, input, offset, mask, grad_offset,    \
                                                grad_mask, p, begin, end, 0, 1, buffers)
#define DCNV3_BWD_OWNER_CALL(GC)                                                               \
  backward_range<scalar_t, GC, kVecBytes, false>(grad_out, input, offset, mask, grad_offset,   \
                                                 grad_mask, p, begin, end, blocks, bands, buffers)

#define DCNV3_F32_ENTRY_POINTS(SUFFIX, TARGET, VEC_BYTES) \
  DCNV3_DEFINE_CPU_ENTRY_POINTS(float, f32_##SUFFIX, TARGET, VEC_BYTES)
#define DCNV3_F64_ENTRY_POINTS(SUFFIX, TARGET, VEC_BYTES) \
  DCNV3_DEFINE_CPU_ENTRY_POINTS(double, f64_##SUFFIX, TARGET, VEC_BYTES)
DCNV3_FOR_EACH_VERSION(DCNV3_F32_ENTRY_POINTS)
DCNV3_FOR_EACH_VERSION(DCNV3_F64_ENTRY_POINTS)
#undef DCNV3_F32_ENTRY_POINTS
#undef DCNV3_F64_ENTRY_POINTS
#undef DCNV3_DEFINE_CPU_ENTRY_POINTS

#ifdef DCNV3_X86_VERSIONS
const char* level_name(int level) {
  return level == 4 ? "x86-64-v4" : level == 3 ? "x86-64-v3" : "x86-64";
}
// The version this machine runs: 4 (x86-64-v4), 3 (x86-64-v3) or 1 (baseline x86-64), the
// highest the CPU supports unless DCNV3_CPU_ISA names a lower one (tests run every version).
int detect_x86_level() {
  __builtin_cpu_init();
  const int supported = __builtin_cpu_supports("x86-64-v4")   ? 4
                        : __builtin_cpu_supports("x86-64-v3") ? 3
                                                              : 1;
  const char* env = std::getenv("DCNV3_CPU_ISA");
  if (env == nullptr || *env == '\0') return supported;
  const std::string want(env);
  int level = 0;
  for (const int l : {1, 3, 4})
    if (want == level_name(l)) level = l;
  TORCH_CHECK(level != 0, "DCNV3_CPU_ISA=", want, ": expected x86-64, x86-64-v3 or x86-64-v4");
  TORCH_CHECK(level <= supported, "DCNV3_CPU_ISA=", want, ": this CPU supports at most ",
              level_name(supported));
  return level;
}
int x86_level() {
  static const int level = detect_x86_level();  // an error is raised again on the next call
  return level;
}
const char* kernel_isa() { return level_name(x86_level()); }
#else
const char* kernel_isa() { return "compiler target (one version)"; }
#endif
#define DCNV3_KERNELS(NAME, SUFFIX) DCNV3_THIS_VERSION(NAME##_##SUFFIX)

// The entry points of the version this machine runs, chosen on first use. Callers fetch them
// before their parallel region, so a bad DCNV3_CPU_ISA is an error raised on the calling thread.
template <typename T>
struct ChunkKernels {
  void (*forward)(const T*, const T*, const T*, T*, const Params&, int64_t, int64_t);
  // buffers: the grad_input copies the tasks scatter into (see backward_range)
  void (*backward)(const T*, const T*, const T*, const T*, T*, T*, const Params&, int64_t,
                   int64_t, int, int, T* const*);
};
template <typename T>
const ChunkKernels<T>& chunk_kernels() {
  if constexpr (std::is_same_v<T, float>) {
    static const ChunkKernels<float> k{DCNV3_KERNELS(forward_chunk, f32),
                                       DCNV3_KERNELS(backward_chunk, f32)};
    return k;
  } else {
    static const ChunkKernels<double> k{DCNV3_KERNELS(forward_chunk, f64),
                                        DCNV3_KERNELS(backward_chunk, f64)};
    return k;
  }
}
#undef DCNV3_KERNELS

template <typename T>
void forward_impl(const T* input, const T* offset, const T* mask, T* output, const Params& p) {
  const int64_t pixels = p.batch * p.height_out * p.width_out;
  const int64_t work = std::max<int64_t>(1, static_cast<int64_t>(p.group) * p.num_points *
                                                (p.group_channels * 4 + 16));
  const auto forward_chunk = chunk_kernels<T>().forward;
  at::parallel_for(0, pixels, std::max<int64_t>(1, kGrainWork / work),
                   [&](int64_t begin, int64_t end) {
                     forward_chunk(input, offset, mask, output, p, begin, end);
                   });
}

// Owner tasks split each image's groups into `blocks` blocks: the fewest that keep every thread
// busy (task count a multiple of the threads, or plenty of tasks), since a task that runs all
// groups of a pixel reads whole rows of the image (as the forward does).
int owner_blocks(const Params& p, int threads) {
  for (int b = 1; b < p.group; ++b) {
    const int64_t tasks = p.batch * b;
    if (tasks % threads == 0 || tasks >= 4 * threads) return b;
  }
  return p.group;
}

// Replica bands: the extra grad_input copies may take at most this many bytes in all.
constexpr int64_t kReplicaBytes = int64_t{512} << 20;

// Bands of output rows for the replica strategy: enough (image, group, band) tasks for every
// thread, within kReplicaBytes of extra copies and one band per output row at most.
int replica_bands(const Params& p, int threads, int64_t input_bytes) {
  const int64_t owners = p.batch * p.group;
  int64_t bands = (threads + owners - 1) / owners;
  bands = std::min<int64_t>(bands, p.height_out);
  if (input_bytes > 0) bands = std::min<int64_t>(bands, 1 + kReplicaBytes / input_bytes);
  return static_cast<int>(std::max<int64_t>(bands, 1));
}

// The backward into `grad_input` (uninitialised: zeroed here, or by owner tasks as they go; see
// zeroes_lazily). Auto: owner tasks when there are enough (image, group) pairs; else bands of
// output rows with a grad_input copy each (summed at the end); atomic adds (a compare-and-swap
// loop per element, tens of times slower) only when those copies would not fit, and never under
// torch.use_deterministic_algorithms.
template <typename T>
void backward_impl(const T* grad_out, const T* input, const T* offset, const T* mask,
                   const at::Tensor& grad_input, T* grad_offset, T* grad_mask, const Params& p,
                   BackwardStrategy strategy) {
  const int64_t plane = static_cast<int64_t>(p.height_out) * p.width_out;
  const int threads = at::get_num_threads();
  const int64_t input_bytes = grad_input.numel() * static_cast<int64_t>(sizeof(T));
  const int fit_bands = replica_bands(p, threads, input_bytes);
  if (strategy == BackwardStrategy::kAuto) {
    if (p.batch * p.group * 4 >= threads)
      strategy = BackwardStrategy::kOwner;
    else if (fit_bands > 1)
      strategy = BackwardStrategy::kReplicas;
    else if (at::globalContext().deterministicAlgorithms())
      strategy = BackwardStrategy::kOwner;
    else
      strategy = BackwardStrategy::kAtomic;
  }
  // The strategy's tasks: per image, `blocks` blocks of its groups (0: atomic adds, tasks of
  // pixels) times `bands` bands of output rows, band r scattering into buffers[r] (0: grad_input,
  // the others copies summed into it at the end).
  const int blocks = strategy == BackwardStrategy::kOwner      ? owner_blocks(p, threads)
                     : strategy == BackwardStrategy::kReplicas ? p.group
                                                               : 0;
  const int bands = strategy == BackwardStrategy::kReplicas ? std::max(2, fit_bands) : 1;
  if (!zeroes_lazily(blocks, bands)) grad_input.zero_();
  std::vector<at::Tensor> copies;
  std::vector<T*> buffers{grad_input.mutable_data_ptr<T>()};
  for (int r = 1; r < bands; ++r) {
    copies.push_back(at::zeros_like(grad_input));
    buffers.push_back(copies.back().mutable_data_ptr<T>());
  }
  const auto backward_chunk = chunk_kernels<T>().backward;
  if (blocks > 0) {
    // One task per (image, block of groups, band): it alone writes that slice of its buffer.
    at::parallel_for(0, p.batch * blocks * bands, 1, [&](int64_t begin, int64_t end) {
      backward_chunk(grad_out, input, offset, mask, grad_offset, grad_mask, p, begin, end,
                     blocks, bands, buffers.data());
    });
  } else {
    const int64_t work = std::max<int64_t>(1, static_cast<int64_t>(p.group) * p.num_points *
                                                  (p.group_channels * 8 + 16));
    at::parallel_for(0, p.batch * plane, std::max<int64_t>(1, kGrainWork / work),
                     [&](int64_t begin, int64_t end) {
                       backward_chunk(grad_out, input, offset, mask, grad_offset, grad_mask, p,
                                      begin, end, 0, 1, buffers.data());
                     });
  }
  for (const auto& copy : copies) grad_input.add_(copy);  // fixed order: deterministic
}

// The point tables hold one group's points at least (kTableCapacity), and their corner offsets
// within one image are int32 (half the table size of int64).
void check_cpu_limits(const Params& p) {
  TORCH_CHECK(p.num_points <= kTableCapacity, "dcnv3: ", p.num_points,
              " sampling points per group (kernel ", p.kernel_h, "x", p.kernel_w,
              "); the CPU kernels support up to ", kTableCapacity);
  const int64_t image_elements = static_cast<int64_t>(p.height_in) * p.width_in * p.channels();
  TORCH_CHECK(image_elements < (int64_t{1} << 31), "dcnv3: one input image has ", image_elements,
              " elements; the CPU kernels support up to 2^31 - 1 per image");
}

// mask undefined: `offset` is the combined offset + mask-logit tensor (see forward_range).
at::Tensor run_forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       const Params& p) {
  auto in = input.contiguous();
  auto off = offset.contiguous();
  auto msk = mask.defined() ? mask.contiguous() : mask;
  check_cpu_limits(p);
  auto output = at::empty({p.batch, p.height_out, p.width_out, p.channels()}, in.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "dcnv3_cpu_forward", [&] {
    forward_impl<scalar_t>(in.const_data_ptr<scalar_t>(), off.const_data_ptr<scalar_t>(),
                           msk.defined() ? msk.const_data_ptr<scalar_t>() : nullptr,
                           output.mutable_data_ptr<scalar_t>(), p);
  });
  return output;
}

// An uninitialised contiguous tensor like `in` whose data starts 1088 bytes past in's, modulo
// 4 KB. The backward reads corner rows of the input and read-modify-writes the same positions
// of grad_input. With both at the same offset within a 4 KB page (large allocations are), a load
// of the input falsely waits for an earlier store to grad_input at the same page offset (4K
// aliasing). Measured with the two buffers 1088 bytes apart against 0 (AVX-512 Xeon, one
// thread): backward 0.93x the time at InternImage-H stage 1, 0.97x at T stage 1.
at::Tensor empty_unaliased_like(const at::Tensor& in) {
  constexpr int64_t kPage = 4096, kShift = 1088;  // 17 cache lines
  const int64_t elem = in.element_size();
  auto buffer = at::empty({in.numel() + kPage / elem}, in.options());
  const auto base = reinterpret_cast<uintptr_t>(buffer.data_ptr());
  const auto target = reinterpret_cast<uintptr_t>(in.data_ptr()) + kShift;
  const int64_t skip = static_cast<int64_t>((target - base) % kPage) / elem;
  return buffer.narrow(0, skip, in.numel()).view(in.sizes());
}

// mask undefined: `offset` is the combined offset + mask-logit tensor; returns {grad_input,
// grad_offset_mask}. Otherwise {grad_input, grad_offset, grad_mask}.
std::vector<at::Tensor> run_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                     const at::Tensor& offset, const at::Tensor& mask,
                                     const Params& p, BackwardStrategy strategy) {
  auto go = grad_output.contiguous();
  auto in = input.contiguous();
  auto off = offset.contiguous();
  auto msk = mask.defined() ? mask.contiguous() : mask;
  check_cpu_limits(p);
  // scattered into; zeroed by backward_impl (owner tasks: lazily, see LazyZero)
  auto grad_input = empty_unaliased_like(in);
  // Written once per entry (point_gradients covers outside points too): no zero fill.
  auto grad_offset = at::empty_like(off);
  auto grad_mask = msk.defined() ? at::empty_like(msk) : msk;
  std::vector<at::Tensor> grads{grad_input, grad_offset};
  if (msk.defined()) grads.push_back(grad_mask);
  if (go.numel() == 0) {  // no output: every gradient is zero
    for (auto& g : grads) g.zero_();
    return grads;
  }
  AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "dcnv3_cpu_backward", [&] {
    backward_impl<scalar_t>(go.const_data_ptr<scalar_t>(), in.const_data_ptr<scalar_t>(),
                            off.const_data_ptr<scalar_t>(),
                            msk.defined() ? msk.const_data_ptr<scalar_t>() : nullptr, grad_input,
                            grad_offset.mutable_data_ptr<scalar_t>(),
                            msk.defined() ? grad_mask.mutable_data_ptr<scalar_t>() : nullptr, p,
                            strategy);
  });
  return grads;
}

}  // namespace

const char* cpu_kernel_isa() { return kernel_isa(); }

#ifdef DCNV3_X86_VERSIONS
int cpu_x86_level() { return x86_level(); }
#else
int cpu_x86_level() { return 0; }
#endif

at::Tensor cpu_forward(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       const Params& p) {
  return run_forward(input, offset, mask, p);
}

at::Tensor cpu_forward_softmax(const at::Tensor& input, const at::Tensor& offset_mask,
                               const Params& p) {
  return run_forward(input, offset_mask, at::Tensor(), p);
}

std::vector<at::Tensor> cpu_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                     const at::Tensor& offset, const at::Tensor& mask,
                                     const Params& p, BackwardStrategy strategy) {
  return run_backward(grad_output, input, offset, mask, p, strategy);
}

std::vector<at::Tensor> cpu_backward_softmax(const at::Tensor& grad_output,
                                             const at::Tensor& input,
                                             const at::Tensor& offset_mask, const Params& p,
                                             BackwardStrategy strategy) {
  return run_backward(grad_output, input, offset_mask, at::Tensor(), p, strategy);
}

}  // namespace dcnv3
