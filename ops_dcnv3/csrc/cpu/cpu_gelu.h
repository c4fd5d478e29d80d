// GELU of a vector of floats, exact (erf) form, for the CPU kernels:
//
//   GELU(x) = x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))
//
// (Hendrycks & Gimpel, "Gaussian Error Linear Units", 2016; what nn.GELU() computes).
// erf(t) = t P(t^2) / Q(t^2) for |t| < 3.84, a rational minimax fit (P of degree 6, Q of degree
// 4 in t^2; max error 3.4e-8 in exact arithmetic, 3.7e-7 evaluated in float32 with FMA, 5.1e-7
// without (baseline x86-64): about ATen's own error); beyond that erf(t) is +-1 to within 6e-8 (float32 rounds it to +-1 from 3.92 on),
// so GELU is exactly x for large x and exactly -0 for large -x (NaN at -inf, as ATen).
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu_vec.h"

namespace dcnv3 {
namespace gelu_detail {

constexpr float kP[7] = {1.128378868e+00f, 1.985776871e-01f, 5.041076615e-02f, 3.668641439e-03f,
                         1.431027777e-04f, -2.008514912e-06f, 2.077199746e-08f};
constexpr float kQ[4] = {5.093146563e-01f, 1.144607812e-01f, 1.425840799e-02f, 9.548906819e-04f};
constexpr float kErfOne = 3.84f;  // |t| from which erf(t) is taken as +-1

}  // namespace gelu_detail

template <int L>
DCNV3_INLINE typename Vec<float, L>::type gelu(typename Vec<float, L>::type x) {
  using F = typename Vec<float, L>::type;
  const F t = x * 0.707106781186547524f;
  const F s = t * t;
  using namespace gelu_detail;
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

}  // namespace dcnv3
