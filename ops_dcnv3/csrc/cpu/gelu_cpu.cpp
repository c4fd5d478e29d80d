// GELU in place, with an optional bias added first, for CPU inference (float32):
//
//   y <- GELU(y + b),  GELU(x) = x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))
//
// (Hendrycks & Gimpel, "Gaussian Error Linear Units", 2016: the exact, erf form that nn.GELU
// computes by default). InternImage applies it to the first MLP layer's output and to the DCNv3
// offset branch's features. ATen's GELU evaluates erf with a general-purpose vector erf and
// writes a new tensor; with the bias of the preceding GEMM folded in, this is one pass that
// also replaces addmm's copy of the bias into its output.
//
// erf(t) = t P(t^2) / Q(t^2) for |t| < 3.84, a rational minimax fit (P of degree 6, Q of degree
// 4 in t^2; max error 3.4e-8 in exact arithmetic, 3.7e-7 evaluated in float32, about ATen's
// own error); beyond that erf(t) is +-1 to within 6e-8 (float32 rounds it to +-1 from 3.92 on),
// so GELU is exactly x for large x and exactly -0 for large -x (NaN at -inf, as ATen).
#include <ATen/Parallel.h>

#include <algorithm>

#include "../dcnv3.h"
#include "cpu_vec.h"

namespace dcnv3 {
namespace {

constexpr float kP[7] = {1.128378868e+00f, 1.985776871e-01f, 5.041076615e-02f, 3.668641439e-03f,
                         1.431027777e-04f, -2.008514912e-06f, 2.077199746e-08f};
constexpr float kQ[4] = {5.093146563e-01f, 1.144607812e-01f, 1.425840799e-02f, 9.548906819e-04f};
constexpr float kErfOne = 3.84f;  // |t| from which erf(t) is taken as +-1
// Elements per parallel chunk (~50 vector operations each).
constexpr int64_t kGrain = 16384;

template <int L>
DCNV3_INLINE typename Vec<float, L>::type gelu(typename Vec<float, L>::type x) {
  using F = typename Vec<float, L>::type;
  const F t = x * 0.707106781186547524f;
  const F s = t * t;
  F p = F{} + kP[6];
  for (int k = 5; k >= 0; --k) p = p * s + kP[k];
  F q = F{} + kQ[3];
  for (int k = 2; k >= 0; --k) q = q * s + kQ[k];
  q = q * s + 1.0f;
  F e = t * p / q;
  e = t >= kErfOne ? F{} + 1.0f : e;
  e = t <= -kErfOne ? F{} - 1.0f : e;  // NaN compares false: NaN stays NaN
  return (0.5f * x) * (1.0f + e);
}

// y[i] = GELU(y[i] + b[i]) for i < count (b may be null), kVecBytes-wide vectors.
template <int kVecBytes>
DCNV3_INLINE void gelu_span(float* __restrict y, const float* __restrict b, int64_t count) {
  constexpr int L = kVecBytes / sizeof(float);
  using F = typename Vec<float, L>::type;
  int64_t i = 0;
  for (; i + L <= count; i += L) {
    F v = load<F>(y + i);
    if (b != nullptr) v += load<F>(b + i);
    store(y + i, gelu<L>(v));
  }
  if (i < count) {
    float tail[L] = {};
    const int64_t rest = count - i;
    for (int64_t j = 0; j < rest; ++j) tail[j] = y[i + j] + (b != nullptr ? b[i + j] : 0.0f);
    store(tail, gelu<L>(load<F>(tail)));
    std::copy(tail, tail + rest, y + i);
  }
}

// Rows [r0, r1) of y [rows, n] with the bias b [n] (or null) on every row.
#define DCNV3_DEFINE_GELU_ROWS(SUFFIX, TARGET, VEC_BYTES)                                  \
  TARGET void gelu_rows_##SUFFIX(float* y, const float* b, int64_t n, int64_t r0,          \
                                 int64_t r1) {                                             \
    for (int64_t r = r0; r < r1; ++r) gelu_span<VEC_BYTES>(y + r * n, b, n);               \
  }
#ifdef DCNV3_X86_VERSIONS
DCNV3_DEFINE_GELU_ROWS(v4, DCNV3_X86_V4, 64)
DCNV3_DEFINE_GELU_ROWS(v3, DCNV3_X86_V3, 32)
DCNV3_DEFINE_GELU_ROWS(base, , 16)
using RowsFn = void (*)(float*, const float*, int64_t, int64_t, int64_t);
RowsFn gelu_rows() {
  const int level = cpu_x86_level();
  return level == 4 ? &gelu_rows_v4 : level == 3 ? &gelu_rows_v3 : &gelu_rows_base;
}
#else
DCNV3_DEFINE_GELU_ROWS(one, , kNativeVecBytes)
auto gelu_rows() { return &gelu_rows_one; }
#endif
#undef DCNV3_DEFINE_GELU_ROWS

}  // namespace

void cpu_bias_gelu_(at::Tensor& y, const at::Tensor& bias) {
  const int64_t numel = y.numel();
  if (numel == 0) return;
  float* data = y.data_ptr<float>();
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  // Rows of the bias's length; without a bias, rows of a fixed length (the tail row shorter).
  const int64_t n = b != nullptr ? bias.numel() : std::min<int64_t>(numel, 1024);
  const int64_t rows = (numel + n - 1) / n;
  const auto run = gelu_rows();  // before the parallel region: errors raise on this thread
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / n), [&](int64_t r0, int64_t r1) {
    const int64_t full = std::min(r1, numel / n);  // rows of length n
    if (r0 < full) run(data, b, n, r0, full);
    if (r1 > full && numel % n != 0) run(data + full * n, b, numel % n, 0, 1);
  });
}

}  // namespace dcnv3
