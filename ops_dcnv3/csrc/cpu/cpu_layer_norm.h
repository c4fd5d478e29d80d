// LayerNorm over the C channels of a row (nn.LayerNorm's: biased variance, eps inside the
// square root), shared by the LayerNorm kernel and the offset branch's dwconv_ln.
//
// The mean first, then the variance from the squared deviations (no cancellation, unlike
// E[x^2] - E[x]^2), each a sum in L-lane vectors finished by Sum4 trees for up to four rows at
// once: a row of InternImage holds 4-32 vectors, so per-row horizontal sums would cost as much
// as the rest of the work.
#pragma once

#include <algorithm>
#include <cmath>

#include "cpu_vec.h"

namespace dcnv3 {

// mean[q] and rstd[q] = 1 / sqrt(var + eps) of the Q (1 to 4) rows rows[q] of C floats.
template <int kVecBytes, int Q>
DCNV3_INLINE void row_moments(const float* const* rows, int64_t C, float eps, float* mean,
                              float* rstd) {
  constexpr int L = kVecBytes / sizeof(float);
  using F = typename Vec<float, L>::type;
  const int64_t CV = C / L * L;  // channels in whole vectors; the rest one by one
  F acc[4] = {};
  float tail[4] = {}, sums[4];
  for (int64_t c = 0; c < CV; c += L)
    for (int q = 0; q < Q; ++q) acc[q] += load<F>(rows[q] + c);
  for (int64_t c = CV; c < C; ++c)
    for (int q = 0; q < Q; ++q) tail[q] += rows[q][c];
  Sum4<float, L>::run(acc[0], acc[1], acc[2], acc[3], sums);
  for (int q = 0; q < Q; ++q) mean[q] = (sums[q] + tail[q]) / static_cast<float>(C);
  // the corrected two-pass algorithm: the deviations' own sum s corrects the first mean
  // (mean += s / C; var = (sum(d^2) - s^2 / C) / C), which the rounding of a long sum with a
  // large mean would otherwise leave off by many ulps
  F dev[4] = {}, dsum[4] = {};
  float dev_tail[4] = {}, dsum_tail[4] = {};
  for (int64_t c = 0; c < CV; c += L)
    for (int q = 0; q < Q; ++q) {
      const F d = load<F>(rows[q] + c) - mean[q];
      dsum[q] += d;
      dev[q] += d * d;
    }
  for (int64_t c = CV; c < C; ++c)
    for (int q = 0; q < Q; ++q) {
      const float d = rows[q][c] - mean[q];
      dsum_tail[q] += d;
      dev_tail[q] += d * d;
    }
  float dsums[4];
  Sum4<float, L>::run(dev[0], dev[1], dev[2], dev[3], sums);
  Sum4<float, L>::run(dsum[0], dsum[1], dsum[2], dsum[3], dsums);
  for (int q = 0; q < Q; ++q) {
    const float s = dsums[q] + dsum_tail[q];
    mean[q] += s / static_cast<float>(C);
    const float var = (sums[q] + dev_tail[q] - s * s / static_cast<float>(C)) /
                      static_cast<float>(C);
    rstd[q] = 1.0f / std::sqrt(std::max(var, 0.0f) + eps);
  }
}

// out = (row - mean) * rstd * weight + bias over C channels (out may be row).
template <int kVecBytes>
DCNV3_INLINE void normalize_row(const float* row, float mean, float rstd, const float* weight,
                                const float* bias, int64_t C, float* out) {
  constexpr int L = kVecBytes / sizeof(float);
  using F = typename Vec<float, L>::type;
  const int64_t CV = C / L * L;
  for (int64_t c = 0; c < CV; c += L)
    store(out + c, (load<F>(row + c) - mean) * rstd * load<F>(weight + c) + load<F>(bias + c));
  for (int64_t c = CV; c < C; ++c) out[c] = (row[c] - mean) * rstd * weight[c] + bias[c];
}

}  // namespace dcnv3
